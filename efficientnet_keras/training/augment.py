"""Per-stage augmentation: RandAugment per image, Mixup and CutMix per batch, all in float32.

Keras' own layers (they run inside ``tf.data`` on any backend), built with ``dtype="float32"`` so that a mixed
precision policy never reaches the pipeline: images stay float32 until the model's input casts them. keras_cv
0.9's RandAugment fails in graph-mode branches (its Equalization uses a Python ``and`` on tensors), so it is not
used here.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from efficientnet_keras.training.data import Stage

__all__ = ["StageAugmenters", "RANDAUG_MAX_LEVEL"]

# RandAugment magnitudes are on the official scale (automl autoaugment.py: _MAX_LEVEL = 10); Keras takes
# magnitude / 10 clipped to [0, 1], so 10 and above are its strongest setting.
RANDAUG_MAX_LEVEL = 10.0


def _switch(stage, branches):
    """Apply the current stage's branch (all branches share one graph; only the selected one runs)."""
    if len(branches) == 1:
        return branches[0]()
    return tf.switch_case(tf.cast(stage, tf.int32), branches)


class StageAugmenters:
    """Keras' RandAugment / MixUp / CutMix layers, one set per stage (their strengths are fixed when built)."""

    def __init__(self, stages: Sequence[Stage], seed: int):
        import keras

        self.sizes = [s.image_size for s in stages]
        self.randaug, self.mixup, self.cutmix = [], [], []
        for i, s in enumerate(stages):
            self.randaug.append(
                keras.layers.RandAugment(value_range=(0, 255), num_ops=2,
                                         factor=min(1.0, s.randaug_magnitude / RANDAUG_MAX_LEVEL),
                                         seed=seed + 101 * i, dtype="float32")
                if s.randaug_magnitude > 0 else None)
            self.mixup.append(keras.layers.MixUp(alpha=s.mixup_alpha, seed=seed + 103 * i, dtype="float32")
                              if s.mixup_alpha > 0 else None)
            self.cutmix.append(keras.layers.CutMix(factor=min(1.0, s.cutmix_alpha), seed=seed + 107 * i,
                                                   dtype="float32") if s.cutmix_alpha > 0 else None)

    def layers(self):
        return [l for group in (self.randaug, self.mixup, self.cutmix) for l in group if l is not None]

    def reseed(self, seed: int, epoch: int) -> None:
        """Restart every augmenter's random stream from (seed, epoch), so a resumed epoch repeats exactly."""
        from efficientnet_keras.layers import reseed

        reseed(self.layers(), seed, epoch)

    def randaugment(self, stage, image):
        """One image [H, W, 3], float32 in [0, 255]: two ops drawn for this image."""
        def branch(layer):
            return lambda: tf.clip_by_value(layer(image, training=True), 0.0, 255.0) if layer is not None else image

        return _switch(stage, [branch(l) for l in self.randaug])

    def mix(self, stage, images, labels):
        def branch(mixup, cutmix, size):
            def apply():
                # The stage's size, stated: Keras 3.15's CutMix fails on images of unknown height and width.
                x, y = tf.ensure_shape(images, [None, size, size, 3]), labels
                for layer in (mixup, cutmix):
                    if layer is not None:
                        out = layer({"images": x, "labels": y}, training=True)
                        x, y = out["images"], out["labels"]
                return x, y

            return apply

        return _switch(stage, [branch(m, c, size) for m, c, size in zip(self.mixup, self.cutmix, self.sizes)])
