"""One Functional-API builder for every EfficientNet and CoAtNet: block-args strings + coefficients -> keras.Model.

Layer names, layer order and numerics follow keras.applications (``efficientnet.py`` for V1 and Lite,
``efficientnet_v2.py`` for V2), so its weight files load unchanged. Where the two Keras files differ (padding,
BatchNorm momentum, filter rounding, the depthwise layer's name, preprocessing), the difference is a field of
``Family``, not a branch of copied code. CoAtNet (Dai et al., 2021) is the same network with other block kinds
(``blocks.coatnet``: pre-norm MBConv stages with pooled shortcuts, then Transformer stages with relative
attention), a two-conv stem and a norm head; its numerics follow timm's ``maxxvit.py``, the reference for the
paper's configurations. The builder scales the stages, picks each stage's block kind and chains the blocks;
``blocks`` holds what a block is.
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
from typing import Callable, Sequence

import keras
import numpy as np
from keras import layers

from efficientnet_keras import _keras_private as private
from efficientnet_keras import block_args as block_args_lib
from efficientnet_keras.block_args import BlockArgs
from efficientnet_keras.blocks import (BLOCK_TYPES, FUNCTIONS, ConvHead, MBConvConfig, NormHead, Ops, Position,
                                       PreNormMBConvConfig, TransformerConfig)
from efficientnet_keras.blocks.head import head
from efficientnet_keras.blocks.ops import PADDINGS
from efficientnet_keras.layers import set_layer_weights
from efficientnet_keras.network import EfficientNetModel, PreprocessingConfig
from efficientnet_keras.normalization import IMAGENET, INCEPTION, UNIT, Normalization
from efficientnet_keras.normalization import LITE as LITE_NORMALIZATION

__all__ = ["Family", "V1", "V2", "LITE", "COATNET", "COATNET_RW", "build_efficientnet", "round_filters",
           "round_repeats", "MIN_INPUT_SIZE"]

NORMALIZATION_LAYER = "normalization"  # the input normalization's layer of mean/variance, where there is one

# Five stride-2 reductions: 32 px is the smallest input that still leaves one pixel (as keras.applications).
MIN_INPUT_SIZE = 32


@dataclasses.dataclass(frozen=True)
class Family:
    """Conventions shared by every variant of one family: norms, activation, padding, filter rounding, stem and
    head, input normalization, and one config per block kind it builds (``conv`` for MBConv stages, ``c0``/``c1``;
    ``transformer`` for Transformer stages, ``c2``; None: the family has none)."""

    name: str
    activation: str = "swish"
    bn_momentum: float = 0.99
    bn_epsilon: float = 1e-3
    padding: str = "explicit"  # blocks.ops.PADDINGS: V1/Lite "explicit", V2 "same", timm's CoAtNets "symmetric"
    # V1/Lite never round filters down by more than 10%; V2 (automl effnetv2) has no such guard.
    guard_rounding: bool = True
    min_depth: int | None = None
    # Lite: stem, head, and the repeats of the first and last stage are not scaled.
    fixed_stem_head: bool = False
    # None: the stem has as many filters as the first stage's input (V2); else this many (scaled unless fixed).
    stem_filters: int | None = 32
    stem_ratios: tuple[float, ...] = (1.0,)  # two: conv-BN-act-conv (CoAtNet's S0), widths as the stem's fractions
    head: ConvHead | NormHead = ConvHead()
    # The input normalization of the family's own weights (a pretrained config may name another). V1, as
    # keras.applications, holds it as the weights of a Normalization layer (``adapt_normalization``); the others
    # build it from the numbers (``input_normalization``).
    normalization: Normalization = IMAGENET
    adapt_normalization: bool = False
    conv: MBConvConfig | PreNormMBConvConfig = MBConvConfig()
    transformer: TransformerConfig | None = None

    def block_config(self, args: BlockArgs) -> MBConvConfig | PreNormMBConvConfig | TransformerConfig | None:
        """The config of the block kind that builds a stage of ``args``' block type (None: the family has none)."""
        return self.transformer if args.transformer else self.conv

    def __post_init__(self):
        if self.padding not in PADDINGS:
            raise ValueError(f"Family {self.name!r}: padding must be one of {PADDINGS}, got {self.padding!r}.")


V1 = Family("v1", adapt_normalization=True)
V2 = Family("v2", bn_momentum=0.9, padding="same", guard_rounding=False, min_depth=8, stem_filters=None,
            normalization=UNIT, conv=MBConvConfig(depthwise_name="dwconv2"))
