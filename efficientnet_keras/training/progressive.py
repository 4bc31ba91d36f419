"""Progressive learning with adaptive regularization (EfficientNetV2 paper, section 4, Algorithm 1).

Training is split into M stages. Stage i trains at image size S_i with RandAugment magnitude, mixup and CutMix
alphas growing linearly from the first stage's values to the last's: small images with weak regularization
first, large images with strong regularization last. Two progressions:

- ``official`` (default): what google/automl ``efficientnetv2`` runs (``main.py`` / ``main_tf2.py`` with
  ``effnetv2_configs.py``): S_i = int(ibase + (S - ibase)(i + 1) / M) with ibase = 128, RandAugment
  linspace(5, ram, M), mixup and CutMix linspace(0, alpha, M), dropout fixed at the variant's rate (the official
  code computes a dropout list and deletes it).
- ``paper``: the paper's Algorithm 1 and Table 6: S_i = int(S_0 + (S_e - S_0) i / (M - 1)), RandAugment, mixup
  and dropout growing (V2-S: 128 -> 300 px, RandAugment 5 -> 15, dropout 0.1 -> 0.3).

``ProgressiveLearning`` is a Keras callback driving one ``fit`` run: at each epoch start it sets the stage of the
input pipeline (image size, RandAugment, mixup, CutMix) and the model's dropout and stochastic depth, and reseeds
the model's dropout masks from (seed, epoch) so a resumed run repeats an uninterrupted one (the input pipeline's
randomness is stateless in (seed, epoch, position)). It adds the stage's settings to the epoch logs, so
TensorBoard and CSV logs show them. On TensorFlow a stage switch re-traces nothing: the dataset yields images of
unknown size (one traced step serves every size) and the rates are run-time variables
(``layers.set_regularization``).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import keras
import numpy as np

from efficientnet_keras.training.stages import Stage, StageState
from efficientnet_keras.layers import reseed, set_regularization

__all__ = ["ProgressiveConfig", "OFFICIAL", "PAPER", "PROGRESSIONS", "preset_for", "ProgressiveLearning",
           "stage_for_epoch", "scale_batch"]

PROGRESSIONS = ("official", "paper")
IBASE = 128  # hparams.py data.ibase: the official first-stage base size


@dataclasses.dataclass(frozen=True)
class ProgressiveConfig:
    """(first, last) of each setting over ``num_stages`` stages; ``image_size`` is (ibase, final size) for the
    official progression and (first, last stage's size) for the paper's."""

    image_size: tuple[int, int]
    randaug_magnitude: tuple[float, float]
    mixup_alpha: tuple[float, float]
    dropout: tuple[float, float]
    stochastic_depth: tuple[float, float] = (0.2, 0.2)
    num_stages: int = 4
    cutmix_alpha: tuple[float, float] = (0.0, 0.0)
    progression: str = "official"

    def __post_init__(self):
        if self.num_stages < 1:
            raise ValueError(f"num_stages must be >= 1, got {self.num_stages}.")
        if self.progression not in PROGRESSIONS:
            raise ValueError(f"progression must be one of {', '.join(PROGRESSIONS)}; got {self.progression!r}.")
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

    def sizes(self) -> list[int]:
        lo, hi = self.image_size
        m = self.num_stages
        if self.progression == "official" or m == 1:  # main.py: int(ibase + (size - ibase) * (stage + 1) / M)
            return [int(lo + (hi - lo) * (i + 1) / m) for i in range(m)]
        return [int(lo + (hi - lo) * i / (m - 1)) for i in range(m)]  # paper, Algorithm 1

    def stages(self) -> list[Stage]:
        def linspace(pair):  # np.linspace, as the official code (one stage: the last value)
            return [pair[1]] if self.num_stages == 1 else [float(v) for v in np.linspace(*pair, self.num_stages)]

        columns = [linspace(getattr(self, name)) for name in
                   ("randaug_magnitude", "mixup_alpha", "dropout", "stochastic_depth", "cutmix_alpha")]
        return [Stage(size, *values) for size, *values in zip(self.sizes(), *columns)]


# effnetv2_configs.py efficientnetv2_params (train size, ram, mixup = cutmix alpha, dropout) with main.py's stage
# schedule: RandAugment from 5, mixup / CutMix from 0, dropout fixed.
OFFICIAL = {
    "EfficientNetV2S": ProgressiveConfig((IBASE, 300), (5, 10), (0, 0), (0.2, 0.2)),
    "EfficientNetV2M": ProgressiveConfig((IBASE, 384), (5, 15), (0, 0.2), (0.3, 0.3), cutmix_alpha=(0, 0.2)),
    "EfficientNetV2L": ProgressiveConfig((IBASE, 384), (5, 20), (0, 0.5), (0.4, 0.4), cutmix_alpha=(0, 0.5)),
    "EfficientNetV2XL": ProgressiveConfig((IBASE, 384), (5, 20), (0, 0.5), (0.4, 0.4), cutmix_alpha=(0, 0.5)),
}
# Paper Table 6 (min -> max): image size, RandAugment magnitude, mixup alpha, dropout.
PAPER = {
    "EfficientNetV2S": ProgressiveConfig((128, 300), (5, 15), (0, 0), (0.1, 0.3), progression="paper"),
    "EfficientNetV2M": ProgressiveConfig((128, 380), (5, 20), (0, 0.2), (0.1, 0.4), progression="paper"),
    "EfficientNetV2L": ProgressiveConfig((128, 380), (5, 25), (0, 0.4), (0.1, 0.5), progression="paper"),
}


def preset_for(variant: str, max_size: int, dropout: float, progression: str = "official") -> ProgressiveConfig:
    """The variant's official (or paper) progression. Variants without one grow from 128 px (half their size
    when that is not smaller) to ``max_size`` with RandAugment 5 -> 10 and no mixup, the V2-S pattern; their dropout is
    their own rate (official) or grows from 0.1 to it (paper)."""
    table = OFFICIAL if progression == "official" else PAPER
    if variant in table:
        return table[variant]
    lo = IBASE if max_size > IBASE else max(32, max_size // 2)
    drop = (dropout, dropout) if progression == "official" else (min(0.1, dropout), dropout)
    return ProgressiveConfig((lo, max_size), (5, 10), (0, 0), drop, progression=progression)


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
    """Stage of an epoch: stage s runs epochs int(s E / M) to int((s + 1) E / M) - 1, as the official
    ``main_tf2.py`` splits them."""
    return max(s for s in range(num_stages) if int(s * epochs / num_stages) <= epoch)


class ProgressiveLearning(keras.callbacks.Callback):
    """Switch image size and regularization at stage boundaries of a single ``fit`` run."""

    def __init__(self, stages: Sequence[Stage], epochs: int, state: StageState,
                 seed: int = 0, verbose: int = 1, augment: str = "randaugment"):
        super().__init__()
        self.augment = augment
        if epochs < len(stages):
            raise ValueError(f"{len(stages)} stages need at least {len(stages)} epochs; got epochs={epochs}.")
        self.stages = list(stages)
        self.epochs = epochs
        self.state = state
        self.seed = seed
        self.verbose = verbose
        self.current: int | None = None

    def stage_for_epoch(self, epoch: int) -> int:
        return stage_for_epoch(epoch, self.epochs, len(self.stages))

    def on_epoch_begin(self, epoch, logs=None):
        index = self.stage_for_epoch(epoch)
        stage = self.stages[index]
        self.state.set(index, epoch)
        reseed([self.model], self.seed + 1, epoch)  # dropout and stochastic-depth masks
        set_regularization(self.model, dropout=stage.dropout, stochastic_depth=stage.stochastic_depth)
        if index != self.current and self.verbose:
            augment = {"randaugment": f"RandAugment {stage.randaug_magnitude:g}", "autoaugment": "AutoAugment v0",
                       "none": "no augmentation"}[self.augment]
            print(f"\nProgressive learning: stage {index + 1}/{len(self.stages)} from epoch {epoch + 1}: "
                  f"image {stage.image_size}px, {augment}, mixup {stage.mixup_alpha:g}, "
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
