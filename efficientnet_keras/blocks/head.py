"""The network's head: EfficientNet's 1x1 conv (``top_conv``) or CoAtNet's norms, then pooling and the
classifier, with keras.applications' layer names."""

from __future__ import annotations

import dataclasses
from typing import Callable

import keras
from keras import layers

from efficientnet_keras.blocks.ops import DENSE_KERNEL_INITIALIZER, Ops
from efficientnet_keras.layers import AdjustableDropout, TOP_DROPOUT_NAME

__all__ = ["ConvHead", "NormHead", "head"]


@dataclasses.dataclass(frozen=True)
class ConvHead:
    """EfficientNet's head: 1x1 conv to ``filters`` (scaled by the width, unless the family fixes it) -> BN ->
    activation."""

    filters: int = 1280


@dataclasses.dataclass(frozen=True)
class NormHead:
    """CoAtNet's heads (timm's ``maxxvit.py``): ``mlp`` pools, normalizes and applies a tanh Dense as wide as the
    last stage (the paper's, timm's ``NormMlpClassifierHead``); else a norm of the last map, then pooling (timm's
    ``_rw`` models). The norm is the Transformer blocks' (timm's ``final_norm_layer``)."""

    mlp: bool = True
    norm: str = "layernorm"  # or "batchnorm"
    epsilon: float = 1e-6


def head(x, cfg: ConvHead | NormHead, ops: Ops, conv_filters: int, include_top: bool, pooling: str | None,
         dropout_rate: float, classes: int, classifier_activation: str | Callable | None):
    """``conv_filters``: a ConvHead's width after scaling."""
    if isinstance(cfg, ConvHead):
        x = ops.conv(x, conv_filters, 1, 1, "top_conv")
        x = ops.act(ops.bn(x, "top_bn"), "top_activation")
    elif not cfg.mlp:
        x = ops.norm(x, cfg.norm, cfg.epsilon, "top_norm")
    if not include_top:
        if pooling == "avg":
            return layers.GlobalAveragePooling2D(name="avg_pool")(x)
        return layers.GlobalMaxPooling2D(name="max_pool")(x) if pooling == "max" else x
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if isinstance(cfg, NormHead) and cfg.mlp:
        width = x.shape[-1]
        x = ops.norm(x, cfg.norm, cfg.epsilon, "head_norm")
        x = layers.Dense(width, activation="tanh", name="head_fc")(x)
    # Kept even at rate 0 (keras.applications drops it then) so the rate can be raised later, e.g. by
    # progressive learning; it has no weights, so weight files are unaffected.
    x = AdjustableDropout(dropout_rate, name=TOP_DROPOUT_NAME)(x)
    # Under a mixed-precision policy the logits and softmax stay float32 (Keras' mixed-precision guidance).
    mixed = keras.mixed_precision.global_policy().name.startswith("mixed")
    return layers.Dense(classes, activation=classifier_activation, kernel_initializer=DENSE_KERNEL_INITIALIZER,
                        bias_initializer="zeros", dtype="float32" if mixed else None, name="predictions")(x)
