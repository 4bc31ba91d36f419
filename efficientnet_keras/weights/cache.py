"""Converted weights in the Keras cache: one HDF5 file per (variant, weight set), values keyed by layer name
(so the with-top file also serves ``include_top=False`` and ``include_preprocessing=False`` models), and its
SHA-256 recorded beside it when it was made, after the content check, and checked on every later load."""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import tempfile
import warnings
import zlib
from typing import Callable

import h5py
import keras
import numpy as np

from efficientnet_keras.weights.convert import layer_values
from efficientnet_keras.weights.registry import PretrainedConfig, WeightsSource

__all__ = ["convert_archive", "read_converted", "record_path", "file_hash"]

OPTIONAL_LAYERS = ("predictions", "normalization")  # absent with include_top=False / include_preprocessing=False


def record_path(path: str) -> str:
    return path + ".json"


def file_hash(path: str, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_converted(model: keras.Model, path: str, config: PretrainedConfig, source: WeightsSource,
                     archive: str) -> None:
    """Write ``model``'s weights by layer name, then the record with the file's SHA-256 (written last, so a
    half-written file has no record and is never trusted)."""
    tmp = path + ".partial"
    with h5py.File(tmp, "w") as f:
        for layer, values in layer_values(model.layers).items():
            for name, value in values.items():
                f.create_dataset(f"{layer}/{name}", data=value)
    os.replace(tmp, path)
    record = {"sha256": file_hash(path), "variant": config.variant, "weight_set": config.weight_set,
              "source": source.url, "archive": os.path.basename(archive), "check": "sample photos classified"}
    with open(record_path(path), "w") as f:
        json.dump(record, f, indent=1)


def read_converted(path: str) -> dict[str, dict[str, np.ndarray]]:
    """The values of a converted file, after checking its SHA-256 against the record made with it."""
    try:
        with open(record_path(path)) as f:
            recorded = json.load(f)["sha256"]
    except (OSError, ValueError, KeyError):
        raise ValueError(f"{path} has no readable record of its SHA-256 ({record_path(path)}), so it cannot be "
                         "trusted; delete it and load again to convert anew.") from None
    actual = file_hash(path)
    if actual != recorded:
        raise ValueError(f"Converted weights {path} have sha256 {actual}, but {recorded} was recorded when they were "
                         "made: the file changed or is corrupt. Delete it (and its .json) and load again.")
    with h5py.File(path, "r") as f:
        return {layer: {name: f[layer][name][()] for name in f[layer]} for layer in f}


def _extract(archive: str, into: str) -> str:
    """Extract a released archive; return the folder that holds its checkpoint (``*.index``)."""
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(into, filter="data")
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
        raise ValueError(f"{archive} is not a complete archive ({e}): a truncated or interrupted download? Delete "
                         "it and download again.") from None
    for root, _, files in os.walk(into):
        if any(name.endswith(".index") for name in files):
            return root
    raise ValueError(f"{archive} holds no TensorFlow checkpoint (no *.index file); it is not an official "
                     "EfficientNet archive.")


def convert_archive(archive: str, config: PretrainedConfig, source: WeightsSource, path: str,
                    build: Callable[[PretrainedConfig], keras.Model]) -> str:
    """Convert an official archive into ``path``: read (EMA shadows preferred), map into ``build(config)`` (the
    reference model: with its top, at the variant's evaluation size, normalizing as the set was trained), check
    on the sample photos, then write the file and its record. Raises ValueError, writing nothing, when any step
    fails."""
    from efficientnet_keras.network import get_preprocessing
    from efficientnet_keras.weights.check import check_classifies_samples
    from efficientnet_keras.weights.official import (describe_unused, official_model_name, official_to_keras,
                                                     read_checkpoint)

    with tempfile.TemporaryDirectory() as tmp:
        variables = read_checkpoint(_extract(archive, tmp))
    model = build(config)
    # Variables no layer takes (e.g. AdvProp's auxiliary BatchNorm for adversarial examples, which the official
    # evaluation's Saver(var_dict) ignores) are allowed once every model variable is filled and the photos check.
    unused = official_to_keras(model, variables, source=archive, expected_name=official_model_name(config.variant),
                               allow_unused=True)
    check_classifies_samples(model, get_preprocessing(model).transform,
                             f"{archive} ({model.name}, {config.weight_set})")
    if unused:
        warnings.warn(f"{archive}: {len(unused)} checkpoint variables have no layer in {model.name} and were not "
                      f"used: {describe_unused(unused)}. Every variable of the model was filled and it classifies "
                      "the sample photos correctly.", stacklevel=2)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    _write_converted(model, path, config, source, archive)
    return path
