"""CoAtNet's relative attention and layer scale, as Keras layers (``keras.ops`` only: any backend).

Relative attention (CoAtNet, eq. 3) is self-attention over every position of a feature map whose logits gain a
learned bias that depends only on the offset between query and key: ``softmax(q k^T / sqrt(d) + w[i - j]) v``.
The bias table holds one value per head for every offset of the largest map the model is built for,
``(2H - 1) x (2W - 1)``. A smaller map (an earlier progressive-learning stage) reads the table's centre: the same
offsets, so the same biases, exactly; the offsets are computed from the run-time map size, so one traced step
serves every image size. A table is made larger only when weights are loaded into a model built for a larger
input (``resize_bias_table``, as timm does when fine-tuning at a new resolution).
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

__all__ = ["RelativeAttention", "LayerScale", "resize_bias_table", "table_size"]


def table_size(map_size: tuple[int, int]) -> tuple[int, int]:
    """The bias table's (rows, columns) for a feature map: one per offset, -(n - 1) ... n - 1."""
    return 2 * map_size[0] - 1, 2 * map_size[1] - 1


@keras.saving.register_keras_serializable(package="efficientnet_keras")
class RelativeAttention(keras.layers.Layer):
    """Multi-head self-attention with a relative position bias, over all positions of an NHWC map.

    Input: the ``qkv`` projection, ``(batch, H, W, 3 * heads * head_size)`` with each head's query, key and value
    channels together (head-major, timm's ``head_first`` layout). Output: ``(batch, H, W, heads * head_size)``,
    head-major. ``map_size`` is the largest (H, W) the bias table covers.
    """

    def __init__(self, num_heads: int, head_size: int, map_size: tuple[int, int], **kwargs):
        super().__init__(**kwargs)
        self.num_heads = int(num_heads)
        self.head_size = int(head_size)
        self.map_size = (int(map_size[0]), int(map_size[1]))

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is not None and channels != 3 * self.num_heads * self.head_size:
            raise ValueError(f"Layer '{self.name}' expects 3 x {self.num_heads} heads x {self.head_size} = "
                             f"{3 * self.num_heads * self.head_size} qkv channels, got {channels}.")
        self.relative_position_bias = self.add_weight(
            name="relative_position_bias",
            shape=(*table_size(self.map_size), self.num_heads),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
        )

    def bias(self, height, width):
        """``(heads, H*W, H*W)``: the table's value for each (query, key) offset, read from its centre."""
        rows, cols = self.map_size
        if isinstance(height, int) and isinstance(width, int) and (height > rows or width > cols):
            raise ValueError(
                f"Layer '{self.name}' sees a {height}x{width} feature map, larger than the {rows}x{cols} its relative "
                "position table covers: build the model for the larger input (input_shape=(size, size, 3), or "
                "create_model(..., max_input_size=size)) and load the weights into it; the table is then "
                "interpolated as timm does.")

        table = ops.cast(self.relative_position_bias, self.compute_dtype)

        def offsets(n, table_n):
            """(n, n, 2 table_n - 1): one-hot row of the table for each (query, key) pair along one axis."""
            i = ops.arange(n)
            # Beyond the table (only possible for a map whose size is unknown until run time) the edge offsets
            # are reused; the trainer sizes the tables for every image it trains and evaluates on.
            index = ops.clip(i[:, None] - i[None, :] + (table_n - 1), 0, 2 * table_n - 2)
            return ops.one_hot(index, 2 * table_n - 1, dtype=table.dtype)

        # A gather written as one-hot products (exact: one term is 1 x value, the rest 0): its gradient is dense,
        # where a gather's is IndexedSlices, which Keras' float16 loss scaling cannot multiply.
        t = ops.einsum("qkr,rch->qkch", offsets(height, rows), table)  # (qy, ky, 2W-1, heads)
        t = ops.einsum("xyc,qkch->hqxky", offsets(width, cols), t)  # (heads, qy, qx, ky, kx)
        return ops.reshape(t, (self.num_heads, height * width, height * width))

    def call(self, qkv):
        shape = ops.shape(qkv)
        batch, height, width = shape[0], shape[1], shape[2]
        x = ops.reshape(qkv, (batch, height * width, self.num_heads, 3, self.head_size))
        q, k, v = x[:, :, :, 0], x[:, :, :, 1], x[:, :, :, 2]
        out = ops.dot_product_attention(q, k, v, bias=self.bias(height, width)[None],
                                        scale=1.0 / math.sqrt(self.head_size))
        return ops.reshape(out, (batch, height, width, self.num_heads * self.head_size))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.num_heads * self.head_size)

    def get_config(self):
        config = super().get_config()
        config.update(num_heads=self.num_heads, head_size=self.head_size, map_size=self.map_size)
        return config


