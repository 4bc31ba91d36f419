"""Relative attention: the bias each (query, key) pair gets, the table read at its centre for smaller maps, and
the table resized as timm resizes it."""

import keras
import numpy as np
import pytest

import torchvision_stub
from efficientnet_keras.attention import LayerScale, RelativeAttention, resize_bias_table

torch = pytest.importorskip("torch")
torchvision_stub.install()
timm = pytest.importorskip("timm")


def _attention(map_size=(4, 5), heads=2, head_size=3):
    layer = RelativeAttention(heads, head_size, map_size)
    layer.build((None, None, None, 3 * heads * head_size))
    table = np.random.default_rng(0).normal(size=layer.relative_position_bias.shape).astype("float32")
    layer.relative_position_bias.assign(table)
    return layer, table


@pytest.mark.parametrize("height,width", [(4, 5), (2, 3), (1, 1)])
def test_bias_is_the_table_value_of_each_offset(height, width):
    layer, table = _attention()
    bias = keras.ops.convert_to_numpy(layer.bias(height, width))
    positions = [(y, x) for y in range(height) for x in range(width)]
    for q, (qy, qx) in enumerate(positions):
        for k, (ky, kx) in enumerate(positions):
            np.testing.assert_array_equal(bias[:, q, k], table[qy - ky + 3, qx - kx + 4])


def test_attention_equals_the_written_out_formula():
    layer, table = _attention(map_size=(3, 3))
    qkv = np.random.default_rng(1).normal(size=(2, 3, 3, 18)).astype("float32")
    out = keras.ops.convert_to_numpy(layer(qkv))
    x = qkv.reshape(2, 9, 2, 3, 3)  # (batch, positions, heads, q/k/v, head size): timm's head-first channels
    q, k, v = x[:, :, :, 0], x[:, :, :, 1], x[:, :, :, 2]
    logits = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(3) + keras.ops.convert_to_numpy(layer.bias(3, 3))
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    expected = np.einsum("bhqk,bkhd->bqhd", weights, v).reshape(2, 3, 3, 6)
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_resize_crops_exactly_and_interpolates_as_timm():
    from timm.layers.pos_embed_rel import resize_rel_pos_bias_table

    table = np.random.default_rng(0).normal(size=(13, 13, 4)).astype("float32")
    crop = resize_bias_table(table, (9, 9))
    np.testing.assert_array_equal(crop, table[2:11, 2:11])  # offsets -4..4 of the -6..6 table
    for window in (8, 10, 12):
        side = 2 * window - 1
        theirs = resize_rel_pos_bias_table(torch.from_numpy(table.reshape(169, 4)), new_window_size=(window, window),
                                           new_bias_shape=(side * side, 4)).numpy()
        np.testing.assert_allclose(resize_bias_table(table, (side, side)).reshape(side * side, 4), theirs, atol=1e-6)


def test_layer_scale_and_configs_round_trip():
    layer, _ = _attention()
    clone = RelativeAttention.from_config(layer.get_config())
    assert (clone.num_heads, clone.head_size, clone.map_size) == (2, 3, (4, 5))
    scale = LayerScale(1e-6)
    assert np.allclose(keras.ops.convert_to_numpy(scale(np.ones((1, 2, 2, 4), "float32"))), 1e-6)
    assert LayerScale.from_config(scale.get_config()).init_value == 1e-6
