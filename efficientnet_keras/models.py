"""The EfficientNet zoo: every variant is one row of data, and one function turns a row into a model.

Block strings are those of the official code: V1 and Lite from ``tpu/models/official/efficientnet``
(``efficientnet_builder.py``, ``lite/efficientnet_lite_builder.py``), V2 from ``automl/efficientnetv2``
(``effnetv2_configs.py``). Coefficients: V1 paper Table / builder ``efficientnet_params``; V2 ``effnetv2_configs``
(``efficientnetv2_params``: width, depth, train size, eval size, dropout); Lite ``efficientnet_lite_params``.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, Sequence

import keras

from efficientnet_keras import builder
from efficientnet_keras.builder import COATNET, COATNET_RW, Family, LITE, V1, V2, V2_B
from efficientnet_keras.network import PreprocessingConfig
from efficientnet_keras.normalization import IMAGENET, Normalization, get_normalization
from efficientnet_keras.transforms import LEGACY_V1, OFFICIAL_V2, TIMM_COATNET, Preprocessing
from efficientnet_keras.weights import load as weights_lib
from efficientnet_keras.weights import registry, state_dict, timm_convert
from efficientnet_keras.weights.official import official_model_name
from efficientnet_keras.weights.registry import PretrainedConfig

__all__ = ["Variant", "VARIANTS", "get_variant", "create_model", "DEFAULT_WEIGHTS"]

DEFAULT_WEIGHTS = "default"  # weights= the variant's constructor defaults to

V1_BLOCKS = (
    "r1_k3_s11_e1_i32_o16_se0.25",
    "r2_k3_s22_e6_i16_o24_se0.25",
    "r2_k5_s22_e6_i24_o40_se0.25",
    "r3_k3_s22_e6_i40_o80_se0.25",
    "r3_k5_s11_e6_i80_o112_se0.25",
    "r4_k5_s22_e6_i112_o192_se0.25",
    "r1_k3_s11_e6_i192_o320_se0.25",
)
# EfficientNet-Lite: V1 without squeeze-excite (poorly supported by mobile accelerators).
LITE_BLOCKS = tuple(s.replace("_se0.25", "") for s in V1_BLOCKS)
V2_BASE_BLOCKS = (
    "r1_k3_s1_e1_i32_o16_c1",
    "r2_k3_s2_e4_i16_o32_c1",
    "r2_k3_s2_e4_i32_o48_c1",
    "r3_k3_s2_e4_i48_o96_se0.25",
    "r5_k3_s1_e6_i96_o112_se0.25",
    "r8_k3_s2_e6_i112_o192_se0.25",
)
V2_S_BLOCKS = (
    "r2_k3_s1_e1_i24_o24_c1",
    "r4_k3_s2_e4_i24_o48_c1",
    "r4_k3_s2_e4_i48_o64_c1",
    "r6_k3_s2_e4_i64_o128_se0.25",
    "r9_k3_s1_e6_i128_o160_se0.25",
    "r15_k3_s2_e6_i160_o256_se0.25",
)
V2_M_BLOCKS = (
    "r3_k3_s1_e1_i24_o24_c1",
    "r5_k3_s2_e4_i24_o48_c1",
    "r5_k3_s2_e4_i48_o80_c1",
    "r7_k3_s2_e4_i80_o160_se0.25",
    "r14_k3_s1_e6_i160_o176_se0.25",
    "r18_k3_s2_e6_i176_o304_se0.25",
    "r5_k3_s1_e6_i304_o512_se0.25",
)
V2_L_BLOCKS = (
    "r4_k3_s1_e1_i32_o32_c1",
    "r7_k3_s2_e4_i32_o64_c1",
    "r7_k3_s2_e4_i64_o96_c1",
    "r10_k3_s2_e4_i96_o192_se0.25",
    "r19_k3_s1_e6_i192_o224_se0.25",
    "r25_k3_s2_e6_i224_o384_se0.25",
    "r7_k3_s1_e6_i384_o640_se0.25",
)
V2_XL_BLOCKS = (
    "r4_k3_s1_e1_i32_o32_c1",
    "r8_k3_s2_e4_i32_o64_c1",
    "r8_k3_s2_e4_i64_o96_c1",
    "r16_k3_s2_e4_i96_o192_se0.25",
    "r24_k3_s1_e6_i192_o256_se0.25",
    "r32_k3_s2_e6_i256_o512_se0.25",
    "r8_k3_s1_e6_i512_o640_se0.25",
)



def coatnet_blocks(widths: tuple[int, ...], depths: tuple[int, ...], stem: int) -> tuple[str, ...]:
    """CoAtNet's C-C-T-T layout (paper Table 3) as block-args strings: two MBConv stages (expansion 4,
    squeeze-excite 0.25), two Transformer stages (FFN expansion 4, head size 32), each halving the map."""
    inputs = (stem, *widths[:-1])
    return tuple(
        f"r{d}_k3_s2_e4_i{i}_o{o}_se0.25" if stage < 2 else f"r{d}_s2_e4_i{i}_o{o}_h32_c2"
        for stage, (d, i, o) in enumerate(zip(depths, inputs, widths))
    )


COATNET_0_WIDTHS = (96, 192, 384, 768)
COATNET_2_WIDTHS = (128, 256, 512, 1024)
COATNET_3_WIDTHS = (192, 384, 768, 1536)
# timm's _rw variants (maxxvit.py model_cfgs), each a few conventions off COATNET_RW.


def _rw(base: Family, name: str, conv: dict | None = None, transformer: dict | None = None, **family) -> Family:
    """``base`` with some fields of its block kinds' configs (and of the family) replaced."""
    return dataclasses.replace(base, name=name, conv=dataclasses.replace(base.conv, **(conv or {})),
                               transformer=dataclasses.replace(base.transformer, **(transformer or {})), **family)