@keras.saving.register_keras_serializable(package="efficientnet_keras")
class LayerScale(keras.layers.Layer):
    """Per-channel learned scale of a residual branch (CaiT), initialised small: ``x * gamma``."""

    def __init__(self, init_value: float, **kwargs):
        super().__init__(**kwargs)
        self.init_value = float(init_value)

    def build(self, input_shape):
        self.gamma = self.add_weight(name="gamma", shape=(input_shape[-1],),
                                     initializer=keras.initializers.Constant(self.init_value))

    def call(self, x):
        return x * ops.cast(self.gamma, x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(init_value=self.init_value)
        return config


def _timm_positions(src: int, dst: int) -> np.ndarray:
    """The source table's offsets stretched over the destination's: a geometric progression fitted by bisection
    (BEiT's fine-tuning code, as ``timm.layers.resize_rel_pos_bias_table``; written out because the positions,
    the bisection's last midpoint included, must be the same as timm's for the same numbers)."""
    left, right = 1.01, 1.5
    q = left
    while right - left > 1e-6:
        q = (left + right) / 2.0
        if (1.0 - q ** (src // 2)) / (1.0 - q) > dst // 2:
            right = q
        else:
            left = q
    distances, current = [], 1.0
    for i in range(src // 2):
        distances.append(current)
        current += q ** (i + 1)
    return np.array([-d for d in reversed(distances)] + [0.0] + distances)


def _linear_weights(points: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``(len(targets), len(points))`` linear-interpolation weights on an uneven grid, clamped at the ends."""
    right = np.minimum(np.searchsorted(points, targets, side="left"), len(points) - 1)
    left = np.clip(right - 1, 0, len(points) - 1)
    to_left = np.maximum(targets - points[left], 0.0)
    to_right = np.maximum(points[right] - targets, 0.0)
    both_zero = (to_left == 0) & (to_right == 0)
    to_left[both_zero] = to_right[both_zero] = 1.0
    weights = np.zeros((len(targets), len(points)))
    rows = np.arange(len(targets))
    np.add.at(weights, (rows, left), to_right / (to_left + to_right))
    np.add.at(weights, (rows, right), to_left / (to_left + to_right))
    return weights


def resize_bias_table(table: np.ndarray, new_size: tuple[int, int]) -> np.ndarray:
    """A ``(rows, cols, heads)`` bias table for another ``(rows, cols)``: its centre when no larger (the same
    offsets, exact), else interpolated as timm interpolates a checkpoint's table for a larger input."""
    table = np.asarray(table)
    rows, cols, _ = table.shape
    new_rows, new_cols = new_size
    if (rows, cols) == (new_rows, new_cols):
        return table
    if new_rows <= rows and new_cols <= cols:
        top, left = (rows - new_rows) // 2, (cols - new_cols) // 2
        return table[top:top + new_rows, left:left + new_cols]
    wy = _linear_weights(_timm_positions(rows, new_rows), np.arange(-(new_rows // 2), new_rows // 2 + 0.1))
    wx = _linear_weights(_timm_positions(cols, new_cols), np.arange(-(new_cols // 2), new_cols // 2 + 0.1))
    resized = np.einsum("yi,ijh,xj->yxh", wy, table.astype(np.float64), wx)
    return resized.astype(table.dtype)