V2_B = dataclasses.replace(V2, normalization=IMAGENET)  # V2-B0..B3 were trained with the V1 preprocessing
LITE = Family("lite", activation="relu6", fixed_stem_head=True, normalization=LITE_NORMALIZATION)
# CoAtNet as in the paper (timm's coatnet_0_224 ... coatnet_5_224). The paper strides the first 1x1 conv of a
# downsampling MBConv (timm's coatnet_<n>_224 default to the depthwise conv, conv_stride_mode="dw"; same
# weights): its FLOPs (4.2G ... 34.7G) are those of this placement.
COATNET = Family(
    "coatnet", activation="gelu", bn_momentum=0.9, bn_epsilon=1e-5, padding="symmetric", guard_rounding=False,
    stem_filters=None, stem_ratios=(1.0, 1.0), head=NormHead(mlp=True), normalization=INCEPTION,
    conv=PreNormMBConvConfig(expand_from="output", se_from="output", se_activation="swish", downsample="1x1",
                             output_bias=True),
    transformer=TransformerConfig())
# timm's own CoAtNets (coatnet_*_rw_224), trained before the paper's details were public; rows vary the rest.
COATNET_RW = dataclasses.replace(
    COATNET, name="coatnet_rw", activation="swish", stem_ratios=(0.5, 1.0), head=NormHead(mlp=False),
    conv=PreNormMBConvConfig(expand_from="input", se_from="expanded", se_activation="relu", se_before_bn=True,
                             pre_norm_activation=True, downsample="pool", output_bias=False),
    transformer=TransformerConfig(expand_first=False, shortcut_bias=False))
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


class _Scaling:
    """Width and depth scaling with one family's rounding rules."""

    def __init__(self, family: Family, width: float, depth: float, depth_divisor: int = 8):
        self.family, self.width, self.depth, self.depth_divisor = family, width, depth, depth_divisor

    def filters(self, n: int, fixed: bool = False) -> int:
        if fixed:
            return n
        f = self.family
        return round_filters(n, self.width, self.depth_divisor, f.min_depth, f.guard_rounding)

    def repeats(self, stage: int, num_stages: int, n: int) -> int:
        if self.family.fixed_stem_head and stage in (0, num_stages - 1):
            return n
        return round_repeats(n, self.depth)


def input_normalization(x, normalization: Normalization, channels: int, adapt: bool = False,
                        keras_v1_variance: bool = False, axis: int = -1):
    """The layers that normalize [0, 255] RGB input as ``normalization``.

    Uniform numbers are one ``Rescaling`` (any channel count); per-channel ones ``Rescaling(1/255)`` then
    ``Normalization`` for 3 channels, and [-1, 1] for other counts (keras.applications V2-B0..B3 do the same).
    ``adapt`` (V1, as keras.applications): the Normalization layer holds mean and variance as weights, set here,
    so weight files can carry them; ``keras_v1_variance`` adds the ``rescaling_1`` keras.applications uses with its
    V1 ImageNet files, which store std, not std**2, as the variance (tensorflow/tensorflow#49930)."""
    if adapt:
        x = layers.Rescaling(1.0 / 255.0, name="rescaling")(x)
        norm = layers.Normalization(axis=axis, name=NORMALIZATION_LAYER)
        x = norm(x)
        if channels == len(normalization.mean):  # else keras.applications' untouched mean 0, variance 1
            mean, std = (np.array(v, np.float32) / 255.0 for v in (normalization.mean, normalization.std))
            set_layer_weights(norm, [mean, np.square(std), np.array(0, np.int64)])
        if keras_v1_variance:
            x = layers.Rescaling([1.0 / math.sqrt(s / 255.0) for s in normalization.std], name="rescaling_1")(x)
        return x
    if not normalization.uniform and channels != len(normalization.mean):
        normalization = UNIT
    if normalization.uniform:
        mean, std = normalization.mean[0], normalization.std[0]
        return layers.Rescaling(1.0 / std, offset=-mean / std, name="rescaling")(x)
    x = layers.Rescaling(1.0 / 255.0, name="rescaling")(x)
    return layers.Normalization(mean=[m / 255.0 for m in normalization.mean],
                                variance=[(s / 255.0) ** 2 for s in normalization.std], axis=axis,
                                name=NORMALIZATION_LAYER)(x)


