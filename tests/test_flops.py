"""Parameter counts and FLOPs against the papers (and, for Lite, the PyTorch reference network)."""

import numpy as np
import pytest

import efficientnet_keras as ek


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


# (variant, paper's rounded trainable parameters). Exact counts for the keras.applications variants are
# asserted equal to keras.applications in test_models.py; for Lite, to the PyTorch reference below.
# (variant, paper's figure, its significant digits, slow to build).
PAPER_PARAMS = [
    ("EfficientNetB0", 5.3e6, 2, False),
    ("EfficientNetB7", 66e6, 2, True),
    ("EfficientNetV2S", 21.5e6, 3, False),
    ("EfficientNetV2M", 54.1e6, 3, True),
    ("EfficientNetV2L", 118.5e6, 4, True),
    ("EfficientNetV2XL", 208e6, 3, True),
    ("EfficientNetLite0", 4.7e6, 2, False),
]


@pytest.mark.parametrize(
    "name, paper, digits", [pytest.param(*p[:3], marks=pytest.mark.slow if p[3] else ()) for p in PAPER_PARAMS]
)
def test_parameter_counts_round_to_the_papers(name, paper, digits):
    model = getattr(ek, name)(weights=None)
    assert float(f"{_trainable(model):.{digits}g}") == paper


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4])
def test_lite_parameter_counts_equal_pytorch_reference(n):
    pytest.importorskip("torch")
    from efficientnet_lite_pytorch import EfficientNet

    reference = EfficientNet.from_name(f"efficientnet-lite{n}")
    model = getattr(ek, f"EfficientNetLite{n}")(weights=None)
    assert _trainable(model) == sum(p.numel() for p in reference.parameters())


# (variant, input size, paper FLOPs). Multiply-adds of convs and dense layers, as the papers count.
PAPER_FLOPS = [
    pytest.param("EfficientNetB0", 224, 0.39e9),
    pytest.param("EfficientNetB7", 600, 37e9, marks=pytest.mark.slow),
    pytest.param("EfficientNetV2M", 480, 24e9, marks=pytest.mark.slow),
    pytest.param("EfficientNetV2XL", 512, 94e9, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("name, size, paper", PAPER_FLOPS)
def test_flops_match_the_papers(name, size, paper):
    model = getattr(ek, name)(weights=None, input_shape=(size, size, 3))
    assert abs(ek.count_flops(model) / paper - 1) < 0.03


def test_flops_v2s_multiply_adds():
    """V2-S at 384: 8.37B multiply-adds, summed stage by stage below; the paper prints 8.8B (+5%), a figure no
    multiply-add count of this architecture reproduces (V2-L goes the other way: 56.1B vs the paper's 53B)."""
    model = ek.EfficientNetV2S(weights=None, input_shape=(384, 384, 3))
    flops = ek.count_flops(model)
    # Stem + stages 1-3 (Fused-MBConv) by hand: 3x3 convs dominate at 192/96/48 px.
    stem = 192 * 192 * 3 * 3 * 3 * 24
    stage1 = 2 * 192 * 192 * 3 * 3 * 24 * 24
    stage2 = 96 * 96 * (3 * 3 * 24 * 96 + 96 * 48) + 3 * 96 * 96 * (3 * 3 * 48 * 192 + 192 * 48)
    stage3 = 48 * 48 * (3 * 3 * 48 * 192 + 192 * 64) + 3 * 48 * 48 * (3 * 3 * 64 * 256 + 256 * 64)
    fused = ek.count_flops(_truncate(model, "block3d_project_bn"))
    assert fused == stem + stage1 + stage2 + stage3
    assert abs(flops / 8.8e9 - 1) < 0.06 and round(flops / 1e9, 2) == 8.37


def _truncate(model, layer_name):
    import keras

    return keras.Model(model.inputs, model.get_layer(layer_name).output)


def test_flops_needs_static_size():
    model = ek.EfficientNetB0(weights=None, include_top=False)
    with pytest.raises(ValueError, match="static input size"):
        ek.count_flops(model)
