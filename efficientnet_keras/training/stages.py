"""A progressive-learning stage (what changes between stages) and the state the input pipeline reads at each
epoch's start. Kept apart from the pipeline so that augmentation, the progressive callback and the data share it
without importing one another."""

from __future__ import annotations

import dataclasses

import tensorflow as tf

__all__ = ["Stage", "StageState"]


@dataclasses.dataclass(frozen=True)
class Stage:
    """Settings of one progressive-learning stage (paper section 4, Algorithm 1)."""

    image_size: int
    randaug_magnitude: float
    mixup_alpha: float
    dropout: float
    stochastic_depth: float = 0.2
    cutmix_alpha: float = 0.0
    batch_size: int | None = None  # global batch of this stage; None: the run's batch size


class StageState:
    """Variables the input pipeline reads when an epoch starts: the stage index and the epoch."""

    def __init__(self):
        self.stage = tf.Variable(0, dtype=tf.int64, trainable=False, name="progressive_stage")
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="progressive_epoch")

    def set(self, stage: int, epoch: int) -> None:
        self.stage.assign(stage)
        self.epoch.assign(epoch)

