import numpy as np
import pytest

import efficientnet_keras as ek


def test_class_names_ship_with_the_package():
    names = ek.class_names()
    assert len(names) == 1000 and len(set(names)) >= 998  # ImageNet has two "crane" and two "maillot" classes
    assert (names[0], names[285], names[967]) == ("tench", "Egyptian_cat", "espresso")


def test_decode_predictions():
    preds = np.zeros((2, 1000), "float32")
    preds[0, 967], preds[0, 1] = 0.9, 0.1
    preds[1, 285] = 1.0
    decoded = ek.decode_predictions(preds, top=2)
    assert decoded[0] == [("n07920052", "espresso", pytest.approx(0.9)), ("n01443537", "goldfish", pytest.approx(0.1))]
    assert decoded[1][0][:2] == ("n02124075", "Egyptian_cat")


@pytest.mark.parametrize("shape", [(1000,), (2, 10), (2, 1000, 1)])
def test_decode_predictions_bad_shape(shape):
    with pytest.raises(ValueError, match=r"shape \(samples, 1000\)"):
        ek.decode_predictions(np.zeros(shape))


def test_preprocess_input_is_identity():
    x = np.arange(12.0).reshape(1, 2, 2, 3)
    assert ek.preprocess_input(x) is x
