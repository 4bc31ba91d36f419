"""One Functional-API builder for every EfficientNet and CoAtNet: block-args strings + coefficients -> keras.Model.

Layer names, layer order and numerics follow keras.applications (``efficientnet.py`` for V1 and Lite,
``efficientnet_v2.py`` for V2), so its weight files load unchanged. Where the two Keras files differ (padding,
BatchNorm momentum, filter rounding, the depthwise layer's name, preprocessing), the difference is a field of
``Family``, not a branch of copied code. CoAtNet (Dai et al., 2021) is the same network with other conventions:
pre-norm MBConv stages with pooled shortcuts, then Transformer stages (block type ``c2``) with relative attention,
a two-conv stem and a LayerNorm head; its numerics follow timm's ``maxxvit.py``, the reference for the paper's
configurations.
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
from typing import Callable, Sequence

import keras
from keras import layers

from efficientnet_keras import block_args as block_args_lib
from efficientnet_keras.attention import LayerScale, RelativeAttention
from efficientnet_keras.block_args import BlockArgs
from efficientnet_keras.layers import AdjustableDropout, BatchNormalization, SamePadding2D, StochasticDepth, TOP_DROPOUT_NAME

__all__ = ["Family", "V1", "V2", "LITE", "COATNET", "COATNET_RW", "build_efficientnet", "round_filters",
           "round_repeats", "MIN_INPUT_SIZE"]

# Same initializers as keras.applications and the official TF code.
CONV_KERNEL_INITIALIZER = {
    "class_name": "VarianceScaling",
    "config": {"scale": 2.0, "mode": "fan_out", "distribution": "truncated_normal"},
}
DENSE_KERNEL_INITIALIZER = {
    "class_name": "VarianceScaling",
    "config": {"scale": 1.0 / 3.0, "mode": "fan_out", "distribution": "uniform"},
}

IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STDDEV_RGB = (0.229, 0.224, 0.225)

# Five stride-2 reductions: 32 px is the smallest input that still leaves one pixel (as keras.applications).
MIN_INPUT_SIZE = 32


@dataclasses.dataclass(frozen=True)
class Family:
    """Conventions shared by every variant of one EfficientNet family."""

    name: str
    activation: str = "swish"
    bn_momentum: float = 0.99
    bn_epsilon: float = 1e-3
    # V1/Lite pad explicitly before stride-2 convs ("<block>dwconv_pad"); V2 uses padding="same". Same numbers.
    explicit_padding: bool = True
    depthwise_name: str = "dwconv"
    # V1/Lite never round filters down by more than 10%; V2 (automl effnetv2) has no such guard.
    guard_rounding: bool = True
    min_depth: int | None = None
    # Lite: stem, head, and the repeats of the first and last stage are not scaled.
    fixed_stem_head: bool = False
    # None: the stem has as many filters as the first stage's input (V2); else this many (scaled unless fixed).
    stem_filters: int | None = 32
    head_filters: int = 1280
    # "imagenet_adapt": Rescaling(1/255) + Normalization with mean/variance weights (V1, as keras.applications);
    # "imagenet_or_unit": mean/std normalization for 3 channels else [-1, 1] (V2-B0..B3); "unit": [-1, 1];
    # "lite": (x - 127) / 128 (the official EfficientNet-Lite MEAN_RGB/STDDEV_RGB); "inception": x / 127.5 - 1.
    preprocessing: str = "imagenet_adapt"

    # CoAtNet's conventions (the defaults are EfficientNet's). "pre": BatchNorm before each MBConv block and none
    # after its projection, LayerNorm before attention and the MLP of Transformer blocks.
    norm_placement: str = "post"
    symmetric_padding: bool = False  # PyTorch's k // 2 on every side (timm) instead of TensorFlow's 'same'
    stem_ratios: tuple[float, ...] = (1.0,)  # two: conv-BN-act-conv, the widths as fractions of the stem's
    expand_from: str = "input"  # "output": an MBConv's expanded width is expansion x its output filters
    se_from: str = "input"  # what the squeeze-excite ratio is of: "input", "output" or "expanded" filters
    se_activation: str | None = None  # None: the family's activation
    se_before_bn: bool = False  # squeeze-excite between the depthwise conv and its BatchNorm
    pre_norm_activation: bool = False  # an activation after the pre-norm BatchNorm
    downsample: str = "conv"  # "conv": strided depthwise conv; "dw" the same plus a pooled shortcut; "1x1": the
    # expansion conv strides, plus a pooled shortcut; "pool": average-pool before the expansion, pooled shortcut
    output_bias: bool = False  # bias on the pre-norm MBConv's projection and shortcut convs
    attention_norm: str = "layernorm"  # or "batchnorm"
    norm_epsilon: float = 1e-6  # of the Transformer blocks' and the head's norms
    mlp_activation: str = "gelu"
    expand_attention_first: bool = True  # attention width: the output's (True) or the input's, widened by proj
    attention_shortcut_bias: bool = True
    layer_scale: float | None = None  # initial LayerScale of Transformer residual branches; None: none
    head: str = "conv"  # "conv": top_conv-BN-act; "norm_mlp": pool, LayerNorm, Dense-tanh; "norm": LayerNorm, pool


V1 = Family("v1")
V2 = Family(
    "v2",
    bn_momentum=0.9,
    explicit_padding=False,
    depthwise_name="dwconv2",
    guard_rounding=False,
    min_depth=8,
    stem_filters=None,
    preprocessing="unit",
)
V2_B = dataclasses.replace(V2, preprocessing="imagenet_or_unit")
LITE = Family("lite", activation="relu6", fixed_stem_head=True, preprocessing="lite")
# CoAtNet as in the paper (timm's coatnet_0_224 ... coatnet_5_224): the head is as wide as the last stage.
COATNET = Family(
    "coatnet",
    activation="gelu",
    bn_momentum=0.9,
    bn_epsilon=1e-5,
    explicit_padding=False,
    guard_rounding=False,
    stem_filters=None,
    head_filters=None,
    preprocessing="inception",
    norm_placement="pre",
    symmetric_padding=True,
    stem_ratios=(1.0, 1.0),
    expand_from="output",
    se_from="output",
    se_activation="swish",
    # The paper strides the first 1x1 conv of a downsampling MBConv (timm's coatnet_<n>_224 default to the depthwise
    # conv, conv_stride_mode="dw"; same weights): its FLOPs (4.2G ... 34.7G) are those of this placement.
    downsample="1x1",
    output_bias=True,
    head="norm_mlp",
)
# timm's own CoAtNets (coatnet_*_rw_224), trained before the paper's details were public; rows vary the rest.
COATNET_RW = dataclasses.replace(
    COATNET, name="coatnet_rw", activation="swish", stem_ratios=(0.5, 1.0), expand_from="input", se_from="expanded",
    se_activation="relu", se_before_bn=True, pre_norm_activation=True, downsample="pool", output_bias=False,
    expand_attention_first=False, attention_shortcut_bias=False, head="norm")
FAMILIES = {f.name: f for f in (V1, V2, LITE, COATNET, COATNET_RW)}


def round_filters(filters: int, width: float, divisor: int = 8, min_depth: int | None = None, guard: bool = True) -> int:
    """Scale a filter count by the width coefficient and round to a multiple of ``divisor``."""
    scaled = filters * width
    new_filters = max(min_depth or divisor, int(scaled + divisor / 2) // divisor * divisor)
    if guard and new_filters < 0.9 * scaled:
        new_filters += divisor
    return int(new_filters)


def round_repeats(repeats: int, depth: float) -> int:
    """Scale a stage's repeats by the depth coefficient, rounding up."""
    return int(math.ceil(depth * repeats))


