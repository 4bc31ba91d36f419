"""Count a model's FLOPs the way the EfficientNet papers do: multiply-adds of convolutions and dense layers."""

from __future__ import annotations

import math

import keras

from efficientnet_keras import _keras_private as private
from efficientnet_keras.attention import RelativeAttention

__all__ = ["count_flops"]


def _spatial(shape) -> int:
    channels_last = keras.config.image_data_format() == "channels_last"
    dims = shape[1:3] if channels_last else shape[2:4]
    if None in dims:
        raise ValueError("count_flops needs a static input size; build the model with input_shape=(H, W, C).")
    return math.prod(dims)


def count_flops(model: keras.Model) -> int:
    """Multiply-adds for one image (the papers' "FLOPs": EfficientNet-B0 0.39B at 224 px).

    Convolutions, depthwise convolutions, dense layers and attention's two matrix products (q k^T and the
    weighted sum of values, N^2 x channels each for N positions) dominate; BatchNorm, activations, pooling,
    softmax and squeeze-excite scaling are elementwise and left out, as in the papers' counts.
    """
    total = 0
    for layer in private.flatten_layers(model, include_self=False):
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            kh, kw, channels, multiplier = layer.kernel.shape
            total += _spatial(layer.output.shape) * kh * kw * channels * multiplier
        elif isinstance(layer, keras.layers.Conv2D):
            kh, kw, cin, cout = layer.kernel.shape
            total += _spatial(layer.output.shape) * kh * kw * cin * cout
        elif isinstance(layer, keras.layers.Dense):
            cin, cout = layer.kernel.shape
            total += cin * cout
        elif isinstance(layer, RelativeAttention):
            positions = _spatial(layer.output.shape)
            total += 2 * positions * positions * layer.num_heads * layer.head_size
    return int(total)