RW_NANO = _rw(COATNET_RW, "coatnet_nano_rw", conv=dict(se_activation="swish", se_before_bn=False,
                                                        pre_norm_activation=False, output_bias=True),
              transformer=dict(shortcut_bias=True))
RW_DW = _rw(COATNET_RW, "coatnet_dw_rw", conv=dict(downsample="dw"))
RW_BN = _rw(RW_DW, "coatnet_bn_rw", transformer=dict(norm="batchnorm"), normalization=IMAGENET,
            head=dataclasses.replace(RW_DW.head, norm="batchnorm"))
RW_DW_SILU = _rw(RW_DW, "coatnet_dw_silu_rw", conv=dict(se_activation="swish", se_before_bn=False),
                 transformer=dict(shortcut_bias=True))
RW_DW_SILU_LS = _rw(RW_DW_SILU, "coatnet_dw_silu_ls_rw", transformer=dict(layer_scale=1e-6))


@dataclasses.dataclass(frozen=True)
class Variant:
    """One named network: its family's conventions, stages, and scaling coefficients."""

    function: str  # public constructor name, e.g. "EfficientNetV2S"
    name: str  # Keras model name, as keras.applications spells it
    family: Family
    blocks: tuple[str, ...]
    width: float
    depth: float
    resolution: int  # default (evaluation) input size
    dropout: float
    train_resolution: int | None = None  # V2: the paper's final training size (progressive learning's max)
    drop_connect: float = 0.2
    # The official code's crops and resize (training and evaluation): V2-S/M/L/XL the EfficientNetV2 ones; V1,
    # Lite and V2-B0..B3 (trained with 'effnetv1_autoaug') the V1 ones.
    preprocessing: Preprocessing = LEGACY_V1
    timm: str | None = None  # timm's architecture name, where it is not the tf_ port's (CoAtNet)
    default_weights: str | None = "imagenet"  # the constructors' default weights=