def _bn_axis() -> int:
    return 3 if keras.config.image_data_format() == "channels_last" else 1


def _check_coefficients(width: float, depth: float, default_size: int, dropout: float, drop_connect: float) -> None:
    for what, value in (("width_coefficient", width), ("depth_coefficient", depth)):
        if not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{what} must be a positive number, got {value!r}.")
    if not isinstance(default_size, int) or default_size < MIN_INPUT_SIZE:
        raise ValueError(f"default_size must be an integer >= {MIN_INPUT_SIZE}, got {default_size!r}.")
    for what, value in (("dropout_rate", dropout), ("drop_connect_rate", drop_connect)):
        if not 0 <= value < 1:
            raise ValueError(f"{what} must be in [0, 1), got {value!r}.")


def resolve_input_shape(
    input_shape: Sequence[int | None] | None,
    default_size: int,
    include_top: bool,
    pretrained: bool,
) -> tuple[int | None, ...]:
    """The model's input shape, with keras.applications' rules and errors that say what is wrong."""
    channels_last = keras.config.image_data_format() == "channels_last"
    default = (default_size, default_size, 3) if channels_last else (3, default_size, default_size)
    if input_shape is None:
        if include_top:
            return default
        return (None, None, 3) if channels_last else (3, None, None)
    input_shape = tuple(input_shape)
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must have 3 entries (height, width, channels), got {input_shape}.")
    channels = input_shape[-1] if channels_last else input_shape[0]
    spatial = input_shape[:2] if channels_last else input_shape[1:]
    if pretrained and channels != 3:
        raise ValueError(
            f"Pretrained weights expect 3 input channels (RGB); input_shape={input_shape} has {channels}. "
            "Use weights=None for other channel counts."
        )
    if channels is not None and channels < 1:
        raise ValueError(f"input_shape={input_shape} has {channels} channels; need at least 1.")
    for size in spatial:
        if size is not None and size < MIN_INPUT_SIZE:
            raise ValueError(
                f"Input size must be at least {MIN_INPUT_SIZE}x{MIN_INPUT_SIZE} (the network halves it five "
                f"times); got input_shape={input_shape}."
            )
    # Unlike keras.applications, include_top=True accepts (None, None, C): the head is global pooling, and
    # progressive learning trains one model at several image sizes.
    return input_shape


