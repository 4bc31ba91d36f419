"""Each block kind alone, against its reference: MBConv and Fused-MBConv against keras.applications' block
functions (V1 ``efficientnet.block``, V2 ``MBConvBlock``/``FusedMBConvBlock``, same layer names), CoAtNet's
pre-norm MBConv and Transformer block against timm's ``MbConvBlock``/``TransformerBlock2d`` taken from timm's
own networks. Random weights and BatchNorm statistics, float64 (float32 rounding would hide nothing here, but
float64 makes the tolerance tight)."""

import dataclasses

import keras
import numpy as np
import pytest

import torchvision_stub
from conftest import randomize_torch_norms
from efficientnet_keras import block_args
from efficientnet_keras.blocks import FUNCTIONS, Ops, Position
from efficientnet_keras.builder import COATNET, COATNET_RW, V1, V2
from efficientnet_keras.models import get_variant
from efficientnet_keras.weights.convert import assign_layers
from efficientnet_keras.weights.timm_coatnet import assignments


@pytest.fixture
def float64():
    keras.config.set_floatx("float64")  # the inputs too
    keras.config.set_dtype_policy("float64")
    yield
    keras.config.set_dtype_policy("float32")
    keras.config.set_floatx("float32")


def _ops(family):
    return Ops(family.activation, family.bn_momentum, family.bn_epsilon, family.padding)


def _ours(family, string, at: Position, size: int, name: str = "block2a_"):
    """One block of ``family`` from a block-args string, as a model of a (size, size, input filters) map."""
    args = block_args.decode(string)
    cfg = family.block_config(args)
    inputs = keras.Input((size, size, at.input_filters))
    return keras.Model(inputs, FUNCTIONS[type(cfg)](inputs, args, cfg, name, ops=_ops(family), at=at))


def _randomize(model, rng):
    for layer in model.layers:
        values = []
        for w in layer.weights:
            shape = tuple(w.shape)
            if "variance" in w.path:
                values.append(rng.uniform(0.5, 2.0, shape))
            elif "gamma" in w.path:
                values.append(rng.normal(1.0, 0.1, shape))
            else:
                values.append(rng.normal(0.0, 0.2, shape))
        if values:
            layer.set_weights(values)


def _copy_by_name(source, target):
    """keras.applications' blocks name their layers as ours do: every weighted layer copies over."""
    weighted = [layer for layer in target.layers if layer.weights]
    assert sorted(l.name for l in weighted) == sorted(l.name for l in source.layers if l.weights)
    for layer in weighted:
        layer.set_weights(source.get_layer(layer.name).get_weights())


# (family, block string, input filters, strides, input size): with and without expansion, squeeze-excite,
# identity shortcut (stride 1, same width) and stride-2 padding on an odd map.
V1_CASES = [("r1_k3_s11_e6_i24_o24_se0.25", 24, 1, 15), ("r1_k5_s22_e6_i16_o24_se0.25", 16, 2, 15),
            ("r1_k3_s11_e1_i32_o16_se0.25", 32, 1, 12), ("r1_k3_s11_e6_i24_o24_noskip", 24, 1, 9)]


@pytest.mark.parametrize("string,filters_in,strides,size", V1_CASES)
def test_mbconv_equals_keras_applications_v1_block(float64, string, filters_in, strides, size):
    from keras.src.applications import efficientnet

    args = block_args.decode(string)
    at = Position(filters_in, args.output_filters, strides, 0.0, 0.0)
    ours = _ours(V1, string, at, size)
    inputs = keras.Input((size, size, filters_in))
    theirs = keras.Model(inputs, efficientnet.block(
        inputs, "swish", 0.0, "block2a_", filters_in, args.output_filters, args.kernel_size, strides,
        args.expand_ratio, args.se_ratio or 0.0, args.id_skip))
    _randomize(theirs, np.random.default_rng(0))
    _copy_by_name(theirs, ours)
    x = np.random.default_rng(1).normal(size=(2, size, size, filters_in))
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=0, atol=1e-10)
    assert [l.name for l in ours.layers[1:]] == [l.name for l in theirs.layers[1:]]  # the order of layers too


V2_CASES = [("r1_k3_s1_e4_i24_o24_c1", 24, 1), ("r1_k3_s2_e4_i24_o48_c1", 24, 2), ("r1_k3_s1_e1_i24_o24_c1", 24, 1),
            ("r1_k3_s2_e1_i16_o24_c1", 16, 2), ("r1_k3_s1_e6_i48_o48_se0.25", 48, 1),
            ("r1_k3_s2_e4_i48_o64_se0.25", 48, 2)]