#        function               keras model name        family blocks            width depth res  dropout train
_ROWS = [
    Variant("EfficientNetB0", "efficientnetb0", V1, V1_BLOCKS, 1.0, 1.0, 224, 0.2),
    Variant("EfficientNetB1", "efficientnetb1", V1, V1_BLOCKS, 1.0, 1.1, 240, 0.2),
    Variant("EfficientNetB2", "efficientnetb2", V1, V1_BLOCKS, 1.1, 1.2, 260, 0.3),
    Variant("EfficientNetB3", "efficientnetb3", V1, V1_BLOCKS, 1.2, 1.4, 300, 0.3),
    Variant("EfficientNetB4", "efficientnetb4", V1, V1_BLOCKS, 1.4, 1.8, 380, 0.4),
    Variant("EfficientNetB5", "efficientnetb5", V1, V1_BLOCKS, 1.6, 2.2, 456, 0.4),
    Variant("EfficientNetB6", "efficientnetb6", V1, V1_BLOCKS, 1.8, 2.6, 528, 0.5),
    Variant("EfficientNetB7", "efficientnetb7", V1, V1_BLOCKS, 2.0, 3.1, 600, 0.5),
    # tensorflow/tpu efficientnet_builder.py efficientnet_params: B8 (AdvProp weights only), L2 (Noisy Student).
    Variant("EfficientNetB8", "efficientnetb8", V1, V1_BLOCKS, 2.2, 3.6, 672, 0.5, default_weights="advprop"),
    Variant("EfficientNetL2", "efficientnet-l2", V1, V1_BLOCKS, 4.3, 5.3, 800, 0.5, default_weights="noisy-student"),
    Variant("EfficientNetV2B0", "efficientnetv2-b0", V2_B, V2_BASE_BLOCKS, 1.0, 1.0, 224, 0.2, 192),
    Variant("EfficientNetV2B1", "efficientnetv2-b1", V2_B, V2_BASE_BLOCKS, 1.0, 1.1, 240, 0.2, 192),
    Variant("EfficientNetV2B2", "efficientnetv2-b2", V2_B, V2_BASE_BLOCKS, 1.1, 1.2, 260, 0.3, 208),
    Variant("EfficientNetV2B3", "efficientnetv2-b3", V2_B, V2_BASE_BLOCKS, 1.2, 1.4, 300, 0.3, 240),
    Variant("EfficientNetV2S", "efficientnetv2-s", V2, V2_S_BLOCKS, 1.0, 1.0, 384, 0.2, 300, preprocessing=OFFICIAL_V2),
    Variant("EfficientNetV2M", "efficientnetv2-m", V2, V2_M_BLOCKS, 1.0, 1.0, 480, 0.3, 384, preprocessing=OFFICIAL_V2),
    Variant("EfficientNetV2L", "efficientnetv2-l", V2, V2_L_BLOCKS, 1.0, 1.0, 480, 0.4, 384, preprocessing=OFFICIAL_V2),
    Variant("EfficientNetV2XL", "efficientnetv2-xl", V2, V2_XL_BLOCKS, 1.0, 1.0, 512, 0.4, 384, preprocessing=OFFICIAL_V2),
    Variant("EfficientNetLite0", "efficientnet-lite0", LITE, LITE_BLOCKS, 1.0, 1.0, 224, 0.2),
    Variant("EfficientNetLite1", "efficientnet-lite1", LITE, LITE_BLOCKS, 1.0, 1.1, 240, 0.2),
    Variant("EfficientNetLite2", "efficientnet-lite2", LITE, LITE_BLOCKS, 1.1, 1.2, 260, 0.3),
    Variant("EfficientNetLite3", "efficientnet-lite3", LITE, LITE_BLOCKS, 1.2, 1.4, 280, 0.3),
    Variant("EfficientNetLite4", "efficientnet-lite4", LITE, LITE_BLOCKS, 1.4, 1.8, 300, 0.3),
    # CoAtNet: paper Table 3 (timm coatnet_<n>_224); stochastic depth from the paper's ImageNet-1k settings.
    #       n  widths            depths          stem stochastic depth
    *(Variant(f"CoAtNet{n}", f"coatnet-{n}", COATNET, coatnet_blocks(w, d, stem), 1.0, 1.0, 224, 0.0,
              drop_connect=sd, preprocessing=TIMM_COATNET, timm=f"coatnet_{n}_224", default_weights=None)
      for n, w, d, stem, sd in ((0, COATNET_0_WIDTHS, (2, 3, 5, 2), 64, 0.2),
                                (1, COATNET_0_WIDTHS, (2, 6, 14, 2), 64, 0.3),
                                (2, COATNET_2_WIDTHS, (2, 6, 14, 2), 128, 0.5),
                                (3, COATNET_3_WIDTHS, (2, 6, 14, 2), 192, 0.7),
                                (4, COATNET_3_WIDTHS, (2, 12, 28, 2), 192, 0.2))),
    # timm's own CoAtNets, the ones with public ImageNet weights.
    Variant("CoAtNetNanoRW", "coatnet-nano-rw", RW_NANO, coatnet_blocks((64, 128, 256, 512), (3, 4, 6, 3), 64), 1.0,
            1.0, 224, 0.0, preprocessing=dataclasses.replace(TIMM_COATNET, eval_crop=0.9), timm="coatnet_nano_rw_224",
            default_weights="timm:coatnet_nano_rw_224.sw_in1k"),
    Variant("CoAtNet0RW", "coatnet-0-rw", COATNET_RW, coatnet_blocks(COATNET_0_WIDTHS, (2, 3, 7, 2), 64), 1.0, 1.0,
            224, 0.0, preprocessing=TIMM_COATNET, timm="coatnet_0_rw_224",
            default_weights="timm:coatnet_0_rw_224.sw_in1k"),
    Variant("CoAtNetBN0RW", "coatnet-bn-0-rw", RW_BN, coatnet_blocks(COATNET_0_WIDTHS, (2, 3, 7, 2), 64), 1.0, 1.0,
            224, 0.0, preprocessing=TIMM_COATNET, timm="coatnet_bn_0_rw_224",
            default_weights="timm:coatnet_bn_0_rw_224.sw_in1k"),
    Variant("CoAtNet1RW", "coatnet-1-rw", RW_DW, coatnet_blocks(COATNET_0_WIDTHS, (2, 6, 14, 2), 64), 1.0, 1.0, 224,
            0.0, drop_connect=0.3, preprocessing=TIMM_COATNET, timm="coatnet_1_rw_224",
            default_weights="timm:coatnet_1_rw_224.sw_in1k"),
    Variant("CoAtNet2RW", "coatnet-2-rw", RW_DW_SILU, coatnet_blocks(COATNET_2_WIDTHS, (2, 6, 14, 2), 128), 1.0, 1.0,
            224, 0.0, drop_connect=0.5, preprocessing=TIMM_COATNET, timm="coatnet_2_rw_224",
            default_weights="timm:coatnet_2_rw_224.sw_in12k_ft_in1k"),
    Variant("CoAtNet3RW", "coatnet-3-rw", RW_DW_SILU_LS, coatnet_blocks(COATNET_3_WIDTHS, (2, 6, 14, 2), 192), 1.0,
            1.0, 224, 0.0, drop_connect=0.7, preprocessing=TIMM_COATNET, timm="coatnet_3_rw_224",
            default_weights=None),
]
VARIANTS: dict[str, Variant] = {v.function: v for v in _ROWS}
_BY_NAME = {v.name: v for v in _ROWS}