def _pad_for_stride(x, kernel_size: int, name: str):
    """TF 'same' padding for a stride-2 conv, made explicit where keras.applications V1 pads (its layer name),
    computed per input size (``SamePadding2D``: keras.applications' fixed padding is wrong for other sizes)."""
    return SamePadding2D(kernel_size, 2, name=name)(x)


class _Builder:
    """Applies one family's conventions; each method adds one named part of the network."""

    def __init__(self, family: Family, width: float, depth: float, depth_divisor: int = 8):
        self.family = family
        self.width = width
        self.depth = depth
        self.depth_divisor = depth_divisor
        self.bn_axis = _bn_axis()

    def filters(self, n: int, fixed: bool = False) -> int:
        if fixed:
            return n
        f = self.family
        return round_filters(n, self.width, self.depth_divisor, f.min_depth, f.guard_rounding)

    def repeats(self, stage: int, num_stages: int, n: int) -> int:
        if self.family.fixed_stem_head and stage in (0, num_stages - 1):
            return n
        return round_repeats(n, self.depth)

    def pad(self, x, kernel_size: int, strides: int, name: str):
        """Explicit padding in front of a strided conv, where the family has it; returns (x, Keras padding)."""
        if strides > 1 and kernel_size > 1 and self.family.symmetric_padding:
            return layers.ZeroPadding2D(kernel_size // 2, name=name)(x), "valid"
        if strides > 1 and self.family.explicit_padding:
            return _pad_for_stride(x, kernel_size, name), "valid"
        return x, "same"  # stride 1, odd kernel: TensorFlow's 'same' is symmetric

    def conv(self, x, filters: int, kernel_size: int, strides: int, name: str, use_bias: bool = False, **kwargs):
        x, padding = self.pad(x, kernel_size, strides, f"{name}_pad")
        return layers.Conv2D(
            filters,
            kernel_size,
            strides=strides,
            padding=padding,
            use_bias=use_bias,
            kernel_initializer=CONV_KERNEL_INITIALIZER,
            name=name,
            **kwargs,
        )(x)

    def depthwise(self, x, kernel_size: int, strides: int, name: str, pad_name: str):
        x, padding = self.pad(x, kernel_size, strides, pad_name)
        return layers.DepthwiseConv2D(
            kernel_size,
            strides=strides,
            padding=padding,
            use_bias=False,
            depthwise_initializer=CONV_KERNEL_INITIALIZER,
            name=name,
        )(x)

    def bn(self, x, name: str):
        f = self.family
        return BatchNormalization(axis=self.bn_axis, momentum=f.bn_momentum, epsilon=f.bn_epsilon, name=name)(x)

    def conv_bn_act(self, x, filters: int, kernel_size: int, strides: int, prefix: str, act: bool = True):
        """conv -> BN -> activation, named ``<prefix>conv``, ``<prefix>bn``, ``<prefix>activation``."""
        x = self.conv(x, filters, kernel_size, strides, f"{prefix}conv")
        x = self.bn(x, f"{prefix}bn")
        return layers.Activation(self.family.activation, name=f"{prefix}activation")(x) if act else x

    def preprocessing(self, x, channels: int, pretrained_v1: bool, kind: str | None = None):
        kind = kind or self.family.preprocessing
        if kind == "imagenet_or_unit":
            kind = "imagenet" if channels == 3 else "unit"
        if kind == "imagenet_adapt":
            # keras.applications V1: mean/variance are weights of the Normalization layer (ImageNet weight files
            # carry them), and for its ImageNet files an extra Rescaling divides by sqrt(std) because those files
            # store std, not std**2, as the variance (keras issue tensorflow/tensorflow#49930).
            x = layers.Rescaling(1.0 / 255.0, name="rescaling")(x)
            x = layers.Normalization(axis=self.bn_axis, name="normalization")(x)
            if pretrained_v1:
                x = layers.Rescaling([1.0 / math.sqrt(s) for s in IMAGENET_STDDEV_RGB], name="rescaling_1")(x)
            return x
        if kind == "imagenet":
            x = layers.Rescaling(1.0 / 255.0, name="rescaling")(x)
            return layers.Normalization(
                mean=list(IMAGENET_MEAN_RGB),
                variance=[s**2 for s in IMAGENET_STDDEV_RGB],
                axis=self.bn_axis,
                name="normalization",
            )(x)
        if kind == "unit":
            return layers.Rescaling(1.0 / 128.0, offset=-1, name="rescaling")(x)
        if kind == "lite":
            return layers.Rescaling(1.0 / 128.0, offset=-127.0 / 128.0, name="rescaling")(x)
        if kind == "inception":
            return layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescaling")(x)
        raise ValueError(f"Family '{self.family.name}' has unknown preprocessing {kind!r}.")

    def squeeze_excite(self, x, filters: int, input_filters: int, se_ratio: float, name: str):
        """Squeeze-and-excitation (Hu et al., 2018); the bottleneck is sized from the block's *input* filters."""
        se = layers.GlobalAveragePooling2D(name=f"{name}se_squeeze")(x)
        shape = (1, 1, filters) if self.bn_axis == 3 else (filters, 1, 1)
        se = layers.Reshape(shape, name=f"{name}se_reshape")(se)
        se = layers.Conv2D(
            max(1, int(input_filters * se_ratio)),
            1,
            padding="same",
            activation=self.family.se_activation or self.family.activation,
            kernel_initializer=CONV_KERNEL_INITIALIZER,
            name=f"{name}se_reduce",
        )(se)
        se = layers.Conv2D(
            filters,
            1,
            padding="same",
            activation="sigmoid",
            kernel_initializer=CONV_KERNEL_INITIALIZER,
            name=f"{name}se_expand",
        )(se)
        return layers.multiply([x, se], name=f"{name}se_excite")

    def block(self, inputs, args: BlockArgs, input_filters: int, strides: int, depth_fraction: float,
              drop_connect_rate: float, name: str):
        """One MBConv (Sandler et al., 2018) or Fused-MBConv (EfficientNetV2) block."""
        act = self.family.activation
        filters = input_filters * args.expand_ratio
        k = args.kernel_size
        x = inputs
        if args.fused:
            if args.expand_ratio != 1:
                x = self.conv(x, filters, k, strides, f"{name}expand_conv")
                x = self.bn(x, f"{name}expand_bn")
                x = layers.Activation(act, name=f"{name}expand_activation")(x)
        else:
            if args.expand_ratio != 1:
                x = self.conv(x, filters, 1, 1, f"{name}expand_conv")
                x = self.bn(x, f"{name}expand_bn")
                x = layers.Activation(act, name=f"{name}expand_activation")(x)
            x = self.depthwise(x, k, strides, f"{name}{self.family.depthwise_name}", f"{name}dwconv_pad")
            x = self.bn(x, f"{name}bn")
            x = layers.Activation(act, name=f"{name}activation")(x)
        if args.se_ratio:
            x = self.squeeze_excite(x, filters, input_filters, args.se_ratio, name)
        # Fused-MBConv without expansion: the project conv is the block's only (k x k, strided) conv.
        single_conv = args.fused and args.expand_ratio == 1
        x = self.conv(
            x,
            self.filters(args.output_filters),
            k if single_conv else 1,
            strides if single_conv else 1,
            f"{name}project_conv",
        )
        x = self.bn(x, f"{name}project_bn")
        if single_conv:
            x = layers.Activation(act, name=f"{name}project_activation")(x)
        if args.id_skip and strides == 1 and input_filters == x.shape[self.bn_axis]:
            x = self.residual(x, inputs, depth_fraction, drop_connect_rate, name)
        return x

    # ----------------------------------------------------------------------------------------- CoAtNet (pre-norm)

    def pool(self, x, name: str):
        """CoAtNet's downsampling: 2x2 average pooling ('same': an odd map keeps its last row, as the strided
        convs beside it do)."""
        return layers.AveragePooling2D(2, 2, padding="same", name=name)(x)

    def norm(self, x, name: str):
        """The Transformer blocks' and head's norm over channels (LayerNorm, or BatchNorm for timm's bn_0)."""
        f = self.family
        if f.attention_norm == "batchnorm":
            return BatchNormalization(axis=self.bn_axis, momentum=f.bn_momentum, epsilon=f.norm_epsilon, name=name)(x)
        return layers.LayerNormalization(axis=self.bn_axis, epsilon=f.norm_epsilon, name=name)(x)

    def shortcut(self, x, filters: int, strides: int, use_bias: bool, name: str):
        """A pre-norm block's shortcut: average-pooled when the block strides, 1x1-projected when it widens."""
        if strides > 1:
            x = self.pool(x, f"{name}shortcut_pool")
        if x.shape[self.bn_axis] != filters:
            x = self.conv(x, filters, 1, 1, f"{name}shortcut_conv", use_bias=use_bias)
        return x

    def residual(self, x, shortcut, depth_fraction: float, drop_connect_rate: float, name: str, suffix: str = ""):
        """``shortcut + x``, x dropped by stochastic depth (none in the first block: its rate is 0)."""
        if depth_fraction > 0:
            x = StochasticDepth(drop_connect_rate * depth_fraction, depth_fraction, name=f"{name}drop{suffix}")(x)
        return layers.add([x, shortcut], name=f"{name}add{suffix}")

    def prenorm_mbconv(self, inputs, args: BlockArgs, input_filters: int, strides: int, depth_fraction: float,
                       drop_connect_rate: float, name: str):
        """CoAtNet's MBConv: BN (pre-norm) -> 1x1 expand -> depthwise -> squeeze-excite -> 1x1 project, added to
        a pooled, projected shortcut; no BatchNorm after the projection."""
        f = self.family
        act = f.activation
        out = self.filters(args.output_filters)
        mid = (out if f.expand_from == "output" else input_filters) * args.expand_ratio
        shortcut = self.shortcut(inputs, out, strides, f.output_bias, name)
        x = self.bn(inputs, f"{name}pre_bn")
        if f.pre_norm_activation:
            x = layers.Activation(act, name=f"{name}pre_activation")(x)
        expand_strides = 1
        if strides > 1 and f.downsample == "pool":
            x, strides = self.pool(x, f"{name}pool"), 1
        elif strides > 1 and f.downsample == "1x1":
            expand_strides, strides = strides, 1
        x = self.conv(x, mid, 1, expand_strides, f"{name}expand_conv")
        x = self.bn(x, f"{name}expand_bn")
        x = layers.Activation(act, name=f"{name}expand_activation")(x)
        x = self.depthwise(x, args.kernel_size, strides, f"{name}dwconv", f"{name}dwconv_pad")
        se_of = {"input": input_filters, "output": out, "expanded": mid}[f.se_from]
        if args.se_ratio and f.se_before_bn:
            x = self.squeeze_excite(x, mid, se_of, args.se_ratio, name)
        x = self.bn(x, f"{name}bn")
        x = layers.Activation(act, name=f"{name}activation")(x)
        if args.se_ratio and not f.se_before_bn:
            x = self.squeeze_excite(x, mid, se_of, args.se_ratio, name)
        x = self.conv(x, out, 1, 1, f"{name}project_conv", use_bias=f.output_bias)
        return self.residual(x, shortcut, depth_fraction, drop_connect_rate, name)

    def transformer(self, inputs, args: BlockArgs, input_filters: int, strides: int, depth_fraction: float,
                    drop_connect_rate: float, name: str, map_size: tuple[int, int]):
        """CoAtNet's Transformer block: x + Attention(Norm(x)), then x + MLP(Norm(x)); a strided block pools
        both paths (CoAtNet eq. 5) and projects the shortcut."""
        f = self.family
        out = self.filters(args.output_filters)
        width = out if f.expand_attention_first else input_filters
        shortcut = self.shortcut(inputs, out, strides, f.attention_shortcut_bias, name)
        x = self.norm(inputs, f"{name}norm1")
        if strides > 1:
            x = self.pool(x, f"{name}pool")
        x = layers.Conv2D(3 * width, 1, name=f"{name}qkv")(x)
        x = RelativeAttention(width // args.head_size, args.head_size, map_size, name=f"{name}attention")(x)
        x = layers.Conv2D(out, 1, name=f"{name}proj")(x)
        if f.layer_scale:
            x = LayerScale(f.layer_scale, name=f"{name}layer_scale1")(x)
        x = self.residual(x, shortcut, depth_fraction, drop_connect_rate, name, "1")
        y = self.norm(x, f"{name}norm2")
        y = layers.Conv2D(out * args.expand_ratio, 1, name=f"{name}mlp_fc1")(y)
        y = layers.Activation(f.mlp_activation, name=f"{name}mlp_activation")(y)
        y = layers.Conv2D(out, 1, name=f"{name}mlp_fc2")(y)
        if f.layer_scale:
            y = LayerScale(f.layer_scale, name=f"{name}layer_scale2")(y)
        return self.residual(y, x, depth_fraction, drop_connect_rate, name, "2")

    # ---------------------------------------------------------------------------------------------- stem, head

    def stem(self, x, filters: int):
        """conv 3x3/2 -> BN -> activation (EfficientNet), then a second 3x3 conv for CoAtNet's two-conv S0."""
        widths = [int(filters * r) for r in self.family.stem_ratios]
        x = self.conv_bn_act(x, widths[0], 3, 2, "stem_")
        for i, width in enumerate(widths[1:], start=2):
            x = self.conv(x, width, 3, 1, f"stem_conv{i}")
        return x

    def top(self, x, filters_in: int, include_top: bool, pooling: str | None, dropout_rate: float, classes: int,
            classifier_activation):
        """The head: EfficientNet's 1x1 conv (``top_conv``), or CoAtNet's norms, then pooling and the classifier."""
        f = self.family
        if f.head == "conv":
            x = self.conv(x, self.filters(f.head_filters, fixed=f.fixed_stem_head), 1, 1, "top_conv")
            x = self.bn(x, "top_bn")
            x = layers.Activation(f.activation, name="top_activation")(x)
        elif f.head == "norm":
            x = self.norm(x, "top_norm")
        if not include_top:
            if pooling == "avg":
                return layers.GlobalAveragePooling2D(name="avg_pool")(x)
            return layers.GlobalMaxPooling2D(name="max_pool")(x) if pooling == "max" else x
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if f.head == "norm_mlp":  # timm's NormMlpClassifierHead: pool -> LayerNorm -> Dense + tanh
            x = layers.LayerNormalization(epsilon=f.norm_epsilon, name="head_norm")(x)
            x = layers.Dense(f.head_filters or filters_in, activation="tanh", name="head_fc")(x)
        # Kept even at rate 0 (keras.applications drops it then) so the rate can be raised later, e.g. by
        # progressive learning; it has no weights, so weight files are unaffected.
        x = AdjustableDropout(dropout_rate, name=TOP_DROPOUT_NAME)(x)
        # Under a mixed-precision policy the logits and softmax stay float32 (Keras' mixed-precision guidance).
        mixed = keras.mixed_precision.global_policy().name.startswith("mixed")
        return layers.Dense(
            classes,
            activation=classifier_activation,
            kernel_initializer=DENSE_KERNEL_INITIALIZER,
            bias_initializer="zeros",
            dtype="float32" if mixed else None,
            name="predictions",
        )(x)

    def stage_block(self, x, args: BlockArgs, **kwargs):
        if args.transformer:
            return self.transformer(x, args, **kwargs)
        kwargs.pop("map_size")
        if self.family.norm_placement == "pre":
            return self.prenorm_mbconv(x, args, **kwargs)
        return self.block(x, args, **kwargs)


def build_efficientnet(
    blocks: Sequence[str | BlockArgs],
    width_coefficient: float = 1.0,
    depth_coefficient: float = 1.0,
    default_size: int = 224,
    dropout_rate: float = 0.2,
    drop_connect_rate: float = 0.2,
    family: Family | str = V1,
    depth_divisor: int = 8,
    name: str = "efficientnet",
    include_top: bool = True,
    input_tensor=None,
    input_shape: Sequence[int | None] | None = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: str | Callable | None = "softmax",
    include_preprocessing: bool = True,
    pretrained: bool = False,
    imagenet_v1_rescaling: bool = False,
    preprocessing: str | None = None,
    max_input_size: int | None = None,
) -> keras.Model:
    """Build an EfficientNet from block-args strings and scaling coefficients (no weights are loaded).

    ``pretrained`` only tightens input checks (3 channels); ``imagenet_v1_rescaling`` adds the extra
    ``rescaling_1`` layer keras.applications V1 uses with its ImageNet files. ``preprocessing`` overrides the
    family's input normalization (a ``Family.preprocessing`` value), e.g. ``"unit"`` for V2-B0 weights trained on
    [-1, 1] inputs. ``max_input_size``: the largest image side the relative-attention tables of Transformer
    stages cover (they cover ``default_size`` and the static input size in any case).
    ``efficientnet_keras.models`` wraps this with weight loading for the named variants.
    """
    if isinstance(family, str):
        if family not in FAMILIES:
            raise ValueError(f"Unknown family {family!r}; expected one of {sorted(FAMILIES)}.")
        family = FAMILIES[family]
    decoded = [b if isinstance(b, BlockArgs) else block_args_lib.decode(b) for b in blocks]
    if not decoded:
        raise ValueError("blocks must hold at least one block-args string; got none.")
    _check_coefficients(width_coefficient, depth_coefficient, default_size, dropout_rate, drop_connect_rate)
    b = _Builder(family, width_coefficient, depth_coefficient, depth_divisor)
    _check_stages(decoded, family, b.filters)
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"pooling must be None, 'avg' or 'max', got {pooling!r}.")
    if include_top and (not isinstance(classes, int) or classes < 1):
        raise ValueError(f"classes must be a positive integer, got {classes!r}.")

    input_shape = resolve_input_shape(input_shape, default_size, include_top, pretrained)
    if input_tensor is None:
        img_input = layers.Input(shape=input_shape)
    elif not keras.backend.is_keras_tensor(input_tensor):
        img_input = layers.Input(tensor=input_tensor, shape=input_shape)
    else:
        img_input = input_tensor

    channels = img_input.shape[b.bn_axis]
    x = img_input
    if include_preprocessing:
        x = b.preprocessing(x, channels, imagenet_v1_rescaling, preprocessing)

    stem = family.stem_filters if family.stem_filters is not None else decoded[0].input_filters
    stem_filters = b.filters(stem, fixed=family.fixed_stem_head)
    x = b.stem(x, stem_filters)

    repeats = [b.repeats(i, len(decoded), args.repeats) for i, args in enumerate(decoded)]
    total = float(sum(repeats))
    index = 0
    filters_in = stem_filters
    largest = _largest_map(img_input.shape, b.bn_axis, default_size, max_input_size)
    stride = 2  # the stem's
    for stage, (args, n) in enumerate(zip(decoded, repeats)):
        if stage > 0 and b.filters(args.input_filters) != filters_in:
            raise ValueError(
                f"Stage {stage + 1} ({block_args_lib.encode(args)!r}) takes i{args.input_filters} "
                f"({b.filters(args.input_filters)} filters after width scaling), but stage {stage} gives "
                f"{filters_in}; the 'i' of a stage must equal the previous stage's 'o'."
            )
        stride *= args.stride
        for j in range(n):
            x = b.stage_block(
                x,
                args,
                input_filters=filters_in,
                strides=args.stride if j == 0 else 1,
                depth_fraction=index / total,
                drop_connect_rate=drop_connect_rate,
                name=f"block{stage + 1}{_block_letter(j)}_",
                map_size=tuple(-(-size // stride) for size in largest),  # ceil: every downsampling keeps odd rows
            )
            filters_in = b.filters(args.output_filters)
            index += 1

    x = b.top(x, filters_in, include_top, pooling, dropout_rate, classes, classifier_activation)

    # Keras maps the layer graph recursively; V2-XL (1,500+ layers) needs more than Python's default depth.
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20000))
    if input_tensor is not None:
        from keras.src.ops.operation_utils import get_source_inputs  # same helper keras.applications uses

        inputs = get_source_inputs(input_tensor)
    else:
        inputs = img_input
    return keras.Model(inputs, x, name=name)


def _largest_map(shape, channel_axis: int, default_size: int, max_input_size: int | None) -> tuple[int, int]:
    """The largest input (height, width) the relative-attention tables cover: the default size, or the static
    input size or ``max_input_size`` where larger. Smaller inputs read the tables' centre, so a weight file fits
    every model of a variant built for its default size or less."""
    spatial = [d for axis, d in enumerate(shape[1:], start=1) if axis != channel_axis]
    return tuple(max(default_size, d or 0, max_input_size or 0) for d in spatial)


def _check_stages(decoded: Sequence[BlockArgs], family: Family, filters: Callable[[int], int]) -> None:
    """What CoAtNet's stage types need, checked before any layer is made (errors name the stage); ``filters``
    scales a stage's filter count (``_Builder.filters``)."""
    stride = 2  # the stem's
    for stage, args in enumerate(decoded, start=1):
        text = block_args_lib.encode(args)
        pre = family.norm_placement == "pre"
        if args.fused and pre:
            raise ValueError(f"Stage {stage} ({text!r}) is a Fused-MBConv stage; family '{family.name}' builds pre-norm "
                             "blocks (MBConv c0 and Transformer c2) only.")
        if args.transformer:
            if not pre:
                raise ValueError(f"Stage {stage} ({text!r}) is a Transformer stage; family '{family.name}' is an "
                                 "EfficientNet family. Use a CoAtNet family (family='coatnet').")
            if keras.config.image_data_format() != "channels_last":
                raise ValueError("Transformer stages need image_data_format 'channels_last'.")
            if stride < 4:
                raise ValueError(
                    f"Stage {stage} ({text!r}) is a Transformer stage before any downsampling stage: attention over "
                    f"every position of a stride-{stride} map is quadratic in the image area (a 224 px image has "
                    f"{(224 // stride) ** 2:,} positions). Put MBConv stages that downsample (s2) first, as CoAtNet does.")
            out, inp = filters(args.output_filters), filters(args.input_filters)
            if args.stride == 1 and inp != out:
                raise ValueError(f"Stage {stage} ({text!r}) is a Transformer stage that neither downsamples (s1) nor "
                                 f"keeps its width (i{args.input_filters} -> o{args.output_filters}): make it s2 or "
                                 "i equal to o.")
            widths = {out, out if family.expand_attention_first else inp}
            bad = sorted(w for w in widths if w % args.head_size)
            if bad:
                raise ValueError(f"Stage {stage} ({text!r}): the head size h{args.head_size} does not divide its "
                                 f"attention width of {bad[0]} channels; choose a head size that divides it.")
        stride *= args.stride


def _block_letter(j: int) -> str:
    """keras.applications names repeats a, b, c, ...; past z it continues with chr(97 + j) as they do."""
    return chr(j + 97)


# A block's layer-name prefix, e.g. "block2a_"; the letter may be past "z" ("block6{_" in V2-XL's 32-block stage).
BLOCK_PREFIX = re.compile(r"^(block\d+[^\d_]_)")
