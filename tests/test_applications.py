"""keras.applications' own application tests (keras/src/applications/applications_test.py), re-pointed here.

Same checks: every variant (V2-XL and Lite too) in channels_last for variable input channels; the other checks,
and channels_first, on the smallest and a larger member of each family (one builder serves every row; each
variant's full network is compared with keras.applications or timm in test_models.py / test_timm_weights.py). The pretrained-inference test uses the
variants whose weights work offline (Lite0-2) and a real cat photo instead of keras' downloaded elephant.
"""

import keras
import numpy as np
import pytest

import efficientnet_keras as ek
from conftest import CAT_NAMES
from efficientnet_keras.predict import center_crop_resize

# (variant, channels of the last feature map), as keras' MODEL_LIST gives them.
MODEL_LIST = [
    ("EfficientNetB0", 1280), ("EfficientNetB1", 1280), ("EfficientNetB2", 1408), ("EfficientNetB3", 1536),
    ("EfficientNetB4", 1792), ("EfficientNetB5", 2048), ("EfficientNetB6", 2304), ("EfficientNetB7", 2560),
    ("EfficientNetV2B0", 1280), ("EfficientNetV2B1", 1280), ("EfficientNetV2B2", 1408), ("EfficientNetV2B3", 1536),
    ("EfficientNetV2S", 1280), ("EfficientNetV2M", 1280), ("EfficientNetV2L", 1280), ("EfficientNetV2XL", 1280),
    ("EfficientNetLite0", 1280), ("EfficientNetLite1", 1280), ("EfficientNetLite2", 1280), ("EfficientNetLite3", 1280),
    ("EfficientNetLite4", 1280),
]
FAST = {"EfficientNetB0", "EfficientNetV2B0", "EfficientNetLite0"}
FORMATS = ["channels_first", "channels_last"]


# channels_first goes through the same builder code for every row of a family: checked on the smallest and a
# larger member of each (V1, V2 with Fused-MBConv, Lite); channels_last on every variant.
CHANNELS_FIRST = {"EfficientNetB0", "EfficientNetB3", "EfficientNetV2B0", "EfficientNetV2S", "EfficientNetLite0",
                  "EfficientNetLite4"}


def _cases(every_variant: bool = False):
    """Every variant in channels_last (``every_variant``), else the representatives; channels_first on those."""
    return [
        pytest.param(name, last_dim, fmt, id=f"{name}_{fmt}", marks=() if name in FAST else pytest.mark.slow)
        for fmt in FORMATS
        for name, last_dim in MODEL_LIST
        if name in CHANNELS_FIRST or (every_variant and fmt == "channels_last")
    ]


def _app(name):
    return getattr(ek, name)


@pytest.mark.parametrize("name, last_dim, fmt", _cases(every_variant=True))
def test_application_notop_variable_input_channels(name, last_dim, fmt):
    keras.config.set_image_data_format(fmt)
    for channels in (1, 4):
        shape = (channels, None, None) if fmt == "channels_first" else (None, None, channels)
        expected = [None, last_dim, None, None] if fmt == "channels_first" else [None, None, None, last_dim]
        model = _app(name)(weights=None, include_top=False, input_shape=shape)
        assert list(model.outputs[0].shape) == expected


@pytest.mark.parametrize("name, last_dim, fmt", _cases())
def test_application_notop_custom_input_shape(name, last_dim, fmt):
    keras.config.set_image_data_format(fmt)
    shape = (3, 123, 123) if fmt == "channels_first" else (123, 123, 3)
    model = _app(name)(weights=None, include_top=False, input_shape=shape)
    assert list(model.outputs[0].shape)[1 if fmt == "channels_first" else -1] == last_dim


@pytest.mark.parametrize("name, last_dim, fmt", _cases())
def test_application_notop_custom_input_tensor(name, last_dim, fmt):
    keras.config.set_image_data_format(fmt)
    shape = (4, 200, 200) if fmt == "channels_first" else (200, 200, 4)
    inputs = keras.Input(shape=shape, name="custom_input")
    inputs = keras.layers.Conv2D(3, (2, 2), padding="valid", strides=(2, 2))(inputs)
    model = _app(name)(weights=None, include_top=False, input_tensor=inputs)
    assert list(model.outputs[0].shape)[1 if fmt == "channels_first" else -1] == last_dim


@pytest.mark.parametrize("name, last_dim, fmt", _cases())
def test_application_pooling(name, last_dim, fmt):
    keras.config.set_image_data_format(fmt)
    model = _app(name)(weights=None, include_top=False, pooling="max")
    assert list(model.outputs[0].shape) == [None, last_dim]


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=() if n in FAST else pytest.mark.slow) for n, _ in MODEL_LIST if n in CHANNELS_FIRST]
)
def test_application_classifier_activation(name):
    model = _app(name)(weights=None, include_top=True, classifier_activation="softmax")
    assert model.layers[-1].activation.__name__ == "softmax"


@pytest.mark.parametrize("name", ["EfficientNetLite0", "EfficientNetLite1", "EfficientNetLite2"])
def test_application_base(name):
    """Default arguments, a correct inference on a real photo, and a serialization round trip."""
    skimage_data = pytest.importorskip("skimage.data")
    pytest.importorskip("torch")
    model = _app(name)()  # weights="imagenet" by default, as in keras.applications
    size = model.input_shape[1]
    x = np.stack([center_crop_resize(skimage_data.chelsea(), size), center_crop_resize(skimage_data.coffee(), size)])
    preds = model.predict(ek.preprocess_input(x), verbose=0)
    decoded = ek.decode_predictions(preds, top=5)
    assert [len(row) for row in decoded] == [5, 5]
    assert decoded[0][0][1] in CAT_NAMES and decoded[1][0][1] == "espresso"
    config = keras.saving.serialize_keras_object(model)
    reconstructed = keras.saving.deserialize_keras_object(config)
    assert len(model.weights) == len(reconstructed.weights)
    reconstructed.set_weights(model.get_weights())
    np.testing.assert_allclose(reconstructed.predict(x, verbose=0), preds, atol=1e-6)


@pytest.mark.parametrize("name", ["EfficientNetB0", "EfficientNetV2B0", "EfficientNetLite0"])
def test_channels_first_logits_equal_channels_last(name):
    """The same weights in both layouts give the same logits (kernels do not depend on the layout; the inputs
    and every feature map are transposed), with real BatchNorm statistics so the logits are not ~0. TensorFlow has
    no float64 convolution in channels_first on CPU: both layouts compute in float32, measured against float64."""
    from conftest import assert_float32_accurate, in_float64, random_images, randomize_batchnorm

    def build():
        return ek.create_model(name, weights=None, classifier_activation=None, input_shape=(96, 96, 3))

    last = randomize_batchnorm(build())
    exact = in_float64(last, build)
    keras.config.set_image_data_format("channels_first")
    first = ek.create_model(name, weights=None, classifier_activation=None, input_shape=(3, 96, 96))
    first.set_weights(last.get_weights())
    images = random_images(2, 96)
    expected = exact.predict(images.astype("float64"), verbose=0)
    assert np.ptp(expected) > 0.5
    assert_float32_accurate(first.predict(images.transpose(0, 3, 1, 2), verbose=0),
                            last.predict(images, verbose=0), expected)
