"""A built model knows its preprocessing (``get_preprocessing``), and keeps it through save, load and clone."""

import dataclasses
import importlib.util
import json
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

import efficientnet_keras as ek
from efficientnet_keras import normalization as norm
from efficientnet_keras.transforms import LEGACY_V1, OFFICIAL_V2, TIMM_COATNET


@pytest.mark.parametrize("function, kwargs, expected", [
    ("EfficientNetB0", {}, (norm.IMAGENET, 224, 224 / 256, "bicubic_tf1")),
    ("EfficientNetV2S", {}, (norm.UNIT, 384, None, "bilinear")),  # the official V2: the whole image from 320 px
    ("EfficientNetV2S", dict(input_shape=(300, 300, 3), normalization="imagenet"),
     (norm.IMAGENET, 300, 300 / 332, "bilinear")),
    ("EfficientNetV2B0", {}, (norm.IMAGENET, 224, 224 / 256, "bicubic_tf1")),
    ("EfficientNetLite0", {}, (norm.LITE, 224, 224 / 256, "bicubic_tf1")),
    ("CoAtNet0RW", {}, (norm.INCEPTION, 224, 0.95, TIMM_COATNET.resize)),
    ("CoAtNetBN0RW", {}, (norm.IMAGENET, 224, 0.95, TIMM_COATNET.resize)),
])
def test_a_built_model_reports_its_preprocessing(function, kwargs, expected):
    model = ek.create_model(function, weights=None, **kwargs)
    config = ek.get_preprocessing(model)
    assert (config.normalization, config.input_size, config.crop_fraction, config.interpolation) == \
        pytest.approx(expected)
    assert config.in_model and config.weights is None


def test_the_preprocessing_follows_the_weights():
    lite = ek.EfficientNetLite0(weights="imagenet", include_preprocessing=False)
    config = ek.get_preprocessing(lite)
    assert config.normalization == norm.LITE and config.weights == "imagenet" and not config.in_model
    assert config.transform == LEGACY_V1
    assert ek.get_preprocessing(ek.EfficientNetV2S(weights=None)).transform == OFFICIAL_V2


def test_a_model_from_elsewhere_is_told_to_rebuild():
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)], name="plain")
    with pytest.raises(ValueError, match="Model 'plain' carries no preprocessing config: it was not built by "
                                         "efficientnet_keras"):
        ek.get_preprocessing(plain)


def test_a_saved_model_answers_in_a_fresh_process(tmp_path):
    """Saved with its config: a ``.keras`` file loaded in another process reports the same, and computes the same."""
    model = ek.create_model("EfficientNetB0", weights=None, normalization="inception", input_shape=(64, 64, 3),
                            classes=7, classifier_activation=None)
    path = str(tmp_path / "b0.keras")
    model.save(path)
    x = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "expected.npy", model.predict(x, verbose=0))
    script = f"""
import numpy as np, keras, efficientnet_keras as ek
m = keras.saving.load_model({path!r})
c = ek.get_preprocessing(m)
assert type(m).__name__ == "EfficientNetModel", type(m)
assert (c.normalization.name, c.normalization.mean, c.input_size) == ("inception", (127.5,) * 3, 64), c
np.testing.assert_allclose(m.predict(np.load({str(tmp_path / 'x.npy')!r}), verbose=0),
                           np.load({str(tmp_path / 'expected.npy')!r}), rtol=1e-5, atol=1e-5)
print("same")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip().endswith("same"), result.stderr[-3000:]


def test_batchnorm_folding_keeps_the_preprocessing():
    from efficientnet_keras.export import fold_batchnorm

    model = ek.EfficientNetLite0(weights=None, input_shape=(32, 32, 3))
    assert ek.get_preprocessing(fold_batchnorm(model)) == ek.get_preprocessing(model)


def test_the_config_round_trips_as_data():
    config = ek.get_preprocessing(ek.EfficientNetV2B0(weights=None))
    assert ek.PreprocessingConfig.from_dict(config.to_dict()) == config
    assert norm.get_normalization("lite") is norm.LITE
    with pytest.raises(ValueError, match="Unknown normalization 'imagenet21k'; expected one of imagenet, unit, "
                                         "inception, lite"):
        norm.get_normalization("imagenet21k")


def test_set_weights_puts_the_input_normalization_numbers_in_use():
    model = ek.EfficientNetB0(weights=None, include_top=False, input_shape=(32, 32, 3))
    weights = model.get_weights()
    index = next(i for i, w in enumerate(model.weights) if w.path.startswith("normalization/"))
    weights[index] = np.full(3, 0.5, np.float32)  # the mean
    model.set_weights(weights)
    first = keras.Model(model.inputs, model.get_layer("normalization").output)
    np.testing.assert_allclose(first.predict(np.full((1, 32, 32, 3), 127.5), verbose=0)[0, 0, 0],
                               0.0, atol=1e-6)


SAVED = pathlib.Path(__file__).parent / "fixtures" / "saved_models"
SAVED_RECORD = json.loads((SAVED / "logits.json").read_text())
_maker = importlib.util.spec_from_file_location("make_saved_models", SAVED.parent / "make_saved_models.py")
make_saved_models = importlib.util.module_from_spec(_maker)
_maker.loader.exec_module(make_saved_models)


@pytest.mark.parametrize("case", sorted(SAVED_RECORD["cases"]))
def test_a_model_saved_by_an_earlier_release_loads_with_its_logits_and_preprocessing(case):
    """``.keras`` files written by release 0.1.0 (tests/fixtures/make_saved_models.py): this code loads them into
    the same network. A change to layer names, configs or weight order that breaks users' saved models fails."""
    expected = SAVED_RECORD["cases"][case]
    model = keras.saving.load_model(SAVED / expected["file"])
    assert type(model) is ek.EfficientNetModel
    loaded = json.loads(json.dumps(dataclasses.asdict(ek.get_preprocessing(model))))
    recorded = expected["preprocessing"]
    assert loaded.keys() == recorded.keys()
    assert all(loaded[key] == recorded[key] for key in recorded if key != "transform")
    # Fields of the transform added since 0.1.0 take the values of the preset the record names.
    preset, transform = json.loads(json.dumps(dataclasses.asdict(LEGACY_V1))), recorded["transform"]
    assert transform["name"] == "legacy_v1" and set(preset) - set(transform) == {"decode_window"}
    assert loaded["transform"] == {**preset, **transform} and loaded["transform"]["decode_window"] is True
    np.testing.assert_allclose(model.predict(make_saved_models.inputs(), verbose=0), expected["logits"], rtol=1e-4, atol=1e-4)
