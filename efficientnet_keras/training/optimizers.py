"""The official recipe's learning-rate schedule and optimizers (google/automl efficientnetv2 ``utils.py``).

Keras' own classes with what they lack for the recipe: a warm-up before staircase decay, TF1 RMSProp's mean-square
start, and the EMA warm-up of ``tf.train.ExponentialMovingAverage``.
"""

from __future__ import annotations

import keras
from keras import ops

from efficientnet_keras import _keras_private as private

__all__ = ["WarmupExponentialDecay", "RMSpropEMA", "AdamWEMA"]


@keras.saving.register_keras_serializable(package="efficientnet_keras")
class WarmupExponentialDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0, then staircase exponential decay (the official EfficientNet schedule).

    Keras' ExponentialDecay has no warm-up and CosineDecay's warm-up comes only with a cosine, hence this class.

    Steps are those of the base batch. ``segments`` serves runs whose batch changes per stage: rows
    ``[first_step, step_weight, lr_scale]`` in step order, the first at step 0; from ``first_step`` on, an optimizer
    step counts as ``step_weight`` base steps (base steps per epoch / this stage's) and the rate is multiplied by
    ``lr_scale`` (this stage's batch / the base batch: the linear scaling rule). So warm-up and decay stay in epochs.
    """

    def __init__(self, peak: float, warmup_steps: int, decay_steps: int, decay_rate: float,
                 segments: list | None = None):
        self.peak = float(peak)
        self.warmup_steps = int(warmup_steps)
        self.decay_steps = max(1, int(decay_steps))
        self.decay_rate = float(decay_rate)
        self.segments = [[int(a), float(b), float(c)] for a, b, c in segments] if segments else None
        if self.segments and (self.segments[0][0] != 0 or any(
                a[0] >= b[0] for a, b in zip(self.segments, self.segments[1:]))):
            raise ValueError(f"segments must start at step 0 and be in increasing step order, got {segments}.")

    def __call__(self, step):
        step = ops.cast(step, "float32")
        scale = ops.ones_like(step)
        if self.segments:
            base = ops.zeros_like(step)
            ends = [first for first, _, _ in self.segments[1:]] + [None]
            for (first, weight, lr_scale), end in zip(self.segments, ends):
                inside = ops.maximum(step - first, 0.0)
                if end is not None:
                    inside = ops.minimum(inside, float(end - first))
                base = base + inside * weight
                scale = ops.where(step >= first, lr_scale, scale)
            step = base
        warm = self.peak * step / max(1, self.warmup_steps)
        decayed = self.peak * ops.power(self.decay_rate, ops.floor((step - self.warmup_steps) / self.decay_steps))
        return ops.where(step < self.warmup_steps, warm, decayed) * scale

    def get_config(self):
        return dict(peak=self.peak, warmup_steps=self.warmup_steps, decay_steps=self.decay_steps,
                    decay_rate=self.decay_rate, segments=self.segments)


class _EMAWarmup:
    """The weight EMA warms up like ``tf.train.ExponentialMovingAverage(decay, num_updates=step)``, as in the
    official code: min(decay, (1 + step) / (10 + step)). Keras uses the full decay from step 1, so with 0.9999 a
    short run would evaluate almost the initial weights.

    While ``defer_finalize`` is set, ``fit`` leaves the raw weights in the model at its end: a run made of several
    ``fit`` calls copies the EMA weights in once, after the last."""

    defer_finalize = False

    def finalize_variable_values(self, var_list):
        if not self.defer_finalize:
            super().finalize_variable_values(var_list)

    def _update_model_variables_moving_average(self, trainable_variables):
        if not self.use_ema:
            return
        step = ops.cast(self.iterations, "float32")
        momentum = ops.minimum(self.ema_momentum, (1.0 + step) / (10.0 + step))
        for var, average in zip(trainable_variables, private.ema_variables(self)):
            if average is not None:
                m = ops.cast(momentum, var.dtype)
                average.assign(m * average + (1 - m) * var)


@keras.saving.register_keras_serializable(package="efficientnet_keras")
class RMSpropEMA(_EMAWarmup, keras.optimizers.RMSprop):
    """Keras RMSprop (not centered) with the official optimizer's EMA warm-up and mean-square start.

    ``tf.compat.v1.train.RMSPropOptimizer`` (which automl uses) starts the mean square at 1; Keras starts it at 0,
    so its first updates are ~lr * sign(g) / sqrt(1 - rho), about 3x lr for every weight at once. Starting at 1
    adds rho**t to Keras' accumulator after t updates; that term is added here in the update itself (the
    accumulator variable stays Keras', so checkpoints and distribution behave as Keras'). Written by hand because
    Keras has no option for it.
    """

    def update_step(self, gradient, variable, learning_rate):
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        velocity, momentum = private.rmsprop_slots(self, variable)
        self.assign(velocity, self.rho * velocity + (1 - self.rho) * ops.square(gradient))
        initial = ops.power(ops.cast(self.rho, variable.dtype), ops.cast(self.iterations + 1, variable.dtype))
        increment = lr * gradient / ops.sqrt(velocity + initial + self.epsilon)
        if self.momentum > 0:
            self.assign(momentum, self.momentum * momentum + increment)
            increment = momentum
        self.assign_sub(variable, increment)


@keras.saving.register_keras_serializable(package="efficientnet_keras")
class AdamWEMA(_EMAWarmup, keras.optimizers.AdamW):
    """Keras AdamW with the same EMA warm-up."""
