"""ImageNet helpers shipped with the package: ``preprocess_input`` and ``decode_predictions`` for the 1,000
ImageNet-1k classes and the 21,843 classes of the official ImageNet-21k checkpoints (no download)."""

from __future__ import annotations

import functools
import gzip
import json
import os

import numpy as np

__all__ = ["preprocess_input", "decode_predictions", "class_names", "class_index"]

_HERE = os.path.dirname(__file__)
_CLASS_INDEX = os.path.join(_HERE, "imagenet_class_index.json")
# Google's ImageNet-21k order (made by tools/make_imagenet21k_classes.py; see there why not automl's label file).
_CLASSES_21K = os.path.join(_HERE, "imagenet21k_classes.txt.gz")
IMAGENET_21K_CLASSES = 21843


@functools.lru_cache(maxsize=2)
def class_index(classes: int = 1000) -> tuple[tuple[str, str], ...]:
    """(wordnet id, name) per output index of a 1000-class (ImageNet-1k) or 21843-class (ImageNet-21k) head."""
    if classes == 1000:
        with open(_CLASS_INDEX) as f:
            index = json.load(f)
        return tuple((index[str(i)][0], index[str(i)][1]) for i in range(1000))
    if classes == IMAGENET_21K_CLASSES:
        with gzip.open(_CLASSES_21K, "rt") as f:
            return tuple(tuple(line.rstrip("\n").split("\t", 1)) for line in f)
    raise ValueError(f"Class names ship for ImageNet-1k (1000) and ImageNet-21k ({IMAGENET_21K_CLASSES}) heads; "
                     f"got {classes} classes.")


def class_names(classes: int = 1000) -> list[str]:
    """Class names in label order (``class_names()[285] == 'Egyptian_cat'``); ``classes=21843``: ImageNet-21k."""
    return [name for _, name in class_index(classes)]


def preprocess_input(x, data_format: str | None = None):
    """A pass-through, as in keras.applications: the models take RGB in [0, 255] and normalize it themselves,
    with the normalization their weights were trained with (each weight set's config in ``weights/registry.py``, reported by ``get_preprocessing(model)``: ImageNet
    mean/std for V1 and V2-B0..B3 ImageNet-1k, [-1, 1] for V2-S/M/L/XL and every ImageNet-21k set and AdvProp,
    (x - 127) / 128 for Lite). Build with ``include_preprocessing=False`` to feed normalized inputs instead."""
    return x


def decode_predictions(preds, top: int = 5) -> list[list[tuple[str, str, float]]]:
    """(wordnet id, class name, score) for the ``top`` classes of each row of a (batch, 1000) ImageNet-1k or
    (batch, 21843) ImageNet-21k prediction."""
    preds = np.asarray(preds)
    if preds.ndim != 2 or preds.shape[1] not in (1000, IMAGENET_21K_CLASSES):
        raise ValueError(
            "decode_predictions expects a batch of ImageNet predictions of shape (samples, 1000), or (samples, "
            f"{IMAGENET_21K_CLASSES}) for ImageNet-21k; got {preds.shape}."
        )
    if not 1 <= top <= preds.shape[1]:
        raise ValueError(f"top must be in [1, {preds.shape[1]}], got {top}.")
    index = class_index(preds.shape[1])
    results = []
    for row in preds:
        order = np.argsort(row)[::-1][:top]
        results.append([(*index[int(i)], float(row[i])) for i in order])
    return results
