"""EfficientNet's blocks: MBConv (Sandler et al., 2018; block type ``c0``) and Fused-MBConv (EfficientNetV2,
``c1``), post-norm as keras.applications' ``efficientnet.py`` / ``efficientnet_v2.py`` build them (same layer
names), with an identity shortcut where the block keeps its shape."""

from __future__ import annotations

import dataclasses

from efficientnet_keras.block_args import BlockArgs
from efficientnet_keras.blocks.ops import Ops, Position

__all__ = ["MBConvConfig", "mbconv"]


@dataclasses.dataclass(frozen=True)
class MBConvConfig:
    """What EfficientNet families differ in inside a block: the depthwise conv's layer name ("dwconv" in
    keras.applications V1/Lite, "dwconv2" in V2). The squeeze-excite bottleneck is a fraction of the block's
    input filters, with the family's activation, after the depthwise conv's BatchNorm (all families)."""

    depthwise_name: str = "dwconv"


def mbconv(x, args: BlockArgs, cfg: MBConvConfig, name: str, *, ops: Ops, at: Position):
    """One MBConv (1x1 expand -> kxk depthwise -> squeeze-excite -> 1x1 project) or Fused-MBConv (kxk expand ->
    squeeze-excite -> 1x1 project; without expansion one kxk conv) block."""
    inputs = x
    filters = at.input_filters * args.expand_ratio
    k = args.kernel_size
    if args.expand_ratio != 1:
        # Fused-MBConv's expansion is the block's kxk (strided) conv; MBConv's a 1x1 conv.
        x = ops.conv(x, filters, k if args.fused else 1, at.strides if args.fused else 1, f"{name}expand_conv")
        x = ops.act(ops.bn(x, f"{name}expand_bn"), f"{name}expand_activation")
    if not args.fused:
        x = ops.depthwise(x, k, at.strides, f"{name}{cfg.depthwise_name}", f"{name}dwconv_pad")
        x = ops.act(ops.bn(x, f"{name}bn"), f"{name}activation")
    if args.se_ratio:
        x = ops.squeeze_excite(x, filters, int(at.input_filters * args.se_ratio), name)
    # Fused-MBConv without expansion: the project conv is the block's only (kxk, strided) conv.
    single_conv = args.fused and args.expand_ratio == 1
    x = ops.conv(x, at.output_filters, k if single_conv else 1, at.strides if single_conv else 1,
                 f"{name}project_conv")
    x = ops.bn(x, f"{name}project_bn")
    if single_conv:
        x = ops.act(x, f"{name}project_activation")
    if args.id_skip and at.strides == 1 and at.input_filters == at.output_filters:
        x = ops.residual(x, inputs, at, name)
    return x
