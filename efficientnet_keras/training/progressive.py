"""Progressive learning with adaptive regularization (EfficientNetV2 paper, section 4, Algorithm 1).

Training is split into M stages. Stage i trains at image size S_i and regularization (dropout, stochastic
depth, RandAugment magnitude, mixup alpha) interpolated linearly from the first stage's values to the last's:
small images with weak regularization first, large images with strong regularization last.

``ProgressiveLearning`` is a Keras callback driving one ``fit`` run: at each epoch start it sets the stage of the
input pipeline (image size, RandAugment, mixup), the model's dropout and stochastic depth, and reseeds the
augmenters from (seed, epoch) so a resumed run repeats an uninterrupted one. It adds the stage's settings to the
epoch logs, so TensorBoard and CSV logs show them. On TensorFlow a stage switch re-traces nothing: the dataset
yields images of unknown size (one traced step serves every size) and the rates are run-time variables
(``layers.set_regularization``).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import keras

from efficientnet_keras.training.augment import StageAugmenters
from efficientnet_keras.training.data import Stage, StageState
from efficientnet_keras.layers import reseed, set_regularization

__all__ = ["ProgressiveConfig", "PRESETS", "preset_for", "ProgressiveLearning", "stage_for_epoch", "scale_batch"]


@dataclasses.dataclass(frozen=True)
class ProgressiveConfig:
    """(min, max) of each setting; stage i takes min + (max - min) * i / (M - 1)."""

    image_size: tuple[int, int]
    randaug_magnitude: tuple[float, float]
    mixup_alpha: tuple[float, float]
    dropout: tuple[float, float]
    stochastic_depth: tuple[float, float] = (0.2, 0.2)
    num_stages: int = 4
    cutmix_alpha: tuple[float, float] = (0.0, 0.0)
    size_multiple: int = 8  # sizes rounded to a multiple of 8 (TPU-friendly), never below the model's 32

    def __post_init__(self):
        if self.num_stages < 1:
            raise ValueError(f"num_stages must be >= 1, got {self.num_stages}.")
        lo, hi = self.image_size
        if lo < 32 or hi < lo:
            raise ValueError(
                f"image_size range {self.image_size} is invalid: sizes must be >= 32 (the network halves the image "
                "five times) and min <= max."
            )
        for name in ("randaug_magnitude", "mixup_alpha", "cutmix_alpha", "dropout", "stochastic_depth"):
            a, b = getattr(self, name)
            if a < 0 or b < 0:
                raise ValueError(f"{name} range {(a, b)} must not be negative.")
        for name in ("dropout", "stochastic_depth"):
            if max(getattr(self, name)) >= 1:
                raise ValueError(f"{name} range {getattr(self, name)} must stay below 1.")

    def stages(self) -> list[Stage]:
        def lerp(pair, i):
            a, b = pair
            return a if self.num_stages == 1 else a + (b - a) * i / (self.num_stages - 1)

        out = []
        for i in range(self.num_stages):
            size = int(round(lerp(self.image_size, i) / self.size_multiple) * self.size_multiple)
            size = max(32, min(size, self.image_size[1])) if i < self.num_stages - 1 else self.image_size[1]
            out.append(Stage(size, lerp(self.randaug_magnitude, i), lerp(self.mixup_alpha, i), lerp(self.dropout, i),
                             lerp(self.stochastic_depth, i), lerp(self.cutmix_alpha, i)))
        return out


# Paper Table 6 (min -> max): image size, RandAugment magnitude, mixup alpha, dropout. Evaluation sizes are the
# variants' default sizes (384 / 480 / 480).
PRESETS = {
    "EfficientNetV2S": ProgressiveConfig((128, 300), (5, 15), (0, 0), (0.1, 0.3)),
    "EfficientNetV2M": ProgressiveConfig((128, 380), (5, 20), (0, 0.2), (0.1, 0.4)),
    "EfficientNetV2L": ProgressiveConfig((128, 380), (5, 25), (0, 0.4), (0.1, 0.5)),
}


def preset_for(variant: str, max_size: int, dropout: float) -> ProgressiveConfig:
    """The paper's preset for V2-S/M/L; other variants grow from 128 px (or half their size) to ``max_size``,
    RandAugment 5 -> 15, no mixup, and dropout 0.1 -> the variant's own rate (the V2-S pattern)."""
    if variant in PRESETS:
        return PRESETS[variant]
    lo = min(128, max(32, max_size // 2))
    return ProgressiveConfig((lo, max_size), (5, 15), (0, 0), (min(0.1, dropout), dropout))


def scale_batch(stages: Sequence[Stage], batch_size: int, max_scale: float, multiple: int = 1) -> list[Stage]:
    """Larger batches at smaller images: stage i's batch is ``batch_size`` x min(max_scale, (S_max / S_i)^2),
    rounded down to a multiple of ``multiple`` (the replica count) and never below ``batch_size``.

    A batch of (S_max / S_i)^2 x images holds about as many pixels as the last stage's, so it fits the same
    accelerator memory; on a CPU it spreads per-op overhead over more images. The trainer scales the learning rate
    with the batch (linear scaling rule) and keeps epochs as passes over the data (fewer steps per epoch)."""
    if max_scale < 1:
        raise ValueError(f"max batch scale must be >= 1, got {max_scale}.")
    largest = max(s.image_size for s in stages)
    out = []
    for s in stages:
        scaled = int(batch_size * min(max_scale, (largest / s.image_size) ** 2)) // multiple * multiple
        out.append(dataclasses.replace(s, batch_size=max(batch_size, scaled)))
    return out


def stage_for_epoch(epoch: int, epochs: int, num_stages: int) -> int:
    """Stage of an epoch when ``epochs`` are split into ``num_stages`` equal parts (earlier stages get the
    remainder's shorter share)."""
    return min(num_stages - 1, epoch * num_stages // max(epochs, 1))


class ProgressiveLearning(keras.callbacks.Callback):
    """Switch image size and regularization at stage boundaries of a single ``fit`` run."""

    def __init__(self, stages: Sequence[Stage], epochs: int, state: StageState,
                 augmenters: StageAugmenters | None = None, seed: int = 0, verbose: int = 1):
        super().__init__()
        if epochs < len(stages):
            raise ValueError(f"{len(stages)} stages need at least {len(stages)} epochs; got epochs={epochs}.")
        self.stages = list(stages)
        self.epochs = epochs
        self.state = state
        self.augmenters = augmenters
        self.seed = seed
        self.verbose = verbose
        self.current: int | None = None

    def stage_for_epoch(self, epoch: int) -> int:
        return stage_for_epoch(epoch, self.epochs, len(self.stages))

    def on_epoch_begin(self, epoch, logs=None):
        index = self.stage_for_epoch(epoch)
        stage = self.stages[index]
        self.state.set(index, epoch)
        if self.augmenters is not None:
            self.augmenters.reseed(self.seed, epoch)
        reseed([self.model], self.seed + 1, epoch)  # dropout and stochastic-depth masks
        set_regularization(self.model, dropout=stage.dropout, stochastic_depth=stage.stochastic_depth)
        if index != self.current and self.verbose:
            print(f"\nProgressive learning: stage {index + 1}/{len(self.stages)} from epoch {epoch + 1}: "
                  f"image {stage.image_size}px, RandAugment {stage.randaug_magnitude:g}, mixup {stage.mixup_alpha:g}, "
                  f"cutmix {stage.cutmix_alpha:g}, "
                  f"dropout {stage.dropout:g}, stochastic depth {stage.stochastic_depth:g}")
        self.current = index

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        stage = self.stages[self.stage_for_epoch(epoch)]
        logs.update(
            stage=float(self.stage_for_epoch(epoch)),
            image_size=float(stage.image_size),
            randaug_magnitude=float(stage.randaug_magnitude),
            mixup_alpha=float(stage.mixup_alpha),
            cutmix_alpha=float(stage.cutmix_alpha),
            dropout=float(stage.dropout),
            stochastic_depth=float(stage.stochastic_depth),
        )
        if stage.batch_size is not None:
            logs["batch_size"] = float(stage.batch_size)
