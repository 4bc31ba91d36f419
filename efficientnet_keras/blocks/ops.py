"""The layers every block kind is made of, with one family's conventions (padding, BatchNorm, activation).

A block module (``mbconv``, ``coatnet``) describes a block's structure; ``Ops`` makes its convs, norms,
squeeze-excite and residual with the family's numerics and keras.applications' layer names.
"""

from __future__ import annotations

import dataclasses

import keras
from keras import layers

from efficientnet_keras.layers import BatchNormalization, SamePadding2D, StochasticDepth

__all__ = ["Ops", "Position", "CONV_KERNEL_INITIALIZER", "DENSE_KERNEL_INITIALIZER", "PADDINGS"]

# Same initializers as keras.applications and the official TF code.
CONV_KERNEL_INITIALIZER = {
    "class_name": "VarianceScaling",
    "config": {"scale": 2.0, "mode": "fan_out", "distribution": "truncated_normal"},
}
DENSE_KERNEL_INITIALIZER = {
    "class_name": "VarianceScaling",
    "config": {"scale": 1.0 / 3.0, "mode": "fan_out", "distribution": "uniform"},
}

# "explicit": TF 'same' padding as a layer before each stride-2 conv (keras.applications V1/Lite, "<name>_pad");
# "same": padding="same" (V2; the same numbers); "symmetric": PyTorch's k // 2 on every side (timm's CoAtNets).
PADDINGS = ("explicit", "same", "symmetric")


@dataclasses.dataclass(frozen=True)
class Position:
    """Where a block sits in the network: its (scaled) input and output filters, the stride of its depthwise or
    full conv, its stochastic-depth schedule and (Transformer blocks) the largest feature map it attends over."""

    input_filters: int
    output_filters: int
    strides: int
    depth_fraction: float  # block index / number of blocks: stochastic depth grows linearly with depth
    drop_connect_rate: float  # of the last block
    map_size: tuple[int, int] | None = None


class Ops:
    """Layer factories with one family's padding, BatchNorm momentum/epsilon and activation."""

    def __init__(self, activation: str, bn_momentum: float, bn_epsilon: float, padding: str):
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}.")
        self.activation = activation
        self.bn_momentum = bn_momentum
        self.bn_epsilon = bn_epsilon
        self.padding = padding
        self.bn_axis = 3 if keras.config.image_data_format() == "channels_last" else 1

    def pad(self, x, kernel_size: int, strides: int, name: str):
        """Explicit padding in front of a strided conv, where the family has it; returns (x, Keras padding)."""
        if strides > 1 and kernel_size > 1 and self.padding == "symmetric":
            return layers.ZeroPadding2D(kernel_size // 2, name=name)(x), "valid"
        if strides > 1 and self.padding == "explicit":
            # Computed per input size: keras.applications' fixed padding is wrong for sizes it was not built for.
            return SamePadding2D(kernel_size, 2, name=name)(x), "valid"
        return x, "same"  # stride 1, odd kernel: TensorFlow's 'same' is symmetric

    def conv(self, x, filters: int, kernel_size: int, strides: int, name: str, use_bias: bool = False, **kwargs):
        x, padding = self.pad(x, kernel_size, strides, f"{name}_pad")
        return layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=use_bias,
                             kernel_initializer=CONV_KERNEL_INITIALIZER, name=name, **kwargs)(x)

    def depthwise(self, x, kernel_size: int, strides: int, name: str, pad_name: str):
        x, padding = self.pad(x, kernel_size, strides, pad_name)
        return layers.DepthwiseConv2D(kernel_size, strides=strides, padding=padding, use_bias=False,
                                      depthwise_initializer=CONV_KERNEL_INITIALIZER, name=name)(x)

    def bn(self, x, name: str):
        return BatchNormalization(axis=self.bn_axis, momentum=self.bn_momentum, epsilon=self.bn_epsilon, name=name)(x)

    def act(self, x, name: str, activation: str | None = None):
        return layers.Activation(activation or self.activation, name=name)(x)

    def conv_bn_act(self, x, filters: int, kernel_size: int, strides: int, prefix: str, act: bool = True):
        """conv -> BN -> activation, named ``<prefix>conv``, ``<prefix>bn``, ``<prefix>activation``."""
        x = self.bn(self.conv(x, filters, kernel_size, strides, f"{prefix}conv"), f"{prefix}bn")
        return self.act(x, f"{prefix}activation") if act else x

    def norm(self, x, kind: str, epsilon: float, name: str):
        """A norm over channels: LayerNorm, or BatchNorm (timm's ``coatnet_bn_0_rw``) with the family's momentum."""
        axis = self.bn_axis if len(x.shape) == 4 else -1
        if kind == "batchnorm":
            return BatchNormalization(axis=axis, momentum=self.bn_momentum, epsilon=epsilon, name=name)(x)
        return layers.LayerNormalization(axis=axis, epsilon=epsilon, name=name)(x)

    def pool(self, x, name: str):
        """2x2 average pooling ('same': an odd map keeps its last row, as the strided convs beside it do)."""
        return layers.AveragePooling2D(2, 2, padding="same", name=name)(x)

    def squeeze_excite(self, x, filters: int, reduced: int, name: str, activation: str | None = None):
        """Squeeze-and-excitation (Hu et al., 2018) with a bottleneck of ``reduced`` filters."""
        se = layers.GlobalAveragePooling2D(name=f"{name}se_squeeze")(x)
        shape = (1, 1, filters) if self.bn_axis == 3 else (filters, 1, 1)
        se = layers.Reshape(shape, name=f"{name}se_reshape")(se)
        se = layers.Conv2D(max(1, reduced), 1, padding="same", activation=activation or self.activation,
                           kernel_initializer=CONV_KERNEL_INITIALIZER, name=f"{name}se_reduce")(se)
        se = layers.Conv2D(filters, 1, padding="same", activation="sigmoid",
                           kernel_initializer=CONV_KERNEL_INITIALIZER, name=f"{name}se_expand")(se)
        return layers.multiply([x, se], name=f"{name}se_excite")

    def residual(self, x, shortcut, at: Position, name: str, suffix: str = ""):
        """``shortcut + x``, x dropped by stochastic depth (none in the first block: its rate is 0)."""
        if at.depth_fraction > 0:
            x = StochasticDepth(at.drop_connect_rate * at.depth_fraction, at.depth_fraction,
                                name=f"{name}drop{suffix}")(x)
        return layers.add([x, shortcut], name=f"{name}add{suffix}")