def get_variant(name: str) -> Variant:
    """A variant by constructor name (``EfficientNetV2S``) or Keras model name (``efficientnetv2-s``)."""
    if name in VARIANTS:
        return VARIANTS[name]
    if name in _BY_NAME:
        return _BY_NAME[name]
    raise ValueError(f"Unknown EfficientNet variant {name!r}; expected one of: {', '.join(VARIANTS)}.")


@dataclasses.dataclass(frozen=True)
class _Weights:
    """What ``weights=`` resolved to before the model is built: its pretrained config (None: none known), how to
    load it into the built model, and whether the model needs keras.applications' V1 variance rescaling."""

    config: PretrainedConfig | None = None
    load: Callable[[keras.Model], None] = lambda model: None
    keras_v1_variance: bool = False


def _resolve_weights(v: Variant, weights, include_top: bool) -> _Weights:
    """Find (and if need be download and convert) the weights before building, so a missing file fails fast."""
    if weights is None:
        return _Weights()
    if isinstance(weights, str) and weights in weights_lib.WEIGHT_SETS:
        def reference(config: PretrainedConfig) -> keras.Model:  # what an official archive is converted into
            return create_model(v, weights=None, classes=config.classes, classifier_activation=None,
                                normalization=config.normalization)

        path, config, source = weights_lib.resolve(v.name, weights, include_top, build=reference)
        return _Weights(config, lambda model: weights_lib.load_resolved(model, path, config, source),
                        config.keras_v1_variance and source.kind == "keras_h5")
    timm = isinstance(weights, str) and weights.startswith(weights_lib.TIMM_PREFIX)
    if timm or state_dict.is_state_dict_path(weights):
        name = weights[len(weights_lib.TIMM_PREFIX):] if timm else os.fspath(weights)
        path = timm_convert.resolve_timm(name, timm_convert.timm_architecture(v.function, v.timm), v.function,
                                         own=v.timm is not None) if timm else name
        state, is_coatnet = state_dict.read_state_dict(path), v.family.transformer is not None
        return _Weights(registry.timm_config(v.name, timm_convert.timm_name(name)),
                        lambda model: state_dict.load_state_dict(model, state, os.fspath(weights), is_coatnet))
    return _Weights(load=lambda model: weights_lib.load_file(model, weights,
                                                             official_name=official_model_name(v.name)))


