"""Per-stage augmentation as the official EfficientNetV2 code applies it: RandAugment per image, mixup and CutMix
per batch (google/automl ``efficientnetv2/datasets.py``), all float32 and stateless in their seeds.

Mixup and CutMix are written here rather than taken from Keras because Keras' layers mix differently: its MixUp
draws one weight per batch and pairs examples by a random permutation, its CutMix takes a factor, not a Beta
alpha. The official ones:

- mixup: a weight per example, lambda ~ Beta(alpha, alpha), lambda = max(lambda, 1 - lambda), mixed with the batch
  in reverse order;
- CutMix: a box per example (centre uniform, area 1 - Beta(alpha, alpha)), pasted from the reversed batch; the
  labels are mixed by the mean box area over the (half) batch, one number for all its examples, as the official
  ``cutmix`` computes it;
- both on: the first half of the batch gets mixup, the second half CutMix.

Labels come out mixed but not smoothed: label smoothing is applied once, by the loss.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from efficientnet_keras.training import randaugment as ra
from efficientnet_keras.training.stages import Stage

__all__ = ["StageAugmenters", "POLICIES", "mixup", "cutmix_masks", "cutmix", "mix"]

POLICIES = ("randaugment", "autoaugment", "none")

MAX_ALPHA = 10.0  # Beta(alpha, alpha) concentrates at 1/2 long before this; larger values are a typo


def check_alpha(name: str, alpha: float) -> None:
    if not 0 <= alpha <= MAX_ALPHA:
        raise ValueError(f"{name} alpha must be in [0, {MAX_ALPHA:g}] (the official recipes use 0 to 0.5); "
                         f"got {alpha:g}.")


# Stream of each random draw, folded into the batch seed: mixup's and CutMix's Beta samples must be independent
# (the official code draws two separate Beta(alpha, alpha) samples), so each takes its own pair of streams.
MIXUP_STREAMS, CUTMIX_STREAMS, CUTMIX_CENTRE_STREAM = (1, 2), (4, 5), 3


def _beta(shape, alpha: float, seed, streams: tuple[int, int] = MIXUP_STREAMS):
    """Beta(alpha, alpha) as a ratio of Gamma draws (stateless, from the two ``streams`` of ``seed``); 1/2 where
    both draws underflow to 0."""
    g1 = tf.random.stateless_gamma(shape, tf.random.experimental.stateless_fold_in(seed, streams[0]), alpha)
    g2 = tf.random.stateless_gamma(shape, tf.random.experimental.stateless_fold_in(seed, streams[1]), alpha)
    total = g1 + g2
    return tf.where(total > 0, g1 / tf.where(total > 0, total, 1.0), 0.5)


def mixup(images, labels, alpha: float, seed):
    """Official ``mixup``: per-example weight max(l, 1 - l), l ~ Beta(alpha, alpha), partner = reversed batch."""
    n = tf.shape(images)[0]
    weight = _beta([n, 1], alpha, seed)
    weight = tf.maximum(weight, 1.0 - weight)
    w = tf.reshape(weight, [n, 1, 1, 1])
    return images * w + images[::-1] * (1.0 - w), labels * weight + labels[::-1] * (1.0 - weight)


def cutmix_masks(n, height, width, alpha: float, seed):
    """Official ``cutmix_mask`` per example: [n, H, W, 1] float32, 1 inside the pasted box."""
    draws = tf.random.stateless_uniform([n, 2], tf.random.experimental.stateless_fold_in(seed, CUTMIX_CENTRE_STREAM))
    r_y = tf.cast(draws[:, 0] * tf.cast(height, tf.float32), tf.int32)  # uniform int in [0, H)
    r_x = tf.cast(draws[:, 1] * tf.cast(width, tf.float32), tf.int32)
    ratio = tf.sqrt(1.0 - _beta([n], alpha, seed, CUTMIX_STREAMS))
    r_h = tf.cast(ratio * tf.cast(height, tf.float32), tf.int32)
    r_w = tf.cast(ratio * tf.cast(width, tf.float32), tf.int32)
    y1, y2 = tf.clip_by_value(r_y - r_h // 2, 0, height), tf.clip_by_value(r_y + r_h // 2, 0, height)
    x1, x2 = tf.clip_by_value(r_x - r_w // 2, 0, width), tf.clip_by_value(r_x + r_w // 2, 0, width)
    ys = tf.range(height)[None, :, None]
    xs = tf.range(width)[None, None, :]
    inside = ((ys >= y1[:, None, None]) & (ys < y2[:, None, None]) & (xs >= x1[:, None, None])
              & (xs < x2[:, None, None]))
    return tf.cast(inside, tf.float32)[..., None]


def cutmix(images, labels, masks):
    """Official ``cutmix``: boxes from the reversed batch; labels mixed by the boxes' mean area over the batch."""
    area = tf.reduce_mean(masks)
    return (1.0 - masks) * images + masks * images[::-1], (1.0 - area) * labels + area * labels[::-1]


def mix(images, labels, mixup_alpha: float, cutmix_alpha: float, seed):
    """Official ``mixing`` of one batch: mixup, CutMix, or half of the batch each when both alphas are set."""
    if not mixup_alpha and not cutmix_alpha:
        return images, labels
    shape = tf.shape(images)
    if mixup_alpha and cutmix_alpha:
        half = shape[0] // 2
        x1, y1 = mixup(images[:half], labels[:half], mixup_alpha, seed)
        masks = cutmix_masks(shape[0] - half, shape[1], shape[2], cutmix_alpha, seed)
        x2, y2 = cutmix(images[half:], labels[half:], masks)
        return tf.concat([x1, x2], 0), tf.concat([y1, y2], 0)
    if mixup_alpha:
        return mixup(images, labels, mixup_alpha, seed)
    return cutmix(images, labels, cutmix_masks(shape[0], shape[1], shape[2], cutmix_alpha, seed))


def _switch(stage, branches):
    """Apply the current stage's branch (all branches share one graph; only the selected one runs)."""
    if len(branches) == 1:
        return branches[0]()
    return tf.switch_case(tf.cast(stage, tf.int32), branches)


class StageAugmenters:
    """The stages' RandAugment magnitudes and mixing alphas, applied by the stage index the pipeline reads.

    ``policy``: "randaugment" (each stage's magnitude; 0 turns it off), "autoaugment" (policy v0 in every stage,
    which has no magnitude: the official progression then varies only size and mixing) or "none"."""

    def __init__(self, stages: Sequence[Stage], policy: str = "randaugment"):
        if policy not in POLICIES:
            raise ValueError(f"augment must be one of {', '.join(POLICIES)}; got {policy!r}.")
        self.policy = policy
        for s in stages:
            ra.check_magnitude(s.randaug_magnitude)
            check_alpha("mixup", s.mixup_alpha)
            check_alpha("cutmix", s.cutmix_alpha)
        self.stages = list(stages)

    def augment(self, stage, image, seed):
        """One image [H, W, 3], float32 in [0, 255]: the policy's ops drawn for it from ``seed``."""
        if self.policy == "autoaugment":
            return ra.autoaugment(image, seed)
        if self.policy == "none":
            return image

        def branch(magnitude):
            return (lambda: ra.randaugment(image, magnitude, seed)) if magnitude > 0 else (lambda: image)

        return _switch(stage, [branch(s.randaug_magnitude) for s in self.stages])

    def mix(self, stage, images, labels, seed):
        def branch(s):
            return lambda: mix(images, labels, s.mixup_alpha, s.cutmix_alpha, seed)

        return _switch(stage, [branch(s) for s in self.stages])
