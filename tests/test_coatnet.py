"""CoAtNet, built by the EfficientNet builder: timm's parameter counts, the paper's FLOPs, timm's logits at the
training size and at sizes where the relative position tables are cropped or interpolated, and clear errors."""

import dataclasses

import keras
import numpy as np
import pytest

import efficientnet_keras as ek
import torchvision_stub
from efficientnet_keras import builder
from efficientnet_keras.attention import resize_bias_table
from efficientnet_keras.models import VARIANTS, create_model, get_variant
from efficientnet_keras.transforms import eval_transform
from efficientnet_keras.weights.check import sample_photos
from efficientnet_keras.weights.timm_coatnet import coatnet_to_keras

torch = pytest.importorskip("torch")
torchvision_stub.install()
timm = pytest.importorskip("timm")

COATNETS = [f for f, v in VARIANTS.items() if v.timm]
LARGE = ("CoAtNet3", "CoAtNet4", "CoAtNet3RW")
# The numbers (timm coatnet_<n>_224) and the paper's FLOPs at 224 px (Table 3).
PAPER_PARAMS = {"CoAtNet0": 25_036_820, "CoAtNet1": 42_225_776, "CoAtNet2": 74_684_744, "CoAtNet3": 166_966_264}
PAPER_FLOPS = {"CoAtNet0": 4.2e9, "CoAtNet1": 8.4e9, "CoAtNet2": 15.7e9, "CoAtNet3": 34.7e9}


def _trainable(model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.mark.parametrize("function", [pytest.param(f, marks=pytest.mark.slow) if f in LARGE else f for f in COATNETS])
def test_parameter_counts_equal_timm(function):
    model = create_model(function, weights=None)
    reference = timm.create_model(get_variant(function).timm, num_classes=1000)
    assert _trainable(model) == sum(p.numel() for p in reference.parameters())
    if function in PAPER_PARAMS:
        assert _trainable(model) == PAPER_PARAMS[function]


@pytest.mark.parametrize("function", [pytest.param(f, marks=pytest.mark.slow) if f in LARGE else f
                                      for f in PAPER_FLOPS])
def test_flops_within_3_percent_of_the_paper(function):
    flops = ek.count_flops(create_model(function, weights=None))
    assert abs(flops / PAPER_FLOPS[function] - 1) < 0.03, flops


def _photos(size):
    """The cat and espresso photos, [0, 255]: distinct images, unlike noise, which pooling averages away."""
    return np.stack([eval_transform(p, size).numpy() for p in sample_photos().values()])


def _timm_model(arch, img_size=224, **kwargs):
    """timm's network with random weights, randomized BatchNorm statistics and norm affines (eval mode)."""
    torch.manual_seed(0)
    model = timm.create_model(arch, img_size=img_size, **kwargs).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 2.0)
            if isinstance(module, (torch.nn.BatchNorm2d, torch.nn.LayerNorm)):
                module.weight.normal_(1, 0.1)
                module.bias.normal_(0, 0.1)
    return model


def _timm_logits(model, images, normalization):
    x = images / 127.5 - 1 if normalization == "inception" else (images / 255 - np.array(
        [0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    with torch.no_grad():
        return model(torch.from_numpy(x.transpose(0, 3, 1, 2).astype(np.float32))).numpy()


def _state(model):
    return {k: v.numpy() for k, v in model.state_dict().items()}


def _crop_tables(state, map_sizes):
    """timm's flat (rows * cols, heads) tables cut to their centre for smaller maps: what ours read at run time."""
    out = dict(state)
    for key, table in state.items():
        if key.endswith("relative_position_bias_table"):
            side = int(round(table.shape[0] ** 0.5))
            stage = int(key.split(".")[1])
            new = 2 * map_sizes[stage] - 1
            out[key] = resize_bias_table(table.reshape(side, side, -1), (new, new)).reshape(new * new, -1)
            assert new < side
    return out


# The paper's CoAtNet-0 (stride in the expansion conv: timm's conv_stride_mode="1x1"), and timm's default placement
# (the depthwise conv) built from the same rows; two timm _rw models with public weights.
CASES = [("CoAtNet0", {"conv_stride_mode": "1x1"}, None), ("CoAtNet0", {}, "dw"), ("CoAtNetNanoRW", {}, None),
         ("CoAtNet0RW", {}, None)]


@pytest.mark.parametrize("function,timm_kwargs,downsample", CASES)
def test_timm_logits_equal_at_224_and_with_cropped_and_interpolated_tables(function, timm_kwargs, downsample,
                                                                            tmp_path):
    v = get_variant(function)
    if downsample:
        v = dataclasses.replace(v, family=dataclasses.replace(v.family, downsample=downsample))
    reference = _timm_model(v.timm, **timm_kwargs)
    state = _state(reference)
    torch.save(reference.state_dict(), tmp_path / "coatnet.pth")
    normalization = v.family.preprocessing

    # 224 px through weights="timm:<path>", and the same weights at 160 px in a model of unknown input size:
    # its 7x7 and 14x14 tables (from 224) are read at their centre for 5x5 and 10x10 maps.
    model = create_model(v, weights=f"timm:{tmp_path / 'coatnet.pth'}", classifier_activation=None,
                         input_shape=(None, None, 3))
    np.testing.assert_allclose(model.predict(_photos(224), verbose=0),
                               _timm_logits(reference, _photos(224), normalization), atol=1e-4, rtol=0)
    small = _timm_model(v.timm, img_size=160, **timm_kwargs)
    small.load_state_dict({k: torch.from_numpy(a) for k, a in _crop_tables(state, {2: 10, 3: 5}).items()})
    np.testing.assert_allclose(model.predict(_photos(160), verbose=0),
                               _timm_logits(small, _photos(160), normalization), atol=1e-4, rtol=0)

    # 256 px: timm interpolates the tables when loading 224 px weights into a 256 px model; so do we.
    from timm.models.maxxvit import checkpoint_filter_fn

    large = _timm_model(v.timm, img_size=256, **timm_kwargs)
    large.load_state_dict(checkpoint_filter_fn(reference.state_dict(), large))
    model = create_model(v, weights=None, classifier_activation=None, input_shape=(256, 256, 3))
    coatnet_to_keras(model, state)
    np.testing.assert_allclose(model.predict(_photos(256), verbose=0),
                               _timm_logits(large, _photos(256), normalization), atol=1e-4, rtol=0)