def create_model(
    variant: str | Variant,
    include_top: bool = True,
    weights: str | None = "imagenet",
    input_tensor=None,
    input_shape: Sequence[int | None] | None = None,
    pooling: str | None = None,
    classes: int | None = None,
    classifier_activation: str | Callable | None = "softmax",
    include_preprocessing: bool = True,
    name: str | None = None,
    dropout_rate: float | None = None,
    drop_connect_rate: float | None = None,
    normalization: str | Normalization | None = None,
    max_input_size: int | None = None,
) -> keras.Model:
    """Build a named variant, then load its weights (``None``, a weight set name, ``"timm:<name>"`` or a path).

    ``normalization`` (a ``Normalization`` or its name: ``"imagenet"``, ``"unit"``, ``"inception"``, ``"lite"``)
    is the input normalization the model applies; default: the one the weights were trained with (their
    pretrained config), else the family's. ``get_preprocessing(model)`` reports it with the input size and crop.
    ``max_input_size``: the largest image side a CoAtNet's relative-attention tables cover (at least the
    variant's size and the static input's)."""
    v = variant if isinstance(variant, Variant) else get_variant(variant)
    if weights == DEFAULT_WEIGHTS:  # the CLIs' default: "imagenet", or a CoAtNet's timm weights (or none)
        weights = v.default_weights
    pretrained, classes = weights_lib.check_weights_argument(v, weights, include_top, classes, classifier_activation)
    norm = get_normalization(normalization) if normalization is not None else None
    resolved = _resolve_weights(v, weights, include_top)
    config = resolved.config
    norm = norm or (config.normalization if config else v.family.normalization)
    size = config.input_size if config and config.input_size else v.resolution
    model = builder.build_efficientnet(
        v.blocks,
        v.width,
        v.depth,
        size,
        dropout_rate=v.dropout if dropout_rate is None else dropout_rate,
        drop_connect_rate=v.drop_connect if drop_connect_rate is None else drop_connect_rate,
        family=v.family,
        name=name or v.name,
        include_top=include_top,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        include_preprocessing=include_preprocessing,
        pretrained=pretrained,
        normalization=norm,
        keras_v1_variance=resolved.keras_v1_variance,
        max_input_size=max_input_size,
    )
    resolved.load(model)
    transform = config.transform if config and config.transform else v.preprocessing
    model.preprocessing = PreprocessingConfig.make(norm, include_preprocessing, _input_size(model, size),
                                                   transform, None if weights is None else os.fspath(weights))
    return model


