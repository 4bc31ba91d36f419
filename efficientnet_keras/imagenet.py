"""ImageNet helpers shipped with the package: ``preprocess_input`` and ``decode_predictions`` (no download)."""

from __future__ import annotations

import functools
import json
import os

import numpy as np

__all__ = ["preprocess_input", "decode_predictions", "class_names"]

_CLASS_INDEX = os.path.join(os.path.dirname(__file__), "imagenet_class_index.json")


@functools.lru_cache(maxsize=1)
def _class_index() -> dict[int, tuple[str, str]]:
    with open(_CLASS_INDEX) as f:
        return {int(k): (v[0], v[1]) for k, v in json.load(f).items()}


def class_names() -> list[str]:
    """The 1000 ImageNet-1k class names in label order (``class_names()[285] == 'Egyptian_cat'``)."""
    index = _class_index()
    return [index[i][1] for i in range(len(index))]


def preprocess_input(x, data_format: str | None = None):
    """A pass-through, as in keras.applications: the models normalize their [0, 255] input themselves."""
    return x


def decode_predictions(preds, top: int = 5) -> list[list[tuple[str, str, float]]]:
    """(wordnet id, class name, score) for the ``top`` classes of each row of a (batch, 1000) prediction."""
    preds = np.asarray(preds)
    if preds.ndim != 2 or preds.shape[1] != 1000:
        raise ValueError(
            f"decode_predictions expects a batch of ImageNet predictions of shape (samples, 1000); got {preds.shape}."
        )
    if not 1 <= top <= 1000:
        raise ValueError(f"top must be in [1, 1000], got {top}.")
    index = _class_index()
    results = []
    for row in preds:
        order = np.argsort(row)[::-1][:top]
        results.append([(*index[int(i)], float(row[i])) for i in order])
    return results
