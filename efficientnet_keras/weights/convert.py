"""Converters from other frameworks' EfficientNet weights into our (keras.applications-named) models.

``lukemelas``: PyTorch ``state_dict`` in the layout of lukemelas/EfficientNet-PyTorch and its Lite fork
(``_conv_stem``, ``_blocks.N._depthwise_conv``, ``_fc`` ...). Read with torch alone: torchvision is not needed.

``python -m efficientnet_keras.convert MODEL SRC OUT.weights.h5`` writes a Keras file from any of them.
"""

from __future__ import annotations

import re
from typing import Mapping

import keras
import numpy as np

from efficientnet_keras.builder import BLOCK_PREFIX, NORMALIZATION_LAYER
from efficientnet_keras.layers import set_layer_weights

__all__ = ["lukemelas_to_keras", "load_torch_state_dict", "block_prefixes", "block_layer_roles", "assign_layers",
           "torch_to_keras", "layer_values"]

# PyTorch module -> Keras layer suffix, inside a block.
_BLOCK_MODULES = {
    "_expand_conv": "expand_conv",
    "_bn0": "expand_bn",
    "_depthwise_conv": "dwconv",  # family-specific name, resolved below
    "_bn1": "bn",
    "_se_reduce": "se_reduce",
    "_se_expand": "se_expand",
    "_project_conv": "project_conv",
    "_bn2": "project_bn",
}
_TOP_MODULES = {"_conv_stem": "stem_conv", "_bn0": "stem_bn", "_conv_head": "top_conv", "_bn1": "top_bn", "_fc": "predictions"}
_BN_PARAMS = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}


def load_torch_state_dict(path: str) -> dict[str, np.ndarray]:
    """Read a ``.pth`` state_dict into numpy arrays with torch only (weights_only: no pickled code runs)."""
    try:
        import torch
    except ImportError as e:
        raise ImportError(
            f"Reading {path} needs PyTorch (CPU is enough): pip install 'efficientnet_keras[torch]'"
        ) from e
    state = torch.load(path, map_location="cpu", weights_only=True)
    if "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    return {k: v.detach().cpu().numpy() for k, v in state.items() if hasattr(v, "detach")}


def block_prefixes(model: keras.Model) -> list[str]:
    """Block name prefixes (``block1a_``, ``block2a_`` ...) in network order."""
    seen: list[str] = []
    for layer in model.layers:
        m = BLOCK_PREFIX.match(layer.name)
        if m and m.group(1) not in seen:
            seen.append(m.group(1))
    return seen


def block_layer_roles(model: keras.Model) -> dict[str, dict[str, list[str]]]:
    """Per block prefix, our weighted layer names by role in creation order: ``conv`` (expand/fused and
    project convolutions), ``depthwise`` and ``bn``; squeeze-excite is left out. Other frameworks number a
    block's layers in the same creation order, which is how the official and timm converters place them."""
    roles = {p: {"conv": [], "depthwise": [], "bn": []} for p in block_prefixes(model)}
    for layer in model.layers:
        m = BLOCK_PREFIX.match(layer.name)
        if not m or not layer.weights or "_se_" in layer.name:
            continue
        kind = ("depthwise" if isinstance(layer, keras.layers.DepthwiseConv2D) else
                "bn" if isinstance(layer, keras.layers.BatchNormalization) else "conv")
        roles[m.group(1)][kind].append(layer.name)
    return roles


def torch_to_keras(module_param: str, array: np.ndarray, layer: keras.layers.Layer) -> tuple[str, np.ndarray]:
    """Map one PyTorch parameter onto the matching Keras variable name and layout."""
    if isinstance(layer, (keras.layers.BatchNormalization, keras.layers.LayerNormalization)):
        return _BN_PARAMS[module_param], array
    if module_param == "gamma":  # LayerScale
        return "gamma", array
    if module_param == "bias":
        return "bias", array
    if isinstance(layer, keras.layers.DepthwiseConv2D):  # (C, 1, kh, kw) -> (kh, kw, C, 1)
        return "kernel", array.transpose(2, 3, 0, 1)
    if isinstance(layer, keras.layers.Conv2D):  # (out, in, kh, kw) -> (kh, kw, in, out)
        return "kernel", array.transpose(2, 3, 1, 0)
    if isinstance(layer, keras.layers.Dense):  # (out, in) -> (in, out)
        return "kernel", array.T
    raise ValueError(f"No rule to convert a PyTorch parameter into Keras layer '{layer.name}' ({type(layer).__name__}).")