def _input_size(model: keras.Model, default: int) -> int:
    """The model's static square input side, else the variant's evaluation size."""
    shape = model.input_shape
    height, width = shape[2:4] if keras.backend.image_data_format() == "channels_first" else shape[1:3]
    return height if height is not None and height == width else default


_DOC = """Instantiates the {function} architecture ({name}: width {width}, depth {depth}, {resolution} px).

Same arguments, layer names and numerics as ``keras.applications`` where it has this variant. Inputs are
RGB floats in [0, 255]; preprocessing is part of the model (``include_preprocessing=False`` removes it).

Args:
    include_top: whether to include the classifier (``avg_pool``, ``top_dropout``, ``predictions``).
    weights: default ``{default}``. ``None`` (random); a weight set: {sets}; ``"timm:<name>"`` (a timm
        state dict: Hugging Face cache name or ``.safetensors``/``.pth`` path); an official TensorFlow checkpoint
        (folder or prefix); or a ``.weights.h5`` / ``.keras`` / Keras ``.h5`` file. The model normalizes its
        [0, 255] input as the weights were trained.
    input_tensor: optional Keras tensor to use as the model's input.
    input_shape: optional (height, width, channels); at least 32x32. Default ({resolution}, {resolution}, 3).
    pooling: ``None``, ``"avg"`` or ``"max"`` when ``include_top=False``.
    classes: number of classes of the classifier (default: the weight set's, 21843 for ``"imagenet21k"``, else
        1000).
    classifier_activation: activation of ``predictions``; ``None`` returns logits. ``"imagenet21k"`` was trained
        multi-label: ``"sigmoid"`` gives its per-class probabilities (``"softmax"`` ranks the same).
    include_preprocessing: whether the model rescales/normalizes its [0, 255] input itself.
    name: model name (default ``"{name}"``).
    dropout_rate: top dropout (default {dropout}); changeable later with ``set_regularization``.
    drop_connect_rate: stochastic-depth rate of the last block (default {drop_connect}).

Returns:
    A ``keras.Model``.
"""


def _make_constructor(v: Variant) -> Callable[..., keras.Model]:
    def constructor(
        include_top: bool = True,
        weights: str | None = v.default_weights,
        input_tensor=None,
        input_shape: Sequence[int | None] | None = None,
        pooling: str | None = None,
        classes: int | None = None,
        classifier_activation: str | Callable | None = "softmax",
        include_preprocessing: bool = True,
        name: str | None = None,
        dropout_rate: float | None = None,
        drop_connect_rate: float | None = None,
    ) -> keras.Model:
        return create_model(
            v,
            include_top=include_top,
            weights=weights,
            input_tensor=input_tensor,
            input_shape=input_shape,
            pooling=pooling,
            classes=classes,
            classifier_activation=classifier_activation,
            include_preprocessing=include_preprocessing,
            name=name,
            dropout_rate=dropout_rate,
            drop_connect_rate=drop_connect_rate,
        )

    constructor.__name__ = constructor.__qualname__ = v.function
    constructor.__module__ = "efficientnet_keras"
    sets = ", ".join(f'``"{s}"``' for s in registry.weight_sets(v.name)) or "none registered"
    constructor.__doc__ = _DOC.format(**dataclasses.asdict(v), sets=sets, default=v.default_weights)
    return constructor


CONSTRUCTORS: dict[str, Callable[..., keras.Model]] = {v.function: _make_constructor(v) for v in _ROWS}
