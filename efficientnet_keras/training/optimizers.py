"""The official recipe's learning-rate schedules and optimizers (google/automl efficientnetv2 ``utils.py``,
``main.py``).

Keras' own classes with what they lack for the recipe: a warm-up before the official decays; TF1 RMSProp's
mean-square start; L2 weight decay added to the gradient (the official ``wd * sum(l2_loss(v))`` in the loss);
and the EMA of ``tf.train.ExponentialMovingAverage(decay, num_updates=global_step)`` over the trainable weights
and the BatchNorm moving statistics (``utils.get_ema_vars``).
"""

from __future__ import annotations

import contextlib
import math
import re

import keras
from keras import ops

from efficientnet_keras import _keras_private as private

__all__ = ["WarmupExponentialDecay", "RMSpropEMA", "AdamWEMA", "SwapEMA", "Unfreeze", "ours", "L2_EXCLUDED", "SCHEDULES",
           "batchnorm_statistics"]

SCHEDULES = ("exponential", "constant", "cosine")  # utils.WarmupLearningRateSchedule's lr_decay_type
L2_EXCLUDED = re.compile(r".*(bias|gamma|beta).*")  # hparams.py train.weight_decay_exclude


@keras.saving.register_keras_serializable(package="efficientnet_keras")
class WarmupExponentialDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0, then the official decay (``utils.WarmupLearningRateSchedule``).

    ``decay``: ``exponential`` (peak x rate^floor(step / decay_steps), counted from step 0 as the official code
    does, so the rate right after warm-up is already decayed), ``constant`` (the fine-tuning recipes) or
    ``cosine`` (over ``total_steps``). Keras' ExponentialDecay has no warm-up and CosineDecay's warm-up comes only
    with a cosine, hence this class.

    Steps are those of the base batch. ``segments`` serves runs whose batch changes per stage: rows
    ``[first_step, step_weight, lr_scale]`` in step order, the first at step 0; from ``first_step`` on, an optimizer
    step counts as ``step_weight`` base steps (base steps per epoch / this stage's) and the rate is multiplied by
    ``lr_scale`` (this stage's batch / the base batch: the linear scaling rule). So warm-up and decay stay in epochs.
    """

    def __init__(self, peak: float, warmup_steps: int, decay_steps: float, decay_rate: float,
                 segments: list | None = None, decay: str = "exponential", total_steps: int = 1,
                 minimum: float = 0.0):
        if decay not in SCHEDULES:
            raise ValueError(f"decay must be one of {', '.join(SCHEDULES)}; got {decay!r}.")
        self.peak = float(peak)
        self.warmup_steps = int(warmup_steps)
        self.decay_steps = max(1e-9, float(decay_steps))
        self.decay_rate = float(decay_rate)
        self.decay = decay
        self.total_steps = max(1, int(total_steps))
        self.minimum = float(minimum)  # utils.py minimal_lr: a floor under the decay, not under the warm-up
        self.segments = [[int(a), float(b), float(c)] for a, b, c in segments] if segments else None
        if self.segments and (self.segments[0][0] != 0 or any(
                a[0] >= b[0] for a, b in zip(self.segments, self.segments[1:]))):
            raise ValueError(f"segments must start at step 0 and be in increasing step order, got {segments}.")

    def _base_step(self, step):
        """(steps of the base batch, learning-rate scale) of an optimizer step."""
        scale = ops.ones_like(step)
        if not self.segments:
            return step, scale
        base = ops.zeros_like(step)
        ends = [first for first, _, _ in self.segments[1:]] + [None]
        for (first, weight, lr_scale), end in zip(self.segments, ends):
            inside = ops.maximum(step - first, 0.0)
            if end is not None:
                inside = ops.minimum(inside, float(end - first))
            base = base + inside * weight
            scale = ops.where(step >= first, lr_scale, scale)
        return base, scale

    def __call__(self, step):
        step, scale = self._base_step(ops.cast(step, "float32"))
        if self.decay == "exponential":
            rate = self.peak * ops.power(self.decay_rate, ops.floor(step / self.decay_steps))
        elif self.decay == "cosine":
            rate = 0.5 * self.peak * (1.0 + ops.cos(math.pi * step / self.total_steps))
        else:
            rate = self.peak * ops.ones_like(step)
        if self.minimum:
            rate = ops.maximum(rate, self.minimum)
        warm = self.peak * step / max(1, self.warmup_steps)
        return ops.where(step < self.warmup_steps, warm, rate) * scale

    def get_config(self):
        return dict(peak=self.peak, warmup_steps=self.warmup_steps, decay_steps=self.decay_steps,
                    decay_rate=self.decay_rate, segments=self.segments, decay=self.decay,
                    total_steps=self.total_steps, minimum=self.minimum)


def batchnorm_statistics(model: keras.Model) -> list:
    """The moving mean and variance of every trainable BatchNormalization layer (what the official EMA also
    averages); a frozen one's statistics do not move, and averaging them would change them by rounding."""
    return [v for layer in private.flatten_layers(model) if isinstance(layer, keras.layers.BatchNormalization)
            and layer.trainable for v in (layer.moving_mean, layer.moving_variance)]


def _eagerly():
    """Run now, outside any function being traced (TensorFlow); other backends build eagerly."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.init_scope()
    return contextlib.nullcontext()


class _OfficialRecipe:
    """L2 weight decay and the official EMA, mixed into a Keras optimizer.

    ``l2``: adds ``l2 * v`` to the gradient of every weight whose path does not match bias/gamma/beta: the gradient
    of the official loss term ``l2 * sum(v^2 / 2)``, so it passes through RMSProp's normalisation like the official
    one. Added in ``update_step``, after the gradients are summed over replicas, so it counts once.

    EMA (``use_ema``): averages start at the values the weights have when the optimizer is built (pretrained ones
    when fine-tuning) and are updated after every step with decay min(ema_momentum, (1 + n) / (10 + n)), n the
    step count after the step, as ``tf.train.ExponentialMovingAverage(num_updates=global_step)``; Keras' own EMA
    starts from the first step's weights with the full decay, so with 0.9999 a short run would evaluate almost
    the initial weights. ``average_statistics(model)`` before the first step adds the BatchNorm moving statistics.

    While ``defer_finalize`` is set, ``fit`` leaves the raw weights in the model at its end: a run made of several
    ``fit`` calls copies the averages in once, after the last.

    ``hold(variables)`` (before the first step): the two-phase fine-tuning schedule. Held variables step with the
    learning rate x ``held_scale``, the others x ``free_scale`` (run-time variables; ``Unfreeze`` sets them per
    epoch); while ``held_scale`` is 0 a held variable, its decoupled weight decay and its average do not change
    at all, as if frozen, yet it stays in the one traced step and optimizer, so unfreezing needs no recompile and a
    resumed run restores the same optimizer."""

    defer_finalize = False

    def __init__(self, *args, l2: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.l2 = float(l2)
        self._statistics: list = []
        self._statistic_averages: list = []
        self._held: set = set()  # paths of held variables
        self._held_decayed: set = set()  # ... of those that take decoupled weight decay
        self.held_scale = self.free_scale = None

    def hold(self, variables: list) -> None:
        if self.built:
            raise ValueError("hold must be called before the optimizer is built (before fit).")
        self._held = {v.path for v in variables}
        # Keras applies decoupled weight decay with the unscaled rate: held variables take theirs in update_step.
        self._held_decayed = {v.path for v in variables if self.weight_decay and self._use_weight_decay(v)}
        self.exclude_from_weight_decay(var_list=list(variables))
        self.held_scale = keras.Variable(0.0, trainable=False, name="held_lr_scale", dtype="float32")
        self.free_scale = keras.Variable(1.0, trainable=False, name="free_lr_scale", dtype="float32")

    def _path(self, variable) -> str:
        # update_step may receive the backend variable (tf.distribute), so the path is looked up by index.
        return private.optimizer_trainable_variables(self)[private.variable_index(self, variable)].path

    def average_statistics(self, model: keras.Model) -> None:
        if self.built:
            raise ValueError("average_statistics must be called before the optimizer is built (before fit).")
        self._statistics = batchnorm_statistics(model)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        if self.use_ema and not self._statistic_averages and self._statistics:
            self._statistic_averages = [self.add_variable_from_reference(v, name="average")
                                        for v in self._statistics]
        # Keras builds the optimizer while tracing the first train step when no strategy is set: the copy must run
        # once, now, not as an op of the traced step (it would reset the averages every step).
        with _eagerly():
            for variable, average in self.averaged_pairs():
                average.assign(variable)

    def averaged_pairs(self) -> list[tuple]:
        """(model variable, its average) for every averaged variable: trainable weights, then BN statistics."""
        if not self.use_ema:
            return []
        pairs = [(v, a) for v, a in zip(private.optimizer_trainable_variables(self), private.ema_variables(self))
                 if a is not None]
        return pairs + list(zip(self._statistics, self._statistic_averages))

    def update_step(self, gradient, variable, learning_rate):
        if self._held:
            path = self._path(variable)
            scale = self.held_scale if path in self._held else self.free_scale
            learning_rate = ops.cast(learning_rate, variable.dtype) * ops.cast(scale, variable.dtype)
            if path in self._held_decayed:  # decoupled decay at the scaled rate (0 while held: exactly none)
                self.assign_sub(variable, variable * ops.cast(self.weight_decay, variable.dtype) * learning_rate)
        super().update_step(self._with_l2(gradient, variable), variable, learning_rate)

    def _with_l2(self, gradient, variable):
        if not self.l2:
            return gradient
        path = self._path(variable)
        if not L2_EXCLUDED.match(path):
            return gradient + ops.cast(self.l2, gradient.dtype) * ops.cast(variable, gradient.dtype)
        return gradient

    def _update_model_variables_moving_average(self, trainable_variables):
        if not self.use_ema:
            return
        n = ops.cast(self.iterations, "float32") + 1.0  # Keras counts the step after this call
        decay = ops.minimum(self.ema_momentum, (1.0 + n) / (10.0 + n))
        for variable, average in self.averaged_pairs():
            d = ops.cast(decay, average.dtype)
            update = d * average + (1 - d) * ops.cast(variable, average.dtype)
            if variable.path in self._held:  # a held variable's average stays its (unchanged) value, bit for bit
                update = ops.where(self.held_scale > 0, update, average)
            average.assign(update)

    def swap_averages(self) -> None:
        """Exchange the model's variables with their averages (evaluation runs on the averages)."""
        for variable, average in self.averaged_pairs():
            # x * 1 computes a new buffer; a plain read can alias the variable's buffer (TensorFlow eager, torch),
            # and the next assign would then overwrite the value being saved.
            value = ops.multiply(ops.convert_to_tensor(variable), ops.cast(1, variable.dtype))
            variable.assign(average)
            average.assign(value)

    def finalize_variable_values(self, var_list):
        if self.defer_finalize:
            return
        for variable, average in self.averaged_pairs():
            variable.assign(average)

    def get_config(self):
        return {**super().get_config(), "l2": self.l2}


class _TF1RMSprop(keras.optimizers.RMSprop):
    """Keras RMSprop (not centered) with the mean-square start of ``tf.compat.v1.train.RMSPropOptimizer``.

    The official optimizer starts the mean square at 1; Keras starts it at 0, so its first updates are
    ~lr * sign(g) / sqrt(1 - rho), about 3x lr for every weight at once. Starting at 1 adds rho**t to Keras'
    accumulator after t updates; that term is added here in the update itself (the accumulator variable stays
    Keras', so checkpoints and distribution behave as Keras'). Written by hand because Keras has no option for it.
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
class RMSpropEMA(_OfficialRecipe, _TF1RMSprop):
    """The official optimizer: TF1 RMSProp with L2 weight decay and the official EMA."""


@keras.saving.register_keras_serializable(package="efficientnet_keras")
class AdamWEMA(_OfficialRecipe, keras.optimizers.AdamW):
    """Keras AdamW (decoupled weight decay) with the official EMA (and optional L2)."""


def ours(optimizer):
    """Our optimizer, also when Keras wrapped it (LossScaleOptimizer under float16)."""
    return getattr(optimizer, "inner_optimizer", optimizer)


class Unfreeze(keras.callbacks.Callback):
    """The two-phase fine-tuning schedule of Keras' transfer-learning guide on an optimizer with held variables:
    before ``epoch`` the held variables do not move and the others train at the full rate; from ``epoch`` on
    every variable trains at ``lr_scale`` x the rate. Set from the epoch number, so a resumed run is in the right
    phase."""

    def __init__(self, epoch: int, lr_scale: float, verbose: int = 1):
        super().__init__()
        self.epoch, self.lr_scale, self.verbose = epoch, lr_scale, verbose

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = ours(self.model.optimizer)
        after = epoch >= self.epoch
        optimizer.held_scale.assign(self.lr_scale if after else 0.0)
        optimizer.free_scale.assign(self.lr_scale if after else 1.0)
        if epoch == self.epoch and self.verbose:
            print(f"\nUnfrozen from epoch {epoch + 1}: every layer but BatchNorm trains at {self.lr_scale:g} x the "
                  "learning rate.")


class SwapEMA(keras.callbacks.Callback):
    """Evaluation and prediction inside ``fit`` run on the averaged weights and BatchNorm statistics; training
    continues on the raw ones (Keras' SwapEMAWeights swaps only the trainable weights)."""

    def _swap(self):
        ours(self.model.optimizer).swap_averages()

    def on_test_begin(self, logs=None):
        self._swap()

    def on_test_end(self, logs=None):
        self._swap()
