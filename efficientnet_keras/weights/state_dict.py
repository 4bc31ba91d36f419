"""PyTorch state dicts (``.pth`` / ``.safetensors``): read one, tell its layout from its keys, load it.

Three layouts carry EfficientNet weights: lukemelas/EfficientNet-PyTorch's (``_conv_stem``, ``_blocks.<i>``; the
Lite packages ship it), timm's ``tf_`` ports (``conv_stem``, ``blocks.<stage>.<block>``) and timm's CoAtNets
(``stem.conv1``, ``stages.<i>.blocks.<j>``). ``weights="x.pth"`` and ``weights="timm:x.pth"`` both come here.
"""

from __future__ import annotations

import os
from typing import Callable, Mapping

import keras
import numpy as np

from efficientnet_keras.weights.convert import load_torch_state_dict, lukemelas_to_keras
from efficientnet_keras.weights.timm_coatnet import coatnet_to_keras
from efficientnet_keras.weights.timm_convert import timm_to_keras

__all__ = ["STATE_DICT_SUFFIXES", "LAYOUTS", "is_state_dict_path", "read_state_dict", "detect_layout",
           "load_state_dict"]

STATE_DICT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")

# layout -> (what it is, the keys that identify it, whether it is a CoAtNet, its converter)
LAYOUTS: dict[str, tuple[str, tuple[str, ...], bool, Callable]] = {
    "lukemelas": ("a lukemelas/EfficientNet-PyTorch EfficientNet", ("_conv_stem.weight", "_blocks.0."), False,
                  lukemelas_to_keras),
    "timm_efficientnet": ("a timm EfficientNet (tf_ port)", ("conv_stem.weight", "blocks.0.0."), False,
                          timm_to_keras),
    "timm_coatnet": ("a timm CoAtNet", ("stem.conv1.weight", "stages.0.blocks.0."), True, coatnet_to_keras),
}


def is_state_dict_path(weights) -> bool:
    return isinstance(weights, (str, os.PathLike)) and os.fspath(weights).endswith(STATE_DICT_SUFFIXES)


def read_state_dict(path: str) -> dict[str, np.ndarray]:
    """A state dict as numpy arrays: safetensors with ``safetensors``, else ``torch.load(weights_only=True)``."""
    if path.endswith(".safetensors"):
        try:
            from safetensors.numpy import load_file
        except ImportError as e:
            raise ImportError(f"Reading {path} needs safetensors: pip install safetensors") from e
        return load_file(path)
    return load_torch_state_dict(path)


def detect_layout(state: Mapping[str, np.ndarray], source: str) -> str:
    """The layout of ``state`` (a key of ``LAYOUTS``) from its keys; a clear error naming what it holds else."""
    for layout, (_, (stem, block), _, _) in LAYOUTS.items():
        if stem in state and any(k.startswith(block) for k in state):
            return layout
    sample = ", ".join(list(state)[:6]) or "no tensors"
    raise ValueError(f"{source} is not a state dict of a layout efficientnet_keras reads (its first keys: {sample}). "
                     "It reads " + "; ".join(f"{what} (keys {stem}, {block}...)" for what, (stem, block), _, _ in
                                             LAYOUTS.values())
                     + '. Convert other checkpoints to one of these, or to a Keras .weights.h5 file; timm names load '
                     'with weights="timm:<name>".')


def load_state_dict(model: keras.Model, state: Mapping[str, np.ndarray], source: str, is_coatnet: bool) -> str:
    """Load ``state`` into ``model`` with the converter of its layout; returns the layout. ``is_coatnet``: whether
    ``model`` is a CoAtNet, checked against the layout first so the error names both."""
    layout = detect_layout(state, source)
    what, _, coatnet_layout, convert = LAYOUTS[layout]
    if coatnet_layout != is_coatnet:
        kind = "a CoAtNet" if is_coatnet else "an EfficientNet"
        raise ValueError(f"{source} holds {what}; model '{model.name}' is {kind}. Pass a state dict of "
                         f"{'a timm CoAtNet' if is_coatnet else 'an EfficientNet'} of the same configuration.")
    convert(model, state, source=source)
    return layout