def lukemelas_to_keras(model: keras.Model, state_dict: Mapping[str, np.ndarray], source: str = "state_dict") -> None:
    """Copy a lukemelas-layout state_dict into ``model`` in place, checking every tensor is used exactly once.

    The classifier (``_fc``) is skipped when the model has no top. Raises ValueError naming the first tensor that
    has no layer, the first layer left without a tensor, or the first shape that differs.
    """
    layers = {layer.name: layer for layer in model.layers}
    blocks = block_prefixes(model)
    depthwise = {p: next((n for n in layers if n in (f"{p}dwconv", f"{p}dwconv2")), f"{p}dwconv") for p in blocks}
    assigned: dict[str, dict[str, np.ndarray]] = {}
    for key, array in state_dict.items():
        if key.endswith("num_batches_tracked"):
            continue
        m = re.match(r"^_blocks\.(\d+)\.(\w+)\.(\w+)$", key)
        if m:
            index, module, param = int(m.group(1)), m.group(2), m.group(3)
            if index >= len(blocks) or module not in _BLOCK_MODULES:
                raise ValueError(f"{source}: tensor '{key}' has no matching layer in model '{model.name}' "
                                 f"({len(blocks)} blocks).")
            prefix = blocks[index]
            name = depthwise[prefix] if module == "_depthwise_conv" else prefix + _BLOCK_MODULES[module]
        else:
            m = re.match(r"^(\w+)\.(\w+)$", key)
            if not m or m.group(1) not in _TOP_MODULES:
                raise ValueError(f"{source}: tensor '{key}' is not a lukemelas EfficientNet parameter.")
            module, param = m.groups()
            name = _TOP_MODULES[module]
            if name == "predictions" and name not in layers:
                continue  # include_top=False: the classifier is not used
        if name not in layers:
            raise ValueError(f"{source}: tensor '{key}' maps to layer '{name}', which model '{model.name}' lacks.")
        var_name, value = torch_to_keras(param, array, layers[name])
        assigned.setdefault(name, {})[var_name] = value

    assign_layers(model, assigned, source)


def layer_values(layers) -> dict[str, dict[str, np.ndarray]]:
    """Layer name -> {variable short name: array} for the weighted ``layers``: what ``assign_layers`` takes."""
    return {layer.name: {w.path.split("/")[-1]: keras.ops.convert_to_numpy(w) for w in layer.weights}
            for layer in layers if layer.weights}


def assign_layers(model: keras.Model, assigned: dict[str, dict[str, np.ndarray]], source: str) -> None:
    """Set every weighted layer of ``model`` from ``assigned`` (layer name -> {variable short name: array}).

    All or nothing per model: raises ValueError naming the first layer without values, the first variable that
    is missing or has another shape, or the layers whose values were not used."""
    assigned = dict(assigned)
    updates = []
    for layer in model.layers:
        if not layer.weights:
            continue
        given = assigned.pop(layer.name, None)
        if given is None and layer.name == NORMALIZATION_LAYER:
            continue  # V1's input normalization: the builder set it to the weight set's numbers
        if given is None:
            raise ValueError(f"{source}: no tensor for layer '{layer.name}' of model '{model.name}'.")
        values = []
        for w in layer.weights:
            short = w.path.split("/")[-1]
            if short not in given:
                raise ValueError(f"{source}: layer '{layer.name}' lacks '{short}' in the file.")
            if tuple(given[short].shape) != tuple(w.shape):
                raise ValueError(
                    f"{source}: layer '{layer.name}' variable '{short}' has shape {tuple(w.shape)} in the model but "
                    f"{tuple(given[short].shape)} in the file: the file is for another variant or class count."
                )
            values.append(given[short])
        updates.append((layer, values))
    if assigned:
        raise ValueError(f"{source}: tensors for layers {sorted(assigned)} were not used by model '{model.name}'.")
    for layer, values in updates:
        set_layer_weights(layer, values)