def _stem(x, ops: Ops, family: Family, filters: int):
    """conv 3x3/2 -> BN -> activation (EfficientNet), then a second 3x3 conv for CoAtNet's two-conv S0."""
    widths = [int(filters * r) for r in family.stem_ratios]
    x = ops.conv_bn_act(x, widths[0], 3, 2, "stem_")
    for i, width in enumerate(widths[1:], start=2):
        x = ops.conv(x, width, 3, 1, f"stem_conv{i}")
    return x


def _stages(x, decoded: Sequence[BlockArgs], family: Family, scale: _Scaling, ops: Ops, filters_in: int,
            drop_connect_rate: float, largest: tuple[int, int]):
    """Every block of every stage; each stage's block type picks the family's block kind (``blocks.FUNCTIONS``)."""
    repeats = [scale.repeats(i, len(decoded), args.repeats) for i, args in enumerate(decoded)]
    total, index, stride = float(sum(repeats)), 0, 2  # the stem's stride
    for stage, (args, n) in enumerate(zip(decoded, repeats, strict=True)):
        cfg = family.block_config(args)
        filters_out = scale.filters(args.output_filters)
        stride *= args.stride
        map_size = tuple(-(-size // stride) for size in largest)  # ceil: every downsampling keeps odd rows
        for j in range(n):
            at = Position(filters_in, filters_out, args.stride if j == 0 else 1, index / total, drop_connect_rate,
                          map_size)
            x = FUNCTIONS[type(cfg)](x, args, cfg, f"block{stage + 1}{_block_letter(j)}_", ops=ops, at=at)
            filters_in = filters_out
            index += 1
    return x, filters_in


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
    normalization: Normalization | None = None,
    keras_v1_variance: bool = False,
    max_input_size: int | None = None,
) -> EfficientNetModel:
    """Build an EfficientNet from block-args strings and scaling coefficients (no weights are loaded).

    ``pretrained`` only tightens input checks (3 channels). ``normalization`` overrides the family's input
    normalization (the numbers a pretrained config names, e.g. ``UNIT`` for V2-B0 weights trained on [-1, 1]
    inputs); ``keras_v1_variance`` adds the extra ``rescaling_1`` layer keras.applications V1 uses with its
    ImageNet files. The model's ``preprocessing`` (``network.get_preprocessing``) records both.
    ``max_input_size``: the largest image side the relative-attention tables of Transformer stages cover (they
    cover ``default_size`` and the static input size in any case).
    ``efficientnet_keras.models`` wraps this with weight loading for the named variants.
    """
    family, decoded, scale = _checked(blocks, family, width_coefficient, depth_coefficient, depth_divisor,
                                      default_size, dropout_rate, drop_connect_rate, pooling, include_top, classes)

    input_shape = resolve_input_shape(input_shape, default_size, include_top, pretrained)
    img_input = _model_input(input_tensor, input_shape)

    ops = Ops(family.activation, family.bn_momentum, family.bn_epsilon, family.padding)
    x = img_input
    normalization = normalization or family.normalization
    if include_preprocessing:
        x = input_normalization(x, normalization, img_input.shape[ops.bn_axis], family.adapt_normalization,
                                keras_v1_variance, ops.bn_axis)
    stem = family.stem_filters if family.stem_filters is not None else decoded[0].input_filters
    stem_filters = scale.filters(stem, fixed=family.fixed_stem_head)
    x = _stem(x, ops, family, stem_filters)
    largest = _largest_map(img_input.shape, ops.bn_axis, default_size, max_input_size)
    x, filters_in = _stages(x, decoded, family, scale, ops, stem_filters, drop_connect_rate, largest)
    conv_filters = scale.filters(family.head.filters, fixed=family.fixed_stem_head) if isinstance(
        family.head, ConvHead) else filters_in
    x = head(x, family.head, ops, conv_filters, include_top, pooling, dropout_rate, classes, classifier_activation)

    inputs = img_input if input_tensor is None else private.source_inputs(input_tensor)
    # Keras maps the layer graph recursively (here and when it saves or clones the model): V2-XL (1,500+ layers)
    # needs more than Python's default depth, so the limit is raised for the process, never lowered.
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20000))
    preprocessing = PreprocessingConfig.make(normalization, include_preprocessing, default_size)
    return EfficientNetModel(inputs, x, name=name, preprocessing=preprocessing)


