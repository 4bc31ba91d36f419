"""Pretrained weights: the registry of sources, resolution (offline first), loading checks and converters."""

from efficientnet_keras.weights.convert import load_torch_state_dict, lukemelas_to_keras
from efficientnet_keras.weights.load import cache_dir, check_weights_file, resolve_imagenet
from efficientnet_keras.weights.registry import REGISTRY, WeightsSource, sources_for

__all__ = [
    "REGISTRY",
    "WeightsSource",
    "sources_for",
    "resolve_imagenet",
    "check_weights_file",
    "cache_dir",
    "load_torch_state_dict",
    "lukemelas_to_keras",
]
