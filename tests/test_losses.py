"""The official losses: main.py's multi-class (ImageNet-21k) softmax and its sigmoid loss, against hand computations."""

import numpy as np
import pytest

from efficientnet_keras.training.losses import make_loss, make_metrics


def test_multilabel_losses_equal_a_hand_computation():
    """main.py: multi-hot labels divided by their sum, then softmax cross-entropy; loss_type='sigmoid': sigmoid
    cross-entropy summed over classes, averaged over the batch."""
    labels = np.array([[1, 0, 1, 0], [0, 1, 0, 0], [1, 1, 1, 1]], np.float32)
    logits = np.array([[2.0, -1.0, 0.5, 0.0], [0.1, 0.2, 0.3, 0.4], [-3.0, 1.0, 2.0, 0.0]], np.float32)
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    targets = labels / labels.sum(axis=1, keepdims=True)
    expected = -(targets * log_softmax).sum(axis=1).mean()
    np.testing.assert_allclose(float(make_loss("multilabel_softmax")(labels, logits)), expected, rtol=1e-6)
    # Label smoothing as tf.losses.softmax_cross_entropy: targets (1 - s) + s / classes.
    smoothed = targets * 0.9 + 0.1 / 4
    np.testing.assert_allclose(float(make_loss("multilabel_softmax", 0.1)(labels, logits)),
                               -(smoothed * log_softmax).sum(axis=1).mean(), rtol=1e-6)
    sigmoid = np.maximum(logits, 0) - logits * labels + np.log1p(np.exp(-np.abs(logits)))
    np.testing.assert_allclose(float(make_loss("sigmoid")(labels, logits)), sigmoid.sum(axis=1).mean(), rtol=1e-5)
    one_hot = np.eye(4, dtype=np.float32)[[0, 1, 2]]  # one label each: the multi-label loss is the plain one
    np.testing.assert_allclose(float(make_loss("multilabel_softmax")(one_hot, logits)),
                               float(make_loss("softmax")(one_hot, logits)), rtol=1e-6)


def test_multilabel_accuracy_counts_the_top_class_when_it_is_a_label():
    labels = np.array([[1, 0, 1, 0], [0, 1, 0, 0], [1, 1, 0, 0]], np.float32)
    logits = np.array([[0.0, 1.0, 3.0, 0.0], [5.0, 0.2, 0.3, 0.4], [-3.0, 1.0, 0.0, 0.0]], np.float32)
    metric = make_metrics("multilabel_softmax")[0]
    metric.update_state(labels, logits)
    assert float(metric.result()) == pytest.approx(2 / 3)  # rows 1 and 3 hit a label, row 2 does not
