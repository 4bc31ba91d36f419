"""Freezing for fine-tuning: the backbone, or every stage up to one, as Keras' transfer-learning guide does it.

A frozen layer has ``trainable = False``: its weights get no gradient and leave the optimizer, and a frozen
``BatchNormalization`` runs in inference mode (Keras 3: it normalizes with its moving statistics and does not
update them), so a fit leaves frozen weights and statistics bit-identical. The flags are saved with the model
(each layer's ``trainable`` in its config), and the trainer re-applies them on ``--resume``.
"""

from __future__ import annotations

import re

import keras

__all__ = ["BACKBONE", "check_name", "stage_names", "layers_below", "freeze", "hold", "frozen_layers"]

BACKBONE = "backbone"  # everything but the classifier
CLASSIFIER = "predictions"
_STAGE = re.compile(r"^(stem|block(\d+))")


def _stage_of(name: str) -> str | None:
    """The stage a layer belongs to, from keras.applications' names: stem_*, block<N><letter>_*."""
    match = _STAGE.match(name)
    if not match:
        return None
    return "stem" if match.group(1) == "stem" else f"block{match.group(2)}"


def stage_names(model: keras.Model) -> list[str]:
    """The model's stages, input first: ``stem``, ``block1``, ``block2``, ..."""
    names: list[str] = []
    for layer in model.layers:
        stage = _stage_of(layer.name)
        if stage and stage not in names:
            names.append(stage)
    return names


def check_name(what: str, stages: list[str], model_name: str) -> None:
    """Refuse a ``freeze=`` that names no stage of the model, listing what it has."""
    if what != BACKBONE and what not in stages:
        raise ValueError(f"freeze={what!r} names no stage of {model_name}; it has {BACKBONE} (all but the "
                         f"classifier) or a stage: {', '.join(stages)} (that stage and everything below it).")


def _check(model: keras.Model, what: str) -> list[str]:
    stages = stage_names(model)
    check_name(what, stages, model.name)
    if not any(layer.name == CLASSIFIER for layer in model.layers):
        raise ValueError(f"{model.name} has no '{CLASSIFIER}' layer (include_top=False?): there is nothing to fine-tune "
                         "above a frozen backbone.")
    return stages


def layers_below(model: keras.Model, what: str) -> list:
    """The layers ``freeze(model, what)`` freezes: all but the classifier ("backbone"), or a stage and every stage
    below it with the layers before the stem."""
    stages = _check(model, what)
    below = set(stages) if what == BACKBONE else set(stages[: stages.index(what) + 1])
    chosen, before_stem = [], True
    for layer in model.layers:
        stage = _stage_of(layer.name)
        before_stem = before_stem and stage is None
        if (layer.name != CLASSIFIER) if what == BACKBONE else (before_stem or stage in below):
            chosen.append(layer)
    return chosen


def freeze(model: keras.Model, what: str) -> list[str]:
    """Freeze ``what`` ("backbone", or a stage name and every stage below it, with the layers before the stem);
    return the names of the frozen layers that hold weights."""
    frozen = []
    for layer in layers_below(model, what):
        layer.trainable = False
        if layer.weights:
            frozen.append(layer.name)
    return frozen


def hold(model: keras.Model, what: str) -> list:
    """For the two-phase schedule: freeze the BatchNorm layers of ``what`` (inference mode in both phases, as
    Keras' transfer-learning guide keeps them) and return the other layers' trainable weights, which the optimizer
    holds still until the unfreeze (``optimizers.Unfreeze``)."""
    held = []
    for layer in layers_below(model, what):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
        else:
            held += layer.trainable_weights
    return held


def frozen_layers(model: keras.Model) -> list[str]:
    """Names of the layers with weights that are frozen."""
    return [layer.name for layer in model.layers if layer.weights and not layer.trainable]
