"""CoAtNet's blocks (Dai et al., 2021), numerics as timm's ``maxxvit.py`` (``MbConvBlock``,
``TransformerBlock2d``): a pre-norm MBConv (block type ``c0`` in a CoAtNet family) and a Transformer block with
relative attention (``c2``). Both add their residual branch to a shortcut that is average-pooled when the block
strides and 1x1-projected when it widens (CoAtNet eq. 5)."""

from __future__ import annotations

import dataclasses

from keras import layers

from efficientnet_keras.attention import LayerScale, RelativeAttention
from efficientnet_keras.block_args import BlockArgs
from efficientnet_keras.blocks.ops import Ops, Position

__all__ = ["PreNormMBConvConfig", "TransformerConfig", "prenorm_mbconv", "transformer", "DOWNSAMPLES"]

# Where a strided pre-norm MBConv downsamples (timm's ``MaxxVitConvCfg.stride_mode``): "dw" the depthwise conv
# strides; "1x1" the expansion conv strides (the paper's placement, whose FLOPs it reports); "pool" a 2x2
# average pool before the expansion. The shortcut is pooled in every case.
DOWNSAMPLES = ("dw", "1x1", "pool")


@dataclasses.dataclass(frozen=True)
class PreNormMBConvConfig:
    """What CoAtNet configurations differ in inside an MBConv (timm's ``MaxxVitConvCfg``)."""

    expand_from: str = "output"  # the expanded width is expansion x the block's "output" or "input" filters
    se_from: str = "output"  # the squeeze-excite ratio is of the "input", "output" or "expanded" filters
    se_activation: str = "swish"
    se_before_bn: bool = False  # squeeze-excite between the depthwise conv and its BatchNorm (timm's se_early)
    pre_norm_activation: bool = False  # an activation after the pre-norm BatchNorm
    downsample: str = "1x1"
    output_bias: bool = False  # bias on the projection and shortcut convs

    def __post_init__(self):
        if self.downsample not in DOWNSAMPLES:
            raise ValueError(f"downsample must be one of {DOWNSAMPLES}, got {self.downsample!r}.")
        for what, value in (("expand_from", self.expand_from), ("se_from", self.se_from)):
            allowed = ("input", "output") + (("expanded",) if what == "se_from" else ())
            if value not in allowed:
                raise ValueError(f"{what} must be one of {allowed}, got {value!r}.")


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
    """What CoAtNet configurations differ in inside a Transformer block (timm's ``MaxxVitTransformerCfg``)."""

    norm: str = "layernorm"  # or "batchnorm" (timm's coatnet_bn_0_rw)
    norm_epsilon: float = 1e-6
    mlp_activation: str = "gelu"
    expand_first: bool = True  # attention as wide as the block's output (True) or its input, widened by proj
    shortcut_bias: bool = True
    layer_scale: float | None = None  # initial LayerScale of both residual branches; None: none

    def attention_width(self, input_filters: int, output_filters: int) -> int:
        return output_filters if self.expand_first else input_filters


def _shortcut(x, ops: Ops, filters: int, strides: int, use_bias: bool, name: str):
    if strides > 1:
        x = ops.pool(x, f"{name}shortcut_pool")
    if x.shape[ops.bn_axis] != filters:
        x = ops.conv(x, filters, 1, 1, f"{name}shortcut_conv", use_bias=use_bias)
    return x


def prenorm_mbconv(x, args: BlockArgs, cfg: PreNormMBConvConfig, name: str, *, ops: Ops, at: Position):
    """BN (pre-norm) -> 1x1 expand -> depthwise -> squeeze-excite -> 1x1 project, added to the shortcut; no
    BatchNorm after the projection."""
    out = at.output_filters
    mid = (out if cfg.expand_from == "output" else at.input_filters) * args.expand_ratio
    shortcut = _shortcut(x, ops, out, at.strides, cfg.output_bias, name)
    x = ops.bn(x, f"{name}pre_bn")
    if cfg.pre_norm_activation:
        x = ops.act(x, f"{name}pre_activation")
    expand_strides, dw_strides = 1, at.strides
    if at.strides > 1 and cfg.downsample == "pool":
        x, dw_strides = ops.pool(x, f"{name}pool"), 1
    elif at.strides > 1 and cfg.downsample == "1x1":
        expand_strides, dw_strides = at.strides, 1
    x = ops.conv(x, mid, 1, expand_strides, f"{name}expand_conv")
    x = ops.act(ops.bn(x, f"{name}expand_bn"), f"{name}expand_activation")
    x = ops.depthwise(x, args.kernel_size, dw_strides, f"{name}dwconv", f"{name}dwconv_pad")
    reduced = int({"input": at.input_filters, "output": out, "expanded": mid}[cfg.se_from] * (args.se_ratio or 0))
    if args.se_ratio and cfg.se_before_bn:
        x = ops.squeeze_excite(x, mid, reduced, name, cfg.se_activation)
    x = ops.act(ops.bn(x, f"{name}bn"), f"{name}activation")
    if args.se_ratio and not cfg.se_before_bn:
        x = ops.squeeze_excite(x, mid, reduced, name, cfg.se_activation)
    x = ops.conv(x, out, 1, 1, f"{name}project_conv", use_bias=cfg.output_bias)
    return ops.residual(x, shortcut, at, name)


def transformer(x, args: BlockArgs, cfg: TransformerConfig, name: str, *, ops: Ops, at: Position):
    """x + Attention(Norm(x)), then x + MLP(Norm(x)); a strided block pools both paths and projects the
    shortcut."""
    out = at.output_filters
    width = cfg.attention_width(at.input_filters, out)
    shortcut = _shortcut(x, ops, out, at.strides, cfg.shortcut_bias, name)
    x = ops.norm(x, cfg.norm, cfg.norm_epsilon, f"{name}norm1")
    if at.strides > 1:
        x = ops.pool(x, f"{name}pool")
    x = layers.Conv2D(3 * width, 1, name=f"{name}qkv")(x)
    x = RelativeAttention(width // args.head_size, args.head_size, at.map_size, name=f"{name}attention")(x)
    x = layers.Conv2D(out, 1, name=f"{name}proj")(x)
    if cfg.layer_scale:
        x = LayerScale(cfg.layer_scale, name=f"{name}layer_scale1")(x)
    x = ops.residual(x, shortcut, at, name, "1")
    y = ops.norm(x, cfg.norm, cfg.norm_epsilon, f"{name}norm2")
    y = layers.Conv2D(out * args.expand_ratio, 1, name=f"{name}mlp_fc1")(y)
    y = ops.act(y, f"{name}mlp_activation", cfg.mlp_activation)
    y = layers.Conv2D(out, 1, name=f"{name}mlp_fc2")(y)
    if cfg.layer_scale:
        y = LayerScale(cfg.layer_scale, name=f"{name}layer_scale2")(y)
    return ops.residual(y, x, at, name, "2")