@pytest.mark.parametrize("string,filters_in,strides", V2_CASES)
def test_mbconv_and_fused_mbconv_equal_keras_applications_v2_blocks(float64, string, filters_in, strides):
    from keras.src.applications import efficientnet_v2

    args = block_args.decode(string)
    at = Position(filters_in, args.output_filters, strides, 0.0, 0.0)
    ours = _ours(V2, string, at, 14)
    block = efficientnet_v2.FusedMBConvBlock if args.fused else efficientnet_v2.MBConvBlock
    inputs = keras.Input((14, 14, filters_in))
    theirs = keras.Model(inputs, block(filters_in, args.output_filters, args.expand_ratio, args.kernel_size, strides,
                                       args.se_ratio or 0.0, 0.9, "swish", 0.8, "block2a_")(inputs))
    _randomize(theirs, np.random.default_rng(0))
    _copy_by_name(theirs, ours)
    x = np.random.default_rng(1).normal(size=(2, 14, 14, filters_in))
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=0, atol=1e-10)


def _timm_block(arch: str, stage: int, **kwargs):
    """Block 0 of a stage of timm's network (its own config), float64, random norms and statistics."""
    torch = pytest.importorskip("torch")
    torchvision_stub.install()
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    block = timm.create_model(arch, **kwargs).stages[stage].blocks[0].double().eval()
    return torch, randomize_torch_norms(block)


def _load_timm_block(model, block, stage: int):
    """timm's block state dict into our one-block model, by the converter's own mapping (as for whole networks)."""
    state = {f"stages.{stage}.blocks.0.{k}": t.numpy() for k, t in block.state_dict().items()}
    assign_layers(model, assignments(model, state), "timm")


# (our family, timm architecture and its arguments, stage, our variant for the block strings)
COATNET_CASES = [
    (COATNET, "coatnet_0_224", {"conv_stride_mode": "1x1"}, "CoAtNet0"),
    (dataclasses.replace(COATNET, conv=dataclasses.replace(COATNET.conv, downsample="dw")), "coatnet_0_224", {},
     "CoAtNet0"),
    (COATNET_RW, "coatnet_0_rw_224", {}, "CoAtNet0RW"),
    (get_variant("CoAtNetNanoRW").family, "coatnet_nano_rw_224", {}, "CoAtNetNanoRW"),
    (get_variant("CoAtNetBN0RW").family, "coatnet_bn_0_rw_224", {}, "CoAtNetBN0RW"),
    (get_variant("CoAtNet1RW").family, "coatnet_1_rw_224", {}, "CoAtNet1RW"),
    (get_variant("CoAtNet3RW").family, "coatnet_3_rw_224", {}, "CoAtNet3RW"),
]


@pytest.mark.parametrize("stage", [0, 2], ids=["prenorm_mbconv", "transformer"])
@pytest.mark.parametrize("family,arch,kwargs,variant", COATNET_CASES, ids=[f"{c[1]}{c[2] or ''}" for c in COATNET_CASES])
def test_coatnet_blocks_equal_timm(float64, family, arch, kwargs, variant, stage):
    torch, block = _timm_block(arch, stage, **kwargs)
    v = get_variant(variant)
    string = v.blocks[stage]
    args = block_args.decode(string)
    # The block's input: the stem's output (stage 0) or stage 1's (stage 2), at 224 px.
    filters_in = block_args.decode(v.blocks[stage - 1]).output_filters if stage else args.input_filters
    size = 224 // (2 if stage == 0 else 8)
    at = Position(filters_in, args.output_filters, 2, 0.0, 0.0, map_size=(size // 2, size // 2))
    ours = _ours(family, string, at, size, name=f"block{stage + 1}a_")
    _load_timm_block(ours, block, stage)
    x = np.random.default_rng(1).normal(size=(2, size, size, filters_in))
    with torch.no_grad():
        expected = block(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy().transpose(0, 2, 3, 1)
    # TensorFlow's float64 GELU (its erf) differs from PyTorch's by up to 5e-9 per element (measured on N(0, 9)
    # inputs), which attention and the MLP carry to ~2e-8; a wrong structure or weight is off by ~0.1.
    np.testing.assert_allclose(ours.predict(x, verbose=0), expected, rtol=0, atol=1e-7)
