"""timm's ports of the official weights (``tf_efficientnet_*``, ``tf_efficientnetv2_*``, ``tf_efficientnet_lite*``)
converted into our models: ``weights="timm:<name>"``.

``<name>`` is a timm model name with its pretrained tag (``tf_efficientnetv2_s.in21k_ft_in1k``), resolved from the
Hugging Face cache (``huggingface_hub``; downloaded when not offline), or the path of a ``.safetensors`` / ``.pth``
state dict. Only the ``tf_`` ports fit: they pad as the official TensorFlow code ('same'); timm's own
``efficientnet_*`` models pad symmetrically and are other networks numerically.

timm's names place each tensor: ``conv_stem``/``bn1``, ``blocks.<stage>.<block>.<module>``, ``conv_head``/``bn2``
and ``classifier``. Within a block, timm's modules are created in our layers' order (``conv``/``conv_exp``/
``conv_pw`` before ``conv_pwl``; ``bn1``, ``bn2``, ``bn3``), so the n-th is our block's n-th of that role.
"""

from __future__ import annotations

import os
import re
from typing import Mapping

import keras
import numpy as np

from efficientnet_keras.weights.convert import assign_layers, block_layer_roles, block_prefixes, torch_to_keras

__all__ = ["resolve_timm", "timm_to_keras", "timm_architecture", "timm_name"]

_TOP = {"conv_stem": "stem_conv", "bn1": "stem_bn", "conv_head": "top_conv", "bn2": "top_bn",
        "classifier": "predictions"}
_CONV_ORDER = ("conv", "conv_exp", "conv_pw", "conv_pwl")  # a block's non-depthwise convolutions, in creation order


def timm_architecture(function: str, own: str | None = None) -> str:
    """The timm ``tf_`` port of a variant: ``EfficientNetV2S`` -> ``tf_efficientnetv2_s``; ``own``: the variant's
    own timm architecture, where it has one (CoAtNet)."""
    if own:
        return own
    m = re.fullmatch(r"EfficientNet(V2)?(B\d|S|M|L2|L|XL|Lite\d)", function)
    if m is None:
        raise ValueError(f"{function} has no timm tf_ port.")
    suffix = m.group(2).lower()
    if suffix.startswith("lite"):
        return f"tf_efficientnet_lite{suffix[4:]}"
    return f"tf_efficientnet{'v2' if m.group(1) else ''}_{suffix}"


def _hub_file(name: str) -> str:
    """``model.safetensors`` of ``timm/<name>`` from the Hugging Face cache, downloading it when allowed."""
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise ValueError(f'weights="timm:{name}" needs huggingface_hub to find timm\'s file (pip install '
                         "huggingface_hub), or pass timm:<path to a .safetensors or .pth state dict>.") from None
    from huggingface_hub import constants, errors

    offline = os.environ.get("EFFICIENTNET_KERAS_OFFLINE", "") not in ("", "0")
    alternatives = (f"weights=None for random weights, timm:<path to a .safetensors or .pth file>, or download it where "
                    f"there is a network: huggingface-cli download timm/{name} model.safetensors")
    try:
        return hf_hub_download(f"timm/{name}", "model.safetensors", local_files_only=True)
    except Exception:  # not in the cache
        if offline:
            raise ValueError(f"timm/{name} is not in the Hugging Face cache and EFFICIENTNET_KERAS_OFFLINE is set, so "
                             f"no download was tried (cache: {constants.HF_HUB_CACHE}). Use {alternatives}.") from None
    try:
        return hf_hub_download(f"timm/{name}", "model.safetensors")
    except (errors.RepositoryNotFoundError, errors.RemoteEntryNotFoundError, errors.RevisionNotFoundError) as e:
        raise ValueError(f"The Hugging Face Hub has no timm/{name} with a model.safetensors ({type(e).__name__}): "
                         "check the name (e.g. tf_efficientnetv2_s.in21k_ft_in1k), or pass timm:<path>.") from None
    except Exception as e:  # no network, a proxy, a timeout: the name may well be right
        raise ValueError(f"timm/{name} could not be downloaded ({type(e).__name__}) and is not in the Hugging Face "
                         f"cache ({constants.HF_HUB_CACHE}). Use {alternatives}; EFFICIENTNET_KERAS_OFFLINE=1 fails at "
                         "once instead of retrying the network.") from None


