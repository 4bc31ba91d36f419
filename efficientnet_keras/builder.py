"""One Functional-API builder for every EfficientNet: block-args strings + coefficients -> keras.Model.

Layer names, layer order and numerics follow keras.applications (``efficientnet.py`` for V1 and Lite,
``efficientnet_v2.py`` for V2), so its weight files load unchanged. Where the two Keras files differ (padding,
BatchNorm momentum, filter rounding, the depthwise layer's name, preprocessing), the difference is a field of
``Family``, not a branch of copied code.
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
from efficientnet_keras.block_args import BlockArgs
from efficientnet_keras.layers import AdjustableDropout, BatchNormalization, SamePadding2D, StochasticDepth, TOP_DROPOUT_NAME

__all__ = ["Family", "V1", "V2", "LITE", "build_efficientnet", "round_filters", "round_repeats", "MIN_INPUT_SIZE"]

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
    # "lite": (x - 127) / 128 (the official EfficientNet-Lite MEAN_RGB/STDDEV_RGB).
    preprocessing: str = "imagenet_adapt"


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
FAMILIES = {f.name: f for f in (V1, V2, LITE)}


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

    def conv(self, x, filters: int, kernel_size: int, strides: int, name: str, **kwargs):
        padding = "same"
        if strides > 1 and self.family.explicit_padding:
            x = _pad_for_stride(x, kernel_size, f"{name}_pad")
            padding = "valid"
        return layers.Conv2D(
            filters,
            kernel_size,
            strides=strides,
            padding=padding,
            use_bias=False,
            kernel_initializer=CONV_KERNEL_INITIALIZER,
            name=name,
            **kwargs,
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
            activation=self.family.activation,
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
            dw_name = f"{name}{self.family.depthwise_name}"
            padding = "same"
            if strides > 1 and self.family.explicit_padding:
                x = _pad_for_stride(x, k, f"{name}dwconv_pad")
                padding = "valid"
            x = layers.DepthwiseConv2D(
                k,
                strides=strides,
                padding=padding,
                use_bias=False,
                depthwise_initializer=CONV_KERNEL_INITIALIZER,
                name=dw_name,
            )(x)
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
            if depth_fraction > 0:
                x = StochasticDepth(drop_connect_rate * depth_fraction, depth_fraction, name=f"{name}drop")(x)
            x = layers.add([x, inputs], name=f"{name}add")
        return x


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
) -> keras.Model:
    """Build an EfficientNet from block-args strings and scaling coefficients (no weights are loaded).

    ``pretrained`` only tightens input checks (3 channels); ``imagenet_v1_rescaling`` adds the extra
    ``rescaling_1`` layer keras.applications V1 uses with its ImageNet files. ``preprocessing`` overrides the
    family's input normalization (a ``Family.preprocessing`` value), e.g. ``"unit"`` for V2-B0 weights trained on
    [-1, 1] inputs. ``efficientnet_keras.models``
    wraps this with weight loading for the named variants.
    """
    if isinstance(family, str):
        if family not in FAMILIES:
            raise ValueError(f"Unknown family {family!r}; expected one of {sorted(FAMILIES)}.")
        family = FAMILIES[family]
    decoded = [b if isinstance(b, BlockArgs) else block_args_lib.decode(b) for b in blocks]
    if not decoded:
        raise ValueError("blocks must hold at least one block-args string; got none.")
    _check_coefficients(width_coefficient, depth_coefficient, default_size, dropout_rate, drop_connect_rate)
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

    b = _Builder(family, width_coefficient, depth_coefficient, depth_divisor)
    channels = img_input.shape[b.bn_axis]
    x = img_input
    if include_preprocessing:
        x = b.preprocessing(x, channels, imagenet_v1_rescaling, preprocessing)

    stem = family.stem_filters if family.stem_filters is not None else decoded[0].input_filters
    stem_filters = b.filters(stem, fixed=family.fixed_stem_head)
    x = b.conv_bn_act(x, stem_filters, 3, 2, "stem_")

    repeats = [b.repeats(i, len(decoded), args.repeats) for i, args in enumerate(decoded)]
    total = float(sum(repeats))
    index = 0
    filters_in = stem_filters
    for stage, (args, n) in enumerate(zip(decoded, repeats)):
        if stage > 0 and b.filters(args.input_filters) != filters_in:
            raise ValueError(
                f"Stage {stage + 1} ({block_args_lib.encode(args)!r}) takes i{args.input_filters} "
                f"({b.filters(args.input_filters)} filters after width scaling), but stage {stage} gives "
                f"{filters_in}; the 'i' of a stage must equal the previous stage's 'o'."
            )
        for j in range(n):
            x = b.block(
                x,
                args,
                input_filters=filters_in,
                strides=args.stride if j == 0 else 1,
                depth_fraction=index / total,
                drop_connect_rate=drop_connect_rate,
                name=f"block{stage + 1}{_block_letter(j)}_",
            )
            filters_in = b.filters(args.output_filters)
            index += 1

    x = b.conv(x, b.filters(family.head_filters, fixed=family.fixed_stem_head), 1, 1, "top_conv")
    x = b.bn(x, "top_bn")
    x = layers.Activation(family.activation, name="top_activation")(x)

    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        # Kept even at rate 0 (keras.applications drops it then) so the rate can be raised later, e.g. by
        # progressive learning; it has no weights, so weight files are unaffected.
        x = AdjustableDropout(dropout_rate, name=TOP_DROPOUT_NAME)(x)
        # Under a mixed-precision policy the logits and softmax stay float32 (Keras' mixed-precision guidance).
        mixed = keras.mixed_precision.global_policy().name.startswith("mixed")
        x = layers.Dense(
            classes,
            activation=classifier_activation,
            kernel_initializer=DENSE_KERNEL_INITIALIZER,
            bias_initializer="zeros",
            dtype="float32" if mixed else None,
            name="predictions",
        )(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)

    # Keras maps the layer graph recursively; V2-XL (1,500+ layers) needs more than Python's default depth.
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20000))
    if input_tensor is not None:
        from keras.src.ops.operation_utils import get_source_inputs  # same helper keras.applications uses

        inputs = get_source_inputs(input_tensor)
    else:
        inputs = img_input
    return keras.Model(inputs, x, name=name)


def _block_letter(j: int) -> str:
    """keras.applications names repeats a, b, c, ...; past z it continues with chr(97 + j) as they do."""
    return chr(j + 97)


# A block's layer-name prefix, e.g. "block2a_"; the letter may be past "z" ("block6{_" in V2-XL's 32-block stage).
BLOCK_PREFIX = re.compile(r"^(block\d+[^\d_]_)")
