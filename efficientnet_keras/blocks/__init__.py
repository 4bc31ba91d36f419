"""Block kinds, one module each: ``mbconv`` (EfficientNet's MBConv and Fused-MBConv), ``coatnet`` (CoAtNet's
pre-norm MBConv and Transformer block), built from ``ops``; ``head`` the network's top.

A family names one config per block kind it builds; a block-args string's type (``c0``, ``c1``, ``c2``) picks
the kind, and the kind's config type picks its function (``FUNCTIONS``).
"""

from __future__ import annotations

from typing import Callable

from efficientnet_keras.block_args import FUSED_MBCONV, MBCONV, TRANSFORMER
from efficientnet_keras.blocks.coatnet import PreNormMBConvConfig, TransformerConfig, prenorm_mbconv, transformer
from efficientnet_keras.blocks.head import ConvHead, NormHead
from efficientnet_keras.blocks.mbconv import MBConvConfig, mbconv
from efficientnet_keras.blocks.ops import Ops, Position

__all__ = ["MBConvConfig", "PreNormMBConvConfig", "TransformerConfig", "ConvHead", "NormHead", "Ops", "Position",
           "FUNCTIONS", "BLOCK_TYPES"]

# block kind config -> (the function that builds it, the block types of a string it builds)
FUNCTIONS: dict[type, Callable] = {MBConvConfig: mbconv, PreNormMBConvConfig: prenorm_mbconv,
                                   TransformerConfig: transformer}
BLOCK_TYPES: dict[type, tuple[int, ...]] = {MBConvConfig: (MBCONV, FUSED_MBCONV), PreNormMBConvConfig: (MBCONV,),
                                            TransformerConfig: (TRANSFORMER,)}