def resolve_timm(name: str, expected_architecture: str, function: str, own: bool = False) -> str:
    """The local path of ``timm:<name>``'s state dict: the file ``name``, or ``timm/<name>`` from the Hugging Face
    cache (downloaded when allowed). ``expected_architecture``: the timm architecture ``function`` takes (``own``:
    the variant's own configuration, not a ``tf_`` port)."""
    if os.path.isfile(name):
        return name
    if os.sep in name or name.endswith((".safetensors", ".pth", ".bin")):
        raise ValueError(f'weights="timm:{name}": no such file.')
    if name.split(".")[0] != expected_architecture:
        why = "its configuration" if own else "timm's tf_ ports pad as the official code"
        raise ValueError(f'weights="timm:{name}" is timm\'s {name.split(".")[0]}; {function} takes '
                         f"{expected_architecture}.<tag> ({why}).")
    return _hub_file(name)


def timm_name(path_or_name: str) -> str:
    """``<architecture>.<tag>`` of a hub name or of a file named so (``tf_efficientnet_b0.ap_in1k.safetensors``)."""
    base = os.path.basename(path_or_name)
    for suffix in (".safetensors", ".pth", ".pt", ".bin"):
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


def _target(key: str, blocks: list[str], roles, block_keys: list[tuple[int, int]],
            convs: list[list[str]]) -> tuple[str | None, str]:
    """Our layer and the parameter name for one timm tensor (layer None: not an EfficientNet tensor)."""
    m = re.fullmatch(r"blocks\.(\d+)\.(\d+)\.(.+)\.(\w+)", key)
    if not m:
        module, _, param = key.rpartition(".")
        return _TOP.get(module), param
    k = block_keys.index((int(m.group(1)), int(m.group(2))))
    if k >= len(blocks):
        return None, m.group(4)
    prefix, module, param = blocks[k], m.group(3), m.group(4)
    if module in ("se.conv_reduce", "se.conv_expand"):
        return prefix + ("se_reduce" if module.endswith("reduce") else "se_expand"), param
    role, index = None, 0
    if module == "conv_dw":
        role = "depthwise"
    elif re.fullmatch(r"bn\d", module):
        role, index = "bn", int(module[2:]) - 1
    elif module in _CONV_ORDER:
        role, index = "conv", convs[k].index(module)
    names = roles[prefix].get(role, []) if role else []
    return (names[index] if index < len(names) else None), param


def timm_to_keras(model: keras.Model, state_dict: Mapping[str, np.ndarray], source: str = "timm") -> None:
    """Copy a timm ``tf_`` EfficientNet state dict into ``model`` in place, every tensor used exactly once.

    The classifier is skipped when the model has no top (the input normalization is the builder's). Raises ValueError naming the first tensor without a layer or the first shape that differs."""
    state = {k: v for k, v in state_dict.items() if not k.endswith("num_batches_tracked")}
    layers = {layer.name: layer for layer in model.layers}
    blocks, roles = block_prefixes(model), block_layer_roles(model)
    block_keys = sorted({(int(a), int(b)) for a, b in re.findall(r"^blocks\.(\d+)\.(\d+)\.", "\n".join(state),
                                                                   flags=re.M)})
    if len(block_keys) != len(blocks):
        raise ValueError(f"{source} has {len(block_keys)} blocks, model '{model.name}' has {len(blocks)}: it is "
                         "another variant.")
    # Per block, its non-depthwise convolutions present, in creation order (a DS block has conv_pw alone).
    convs = [sorted({key.split(".")[3] for key in state if key.startswith(f"blocks.{a}.{b}.")} & set(_CONV_ORDER),
                    key=_CONV_ORDER.index) for a, b in block_keys]
    assigned: dict[str, dict[str, np.ndarray]] = {}
    for key, array in state.items():
        name, param = _target(key, blocks, roles, block_keys, convs)
        if name == "predictions" and name not in layers:
            continue  # include_top=False
        if name is None or name not in layers:
            raise ValueError(f"{source}: tensor '{key}' has no matching layer in model '{model.name}'.")
        array = np.asarray(array)
        if array.dtype not in (np.float32, np.float64):  # half-precision files
            array = array.astype(np.float32)
        var, value = torch_to_keras(param, array, layers[name])
        assigned.setdefault(name, {})[var] = value
    assign_layers(model, assigned, source)
