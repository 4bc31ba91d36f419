"""Mixup and CutMix as the official datasets.py mixes a batch: per-example mixup weights >= 1/2 with the reversed
batch, per-example CutMix boxes labelled by the batch's mean box area, half of the batch each when both are on."""

import numpy as np
import pytest
import tensorflow as tf

from efficientnet_keras.training import augment

SEED = tf.constant([3, 4], tf.int64)


def _batch(n=8, size=16, classes=8):
    images = tf.constant(np.arange(n, dtype=np.float32)[:, None, None, None] * np.ones((1, size, size, 3), np.float32))
    return images, tf.one_hot(np.arange(n) % classes, classes)


def test_mixup_weights_per_example_with_the_reversed_batch():
    images, labels = _batch()
    x, y = augment.mixup(images, labels, 0.2, SEED)
    weight = tf.reduce_max(y * labels, axis=1).numpy()  # each example's own class keeps the larger weight
    assert (weight >= 0.5).all() and len(set(np.round(weight, 5))) > 1  # drawn per example
    expected = weight[:, None, None, None] * images + (1 - weight[:, None, None, None]) * images[::-1]
    np.testing.assert_allclose(x, expected, rtol=1e-5)
    np.testing.assert_allclose(tf.reduce_sum(y, axis=1), 1.0, rtol=1e-6)  # mixed, not smoothed


def test_cutmix_boxes_and_batch_mean_area():
    images, labels = _batch()
    masks = augment.cutmix_masks(8, 16, 16, 1.0, SEED).numpy()
    x, y = augment.cutmix(images, labels, masks)
    x = x.numpy()
    partner = images.numpy()[::-1]
    np.testing.assert_array_equal(x[masks[..., 0] == 1], partner[masks[..., 0] == 1])  # boxes from the partner
    np.testing.assert_array_equal(x[masks[..., 0] == 0], images.numpy()[masks[..., 0] == 0])
    for mask in masks[..., 0]:  # each mask is one axis-aligned box
        ys, xs = np.nonzero(mask)
        if len(ys):
            assert mask[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1].all()
    area = masks.mean()  # the official label weight: the mean area over the batch, one number for all
    np.testing.assert_allclose(y, (1 - area) * labels + area * labels[::-1], rtol=1e-5)
    assert len({m.mean() for m in masks}) > 1  # but the boxes themselves differ per example


def test_both_on_splits_the_batch():
    images, labels = _batch()
    x, y = augment.mix(images, labels, 0.2, 1.0, SEED)
    first_x, first_y = augment.mixup(images[:4], labels[:4], 0.2, SEED)
    np.testing.assert_allclose(x[:4], first_x, rtol=1e-6)
    np.testing.assert_allclose(y[:4], first_y, rtol=1e-6)
    masks = augment.cutmix_masks(4, 16, 16, 1.0, SEED)
    second_x, second_y = augment.cutmix(images[4:], labels[4:], masks)
    np.testing.assert_allclose(x[4:], second_x, rtol=1e-6)
    np.testing.assert_allclose(y[4:], second_y, rtol=1e-6)
    again = augment.mix(images, labels, 0.2, 1.0, SEED)
    np.testing.assert_array_equal(x, again[0])  # stateless in the seed
    assert augment.mix(images, labels, 0, 0, SEED)[0] is images


def test_alpha_range():
    from efficientnet_keras.training.data import Stage

    with pytest.raises(ValueError, match=r"cutmix alpha must be in \[0, 10\]"):
        augment.StageAugmenters([Stage(32, 0, 0, 0, cutmix_alpha=-0.5)])


def test_cutmix_areas_are_independent_of_the_mixup_weights():
    """datasets.py draws mixup's and CutMix's Beta(alpha, alpha) separately; with alpha equal for both (every official
    config), one shared draw would make each box area 1 - its partner's mixup weight."""
    n, size, alpha = 4096, 64, 0.5
    images, labels = _batch(n, 8, n)
    half = n // 2
    _, y = augment.mix(images, labels, alpha, alpha, SEED)
    weights = tf.reduce_max(y[:half] * labels[:half], axis=1).numpy()  # max(l, 1 - l) of each mixup example
    masks = augment.cutmix_masks(n - half, size, size, alpha, SEED).numpy()  # the boxes mix() pastes
    areas = masks.reshape(n - half, -1).mean(axis=1)
    # Sharing the draw couples |w - 1/2| and |area - 1/2| (area ~ 1 - l); independent draws leave them unrelated.
    coupled = np.corrcoef(np.abs(weights - 0.5), np.abs(areas - 0.5))[0, 1]
    assert abs(coupled) < 0.1
    mixup_draw = augment._beta([half, 1], alpha, SEED).numpy()[:, 0]
    cutmix_draw = augment._beta([n - half], alpha, SEED, augment.CUTMIX_STREAMS).numpy()
    assert not np.allclose(mixup_draw, cutmix_draw) and abs(np.corrcoef(mixup_draw, cutmix_draw)[0, 1]) < 0.1
