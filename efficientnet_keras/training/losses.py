"""The training losses and accuracy, on logits: one label per image (softmax) or several (ImageNet-21k).

Written as Keras losses rather than taken from Keras where Keras computes something else: the official multi-label
loss normalizes the multi-hot labels before the softmax, and its sigmoid loss sums over classes where Keras'
``BinaryCrossentropy`` averages (dividing the gradient by the class count).
"""

from __future__ import annotations

import keras

__all__ = ["LOSSES", "OUTPUT_ACTIVATION", "make_loss", "make_metrics"]

LOSSES = ("softmax", "multilabel_softmax", "sigmoid")
# What a saved model's classifier ends in, per training loss: probabilities, as the zoo models (keras.applications:
# softmax unless asked); the loss itself is computed on logits.
OUTPUT_ACTIVATION = {"softmax": "softmax", "multilabel_softmax": "softmax", "sigmoid": "sigmoid"}


def make_loss(kind: str = "softmax", label_smoothing: float = 0.0):
    """The training loss on logits. ``multilabel_softmax`` is main.py's multi-class loss (multi-hot labels divided
    by their sum, then softmax cross-entropy); ``sigmoid`` is its loss_type='sigmoid' (sigmoid cross-entropy summed
    over classes, averaged over the batch). Weighted by sample weight: padded evaluation batches (weight 0) leave
    the mean of the real examples."""
    if kind == "sigmoid":
        return _SummedSigmoidCrossentropy(label_smoothing)
    base = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=label_smoothing,
                                                reduction="mean_with_sample_weight")
    return _MultiLabelSoftmax(label_smoothing) if kind == "multilabel_softmax" else base


@keras.saving.register_keras_serializable(package="efficientnet_keras")
class _MultiLabelSoftmax(keras.losses.Loss):
    """main.py's multi-class loss: softmax cross-entropy of the labels divided by their sum per example
    (``labels /= reduce_sum(labels, 1)``); an example without labels keeps its zeros."""

    def __init__(self, label_smoothing: float = 0.0, **kwargs):
        super().__init__(name="multilabel_softmax", reduction="mean_with_sample_weight", **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        y_true = keras.ops.cast(y_true, y_pred.dtype)
        total = keras.ops.sum(y_true, axis=-1, keepdims=True)
        return keras.losses.categorical_crossentropy(y_true / keras.ops.where(total > 0, total, 1.0), y_pred,
                                                     from_logits=True, label_smoothing=self.label_smoothing)

    def get_config(self):
        return {"label_smoothing": self.label_smoothing}


@keras.saving.register_keras_serializable(package="efficientnet_keras")
class _SummedSigmoidCrossentropy(keras.losses.Loss):
    """main.py loss_type='sigmoid': reduce_mean(reduce_sum(sigmoid_cross_entropy(labels, logits), -1)). Keras'
    BinaryCrossentropy averages over classes instead, which divides the gradient by the class count."""

    def __init__(self, label_smoothing: float = 0.0, **kwargs):
        super().__init__(name="sigmoid_crossentropy", reduction="mean_with_sample_weight", **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        y_true = keras.ops.cast(y_true, y_pred.dtype)
        if self.label_smoothing:
            y_true = y_true * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing
        return keras.ops.sum(keras.ops.binary_crossentropy(y_true, y_pred, from_logits=True), axis=-1)

    def get_config(self):
        return {"label_smoothing": self.label_smoothing}


def make_metrics(loss: str = "softmax"):
    """Top-1 accuracy; on multi-label data, whether the top class is one of the image's labels."""
    if loss == "softmax":
        return [keras.metrics.CategoricalAccuracy(name="accuracy")]
    return [_TopLabelAccuracy(name="accuracy")]


class _TopLabelAccuracy(keras.metrics.MeanMetricWrapper):
    """Multi-label top-1: 1 where the highest logit's class is one of the labels (main.py's eval/acc_top1 on sets)."""

    def __init__(self, name="accuracy", dtype=None):
        super().__init__(fn=_top_label_hit, name=name, dtype=dtype)


def _top_label_hit(y_true, y_pred):
    top = keras.ops.argmax(y_pred, axis=-1)
    return keras.ops.cast(keras.ops.take_along_axis(y_true, top[:, None], axis=-1)[:, 0] > 0, "float32")