def _checked(blocks, family, width_coefficient, depth_coefficient, depth_divisor, default_size, dropout_rate,
             drop_connect_rate, pooling, include_top, classes) -> tuple[Family, list[BlockArgs], _Scaling]:
    """build_efficientnet's arguments checked before any layer is made: the family, decoded blocks, scaling."""
    if isinstance(family, str):
        if family not in FAMILIES:
            raise ValueError(f"Unknown family {family!r}; expected one of {sorted(FAMILIES)}.")
        family = FAMILIES[family]
    decoded = [b if isinstance(b, BlockArgs) else block_args_lib.decode(b) for b in blocks]
    if not decoded:
        raise ValueError("blocks must hold at least one block-args string; got none.")
    _check_coefficients(width_coefficient, depth_coefficient, default_size, dropout_rate, drop_connect_rate)
    scale = _Scaling(family, width_coefficient, depth_coefficient, depth_divisor)
    _check_stages(decoded, family, scale.filters)
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"pooling must be None, 'avg' or 'max', got {pooling!r}.")
    if include_top and (not isinstance(classes, int) or classes < 1):
        raise ValueError(f"classes must be a positive integer, got {classes!r}.")
    return family, decoded, scale


def _model_input(input_tensor, input_shape):
    if input_tensor is None:
        return layers.Input(shape=input_shape)
    if not keras.backend.is_keras_tensor(input_tensor):
        return layers.Input(tensor=input_tensor, shape=input_shape)
    return input_tensor


def _largest_map(shape, channel_axis: int, default_size: int, max_input_size: int | None) -> tuple[int, int]:
    """The largest input (height, width) the relative-attention tables cover: the default size, or the static
    input size or ``max_input_size`` where larger. Smaller inputs read the tables' centre, so a weight file fits
    every model of a variant built for its default size or less."""
    spatial = [d for axis, d in enumerate(shape[1:], start=1) if axis != channel_axis]
    return tuple(max(default_size, d or 0, max_input_size or 0) for d in spatial)


def _check_stages(decoded: Sequence[BlockArgs], family: Family, filters: Callable[[int], int]) -> None:
    """That the family builds each stage's block type, that stages chain, and what Transformer stages need,
    checked before any layer is made (errors name the stage); ``filters`` scales a filter count."""
    stride = 2  # the stem's
    kinds = block_args_lib.BLOCK_TYPE_NAMES
    for stage, args in enumerate(decoded, start=1):
        text = block_args_lib.encode(args)
        cfg = family.block_config(args)
        if cfg is None:
            raise ValueError(f"Stage {stage} ({text!r}) is a Transformer stage; family '{family.name}' is an "
                             "EfficientNet family: it has no Transformer blocks. Use a CoAtNet family "
                             "(family='coatnet').")
        if args.conv_type not in BLOCK_TYPES[type(cfg)]:
            builds = " and ".join(f"{kinds[t]} (c{t})" for c in (family.conv, family.transformer) if c is not None
                                  for t in BLOCK_TYPES[type(c)])
            raise ValueError(f"Stage {stage} ({text!r}) is a {kinds[args.conv_type]} stage; family '{family.name}' "
                             f"builds {builds} blocks only.")
        if not args.id_skip and not isinstance(cfg, MBConvConfig):
            raise ValueError(f"Stage {stage} ({text!r}) has 'noskip'; family '{family.name}' builds its blocks "
                             "around a (pooled, projected) shortcut. Remove 'noskip'.")
        if stage > 1 and filters(args.input_filters) != filters(decoded[stage - 2].output_filters):
            raise ValueError(
                f"Stage {stage} ({text!r}) takes i{args.input_filters} ({filters(args.input_filters)} filters "
                f"after width scaling), but stage {stage - 1} gives {filters(decoded[stage - 2].output_filters)}; "
                "the 'i' of a stage must equal the previous stage's 'o'.")
        if args.transformer:
            _check_transformer_stage(stage, text, args, cfg, filters, stride)
        stride *= args.stride


def _check_transformer_stage(stage: int, text: str, args: BlockArgs, cfg: TransformerConfig,
                             filters: Callable[[int], int], stride: int) -> None:
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
    bad = sorted(w for w in {out, cfg.attention_width(inp, out)} if w % args.head_size)
    if bad:
        raise ValueError(f"Stage {stage} ({text!r}): the head size h{args.head_size} does not divide its "
                         f"attention width of {bad[0]} channels; choose a head size that divides it.")


def _block_letter(j: int) -> str:
    """keras.applications names repeats a, b, c, ...; past z it continues with chr(97 + j) as they do."""
    return chr(j + 97)


# A block's layer-name prefix, e.g. "block2a_"; the letter may be past "z" ("block6{_" in V2-XL's 32-block stage).
BLOCK_PREFIX = re.compile(r"^(block\d+[^\d_]_)")
