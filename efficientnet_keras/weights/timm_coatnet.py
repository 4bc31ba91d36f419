"""timm's CoAtNets (``coatnet_0_224`` ..., ``coatnet_0_rw_224.sw_in1k`` ...) converted into ours:
``weights="timm:<name>.<tag>"`` or ``"timm:<path>"``, resolved as for the EfficientNets (``timm_convert``).

timm's modules map one to one onto our layers: ``stem.conv1`` -> ``stem_conv``, ``stages.<s>.blocks.<b>.<module>``
-> ``block<s+1><letter>_<layer>`` (the table below; ``norm1``/``norm2`` differ between MBConv and Transformer
blocks), ``norm`` -> ``top_norm``, ``head.*`` -> ``head_norm``, ``head_fc``, ``predictions``. A relative position
table of another size (weights trained at another resolution) is cropped or interpolated as timm does
(``attention.resize_bias_table``).
"""

from __future__ import annotations

import re
from typing import Mapping

import keras
import numpy as np

from efficientnet_keras.attention import RelativeAttention, resize_bias_table, table_size
from efficientnet_keras.builder import _block_letter
from efficientnet_keras.weights.convert import assign_layers, block_prefixes, torch_to_keras

__all__ = ["coatnet_to_keras", "assignments"]

_TOP = {"stem.conv1": "stem_conv", "stem.norm1": "stem_bn", "stem.conv2": "stem_conv2", "norm": "top_norm",
        "head.norm": "head_norm", "head.pre_logits.fc": "head_fc", "head.fc": "predictions"}
_MBCONV = {"shortcut.expand": "shortcut_conv", "pre_norm": "pre_bn", "conv1_1x1": "expand_conv", "norm1": "expand_bn",
           "conv2_kxk": "dwconv", "norm2": "bn", "se.fc1": "se_reduce", "se.fc2": "se_expand",
           "se_early.fc1": "se_reduce", "se_early.fc2": "se_expand",
           "conv3_1x1": "project_conv"}
_TRANSFORMER = {"shortcut.expand": "shortcut_conv", "norm1": "norm1", "norm1.norm": "norm1", "attn.qkv": "qkv",
                "attn.rel_pos": "attention", "attn.proj": "proj", "norm2": "norm2", "mlp.fc1": "mlp_fc1",
                "mlp.fc2": "mlp_fc2", "ls1": "layer_scale1", "ls2": "layer_scale2"}


def _target(key: str, layers: dict) -> tuple[str | None, str]:
    """Our layer and timm's parameter name for one tensor (layer None: nowhere in our model)."""
    module, _, param = key.rpartition(".")
    m = re.fullmatch(r"stages\.(\d+)\.blocks\.(\d+)\.(.+)", module)
    if not m:
        return _TOP.get(module), param
    prefix = f"block{int(m.group(1)) + 1}{_block_letter(int(m.group(2)))}_"
    table = _TRANSFORMER if f"{prefix}attention" in layers else _MBCONV
    suffix = table.get(m.group(3))
    return (prefix + suffix if suffix else None), param


def coatnet_to_keras(model: keras.Model, state_dict: Mapping[str, np.ndarray], source: str = "timm") -> None:
    """Copy a timm CoAtNet state dict into ``model`` in place, every tensor used exactly once.

    The classifier is skipped when the model has no top. Raises ValueError when the file is another
    configuration: another block count, a tensor without a layer, or a shape that differs."""
    theirs = sorted({(int(a), int(b)) for a, b in re.findall(r"^stages\.(\d+)\.blocks\.(\d+)\.",
                                                            "\n".join(state_dict), flags=re.M)})
    ours = block_prefixes(model)
    if len(theirs) != len(ours) or not any(k.startswith("stem.conv2") for k in state_dict):
        raise ValueError(f"{source} is a network of {len(theirs)} blocks, model '{model.name}' has {len(ours)}: it "
                         "holds another configuration (or is not a CoAtNet).")
    assign_layers(model, assignments(model, state_dict, source), source)


def assignments(model: keras.Model, state_dict: Mapping[str, np.ndarray], source: str = "timm"
                ) -> dict[str, dict[str, np.ndarray]]:
    """timm's tensors as our layers' variables (layer name -> {variable: array}), for ``assign_layers``; a model
    without a top skips the classifier's."""
    layers = {layer.name: layer for layer in model.layers}
    assigned: dict[str, dict[str, np.ndarray]] = {}
    for key, array in state_dict.items():
        if key.endswith(("num_batches_tracked", "relative_position_index")):
            continue  # timm's step counters and index buffers
        array = np.asarray(array)
        name, param = _target(key, layers)
        if name in ("predictions", "head_fc", "head_norm") and name not in layers:
            continue  # include_top=False
        if name is None or name not in layers:
            raise ValueError(f"{source}: tensor '{key}' has no matching layer in model '{model.name}': the file holds "
                             "another CoAtNet configuration.")
        if array.dtype not in (np.float32, np.float64):  # half-precision files
            array = array.astype(np.float32)
        layer = layers[name]
        if isinstance(layer, RelativeAttention):
            var, value = "relative_position_bias", _bias_table(array, layer, source)
        else:
            var, value = torch_to_keras(param, array, layer)
        assigned.setdefault(name, {})[var] = value
    return assigned


def _bias_table(flat: np.ndarray, layer: RelativeAttention, source: str) -> np.ndarray:
    """timm's ``(rows * cols, heads)`` table (square) as ours, ``(rows, cols, heads)``, resized to the layer's."""
    side = int(round(flat.shape[0] ** 0.5))
    if flat.ndim != 2 or side * side != flat.shape[0] or flat.shape[1] != layer.num_heads:
        raise ValueError(f"{source}: the relative position table for '{layer.name}' has shape {flat.shape}; the layer "
                         f"has {layer.num_heads} heads: the file holds another configuration.")
    return resize_bias_table(flat.reshape(side, side, -1), table_size(layer.map_size))
