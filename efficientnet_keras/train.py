"""Train any EfficientNet with the EfficientNetV2 recipe and progressive learning, on Model.fit.

    python -m efficientnet_keras.train                                   # embedded digits, V2-B0, progressive
    python -m efficientnet_keras.train --model=EfficientNetV2S --dataset=imagenet2012 \
        --data_dir=gs://bucket/tfds --batch_size=4096 --epochs=350 --strategy=tpu --model_dir=gs://bucket/run1
    python -m efficientnet_keras.train --mode=eval --model_dir=runs/digits

Recipe defaults and where they come from (EfficientNetV2 paper, section 5.1, and google/automl efficientnetv2
``hparams.py`` / ``effnetv2_configs.py``): RMSProp with decay 0.9, momentum 0.9, epsilon 0.001; learning rate
0.256 at batch 4096 (0.016 per 256 images) warmed up over 5 epochs, then x0.97 every 2.4 epochs; weight decay
1e-5; EMA of weights 0.9999, evaluated with the EMA weights; label smoothing 0.1; stochastic depth with
survival 0.8 (rate 0.2); BatchNorm momentum 0.99.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import os
import shutil
from typing import Any

import keras
from keras import ops

__all__ = ["TrainConfig", "train", "evaluate", "WarmupExponentialDecay", "RMSpropEMA", "AdamWEMA"]


@dataclasses.dataclass
class TrainConfig:
    model: str = "EfficientNetV2B0"
    blocks: str | None = None  # comma-separated block-args strings: a custom network in the model's family
    dataset: str = "digits"
    data_dir: str | None = None
    model_dir: str = "runs/default"
    batch_size: int = 64  # global batch, split over replicas
    max_batch_scale: float = 1.0  # > 1: larger batches at smaller images, up to this factor (see scale_batch)
    epochs: int = 8
    progressive: bool = True
    num_stages: int = 4
    image_size_min: int | None = None  # default: the variant's progressive preset
    image_size_max: int | None = None
    eval_size: int | None = None  # default: the last stage's size (the variant's own size for V2-S/M/L)
    crop_fraction: float = 0.875
    strategy: str = "auto"
    cpu_devices: int = 0  # with strategy=mirrored: split the CPU into this many logical devices
    mixed_precision: str = "auto"
    jit_compile: str = "auto"
    resume: bool = False
    overwrite: bool = False
    eval_every: int = 1
    seed: int = 0
    deterministic: bool = False
    train_examples: int | None = None  # use only the first N training examples (quick runs)
    eval_examples: int | None = None
    # The paper's recipe; each is a flag of the CLI.
    optimizer: str = "rmsprop"  # rmsprop (the paper's) or adamw (often better for short runs and fine-tuning)
    learning_rate_per_256: float = 0.016
    warmup_epochs: float | None = None  # default min(5, epochs / 10)
    lr_decay_factor: float = 0.97
    lr_decay_epochs: float = 2.4
    weight_decay: float = 1e-5
    ema_decay: float = 0.9999  # 0 disables
    label_smoothing: float = 0.1
    stochastic_depth: float = 0.2
    dropout: float | None = None  # default: the progressive preset's range (fixed: the variant's own rate)
    randaug_max: float | None = None  # default: the preset's range, e.g. 5 -> 15 (0 disables RandAugment)
    bn_momentum: float = 0.99
    weights: str | None = None  # initial weights: None, "imagenet" (backbone only) or a path
    verbose: int = 1


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
        for var, average in zip(trainable_variables, self._model_variables_moving_average):
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
        index = self._get_variable_index(variable)
        velocity = self._velocities[index]
        self.assign(velocity, self.rho * velocity + (1 - self.rho) * ops.square(gradient))
        initial = ops.power(ops.cast(self.rho, variable.dtype), ops.cast(self.iterations + 1, variable.dtype))
        increment = lr * gradient / ops.sqrt(velocity + initial + self.epsilon)
        if self.momentum > 0:
            momentum = self._momentums[index]
            self.assign(momentum, self.momentum * momentum + increment)
            increment = momentum
        self.assign_sub(variable, increment)


@keras.saving.register_keras_serializable(package="efficientnet_keras")
class AdamWEMA(_EMAWarmup, keras.optimizers.AdamW):
    """Keras AdamW with the same EMA warm-up."""


def _check_config(c: TrainConfig) -> None:
    from efficientnet_keras.models import get_variant

    get_variant(c.model)  # unknown model: ValueError naming the choices
    if c.blocks:
        from efficientnet_keras.block_args import decode_all

        decode_all(b.strip() for b in c.blocks.split(","))  # a bad string: ValueError naming the token
    for name in ("batch_size", "epochs", "num_stages", "eval_every"):
        if getattr(c, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(c, name)}.")
    for name in ("image_size_min", "image_size_max", "eval_size"):
        value = getattr(c, name)
        if value is not None and value < 32:
            raise ValueError(f"{name}={value} is smaller than the network allows (32 px: it halves the image 5 times).")
    if c.image_size_min and c.image_size_max and c.image_size_min > c.image_size_max:
        raise ValueError(f"image_size_min={c.image_size_min} is larger than image_size_max={c.image_size_max}.")
    if c.progressive and c.epochs < c.num_stages:
        raise ValueError(f"Progressive learning with {c.num_stages} stages needs epochs >= {c.num_stages}, "
                         f"got {c.epochs}.")
    if not 0 < c.crop_fraction <= 1:
        raise ValueError(f"crop_fraction must be in (0, 1], got {c.crop_fraction}.")
    if c.optimizer not in ("rmsprop", "adamw"):
        raise ValueError(f"optimizer must be rmsprop or adamw, got {c.optimizer!r}.")
    if c.max_batch_scale < 1:
        raise ValueError(f"max_batch_scale must be >= 1 (1 keeps the batch fixed), got {c.max_batch_scale}.")
    if not 0 <= c.ema_decay < 1:
        raise ValueError(f"ema_decay must be in [0, 1), got {c.ema_decay}.")


def _stages(c: TrainConfig, variant):
    from efficientnet_keras.progressive import preset_for

    max_default = variant.train_resolution or variant.resolution
    preset = preset_for(variant.function, max_default, variant.dropout)
    lo = c.image_size_min or min(preset.image_size[0], c.image_size_max or preset.image_size[0])
    hi = c.image_size_max or max(preset.image_size[1], lo)
    preset = dataclasses.replace(preset, image_size=(lo, hi), num_stages=c.num_stages if c.progressive else 1,
                                 stochastic_depth=(c.stochastic_depth, c.stochastic_depth))
    if c.dropout is not None:
        preset = dataclasses.replace(preset, dropout=(c.dropout, c.dropout))
    if c.randaug_max is not None:
        preset = dataclasses.replace(preset, randaug_magnitude=(min(preset.randaug_magnitude[0], c.randaug_max),
                                                                c.randaug_max))
    stages = preset.stages()
    if not c.progressive:  # fixed-size training uses the last stage's (strongest) settings throughout
        last = dataclasses.replace(preset, num_stages=4).stages()[-1]
        stages = [dataclasses.replace(last, image_size=hi)]
    return stages


def _fit_segments(c: TrainConfig, stages, num_train: int) -> list[tuple[int, int, int, int, int]]:
    """Runs of consecutive epochs with the same batch: (first epoch, end epoch, batch, steps per epoch, first
    optimizer step)."""
    from efficientnet_keras.progressive import stage_for_epoch

    batches = [stages[stage_for_epoch(e, c.epochs, len(stages))].batch_size or c.batch_size for e in range(c.epochs)]
    segments, epoch, step = [], 0, 0
    for batch, group in itertools.groupby(batches):
        epochs, steps = len(list(group)), num_train // batch
        segments.append((epoch, epoch + epochs, batch, steps, step))
        epoch, step = epoch + epochs, step + epochs * steps
    return segments


RUN_FILE = "run_config.json"
FINAL_MODEL = "model.keras"


def _prepare_model_dir(c: TrainConfig, num_classes: int) -> dict[str, Any]:
    """Refuse to mix runs: another model's checkpoint, or an existing run without --resume/--overwrite."""
    identity = {"model": c.model, "blocks": c.blocks, "dataset": c.dataset, "num_classes": num_classes, "epochs": c.epochs,
                "progressive": c.progressive, "num_stages": c.num_stages, "seed": c.seed,
                "batch_size": c.batch_size, "max_batch_scale": c.max_batch_scale}
    path = os.path.join(c.model_dir, RUN_FILE)
    if os.path.exists(path):
        with open(path) as f:
            previous = json.load(f)
        if c.overwrite:
            shutil.rmtree(c.model_dir)
        else:
            # Keys that runs of older versions did not record compare equal to this run's.
            different = {k: (previous.get(k, v), v) for k, v in identity.items() if previous.get(k, v) != v}
            if different:
                raise ValueError(
                    f"model_dir {c.model_dir!r} holds a run of another configuration "
                    + ", ".join(f"{k}: {old!r} there vs {new!r} now" for k, (old, new) in different.items())
                    + ". Use another --model_dir, or --overwrite to delete it."
                )
            if not c.resume:
                raise ValueError(
                    f"model_dir {c.model_dir!r} already holds this run. Pass --resume to continue it (or to re-run "
                    "its final evaluation), or --overwrite to start over; nothing was changed."
                )
    elif os.path.isdir(c.model_dir) and os.listdir(c.model_dir) and not c.overwrite:
        raise ValueError(f"model_dir {c.model_dir!r} is not empty and holds no run of ours; choose another folder.")
    os.makedirs(c.model_dir, exist_ok=True)
    with open(path, "w") as f:
        json.dump(identity, f, indent=2)
    return identity


def train(config: TrainConfig, callbacks: list | None = None) -> dict[str, Any]:
    """Run one training job; return the history, the final evaluation and the saved model's path.

    ``callbacks`` are added after the built-in ones (progressive learning, EMA swap, backup, logs).
    """
    import tensorflow as tf

    from efficientnet_keras import data as data_lib
    from efficientnet_keras import distribute
    from efficientnet_keras.layers import set_regularization
    from efficientnet_keras.models import create_model, get_variant
    from efficientnet_keras.progressive import PRESETS, ProgressiveLearning, scale_batch

    c = config
    _check_config(c)
    variant = get_variant(c.model)
    if c.blocks:
        if c.weights:
            raise ValueError("A custom --blocks network has no pretrained weights; drop --weights.")
        variant = dataclasses.replace(variant, blocks=tuple(b.strip() for b in c.blocks.split(",")),
                                      name=f"{variant.name}-custom")
    kind = distribute.device_kind(c.strategy)
    strategy = distribute.make_strategy(c.strategy, c.cpu_devices)
    replicas = strategy.num_replicas_in_sync if strategy is not None else 1
    if c.batch_size % replicas:
        raise ValueError(f"batch_size={c.batch_size} is not divisible by the {replicas} replicas of the "
                         f"{c.strategy!r} strategy; use a multiple of {replicas}.")
    train_source, eval_source, info = data_lib.load_source(c.dataset, c.data_dir)
    # Only the chief writes model_dir (which all workers share); the other workers of a multi-worker cluster
    # restore from its backup and write nothing. They wait until the chief has prepared model_dir, and stop
    # if it refused it.
    chief = distribute.is_chief(strategy)
    refused = None
    if chief:
        try:
            _prepare_model_dir(c, info.num_classes)
        except ValueError as e:
            refused = e
    if not distribute.all_workers_ok(strategy, refused is None):
        raise refused or ValueError(f"The chief worker refused model_dir {c.model_dir!r}; its output says why.")
    keras.mixed_precision.set_global_policy(distribute.resolve_mixed_precision(c.mixed_precision, kind))
    keras.utils.set_random_seed(c.seed)
    if c.deterministic and keras.backend.backend() == "tensorflow":
        tf.config.experimental.enable_op_determinism()

    stages = _stages(c, variant)
    num_train = min(info.num_train, c.train_examples or info.num_train)
    steps_per_epoch = num_train // c.batch_size
    if steps_per_epoch < 1:
        raise ValueError(f"batch_size={c.batch_size} is larger than the {num_train} training examples.")
    if c.max_batch_scale > 1:
        stages = scale_batch(stages, c.batch_size, c.max_batch_scale, multiple=replicas)
        for i, stage in enumerate(stages):
            if stage.batch_size > num_train:
                raise ValueError(f"Stage {i + 1}'s batch of {stage.batch_size} (max_batch_scale={c.max_batch_scale:g}) "
                                 f"is larger than the {num_train} training examples; lower max_batch_scale.")
    segments = _fit_segments(c, stages, num_train)
    # The paper evaluates V2-S/M/L at their own (larger) sizes; otherwise at the last stage's size.
    paper_sizes = variant.function in PRESETS and not c.image_size_max
    eval_size = c.eval_size or (variant.resolution if paper_sizes else stages[-1].image_size)
    state = data_lib.StageState()
    augmenters = data_lib.StageAugmenters(stages, c.seed)
    train_ds = data_lib.make_train_dataset(data_lib.limit(train_source, c.train_examples), info, stages, state,
                                           c.batch_size, seed=c.seed, deterministic=c.deterministic,
                                           augmenters=augmenters)
    eval_ds = data_lib.make_eval_dataset(data_lib.limit(eval_source, c.eval_examples), info, eval_size,
                                         c.batch_size, c.crop_fraction)

    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    with scope:
        model = create_model(variant, weights=None if c.weights == "imagenet" else c.weights,
                             input_shape=(None, None, 3), classes=info.num_classes, classifier_activation=None,
                             dropout_rate=stages[0].dropout, drop_connect_rate=c.stochastic_depth)
        if c.weights == "imagenet":
            _load_backbone(model, variant)
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = c.bn_momentum
                layer.synchronized = replicas > 1 and keras.backend.backend() == "tensorflow"
        set_regularization(model, dropout=stages[0].dropout, stochastic_depth=stages[0].stochastic_depth)
        warmup = c.warmup_epochs if c.warmup_epochs is not None else min(5.0, c.epochs / 10)
        schedule = WarmupExponentialDecay(
            c.learning_rate_per_256 * c.batch_size / 256, int(warmup * steps_per_epoch),
            int(c.lr_decay_epochs * steps_per_epoch), c.lr_decay_factor,
            segments=[[first_step, steps_per_epoch / steps, batch / c.batch_size]
                      for _, _, batch, steps, first_step in segments] if len(segments) > 1 else None)
        ema = dict(weight_decay=c.weight_decay or None, use_ema=c.ema_decay > 0, ema_momentum=c.ema_decay or 0.99)
        if c.optimizer == "rmsprop":
            optimizer = RMSpropEMA(learning_rate=schedule, rho=0.9, momentum=0.9, epsilon=1e-3, centered=False, **ema)
        else:
            optimizer = AdamWEMA(learning_rate=schedule, **ema)
        optimizer.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
        model.compile(
            optimizer=optimizer,
            loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=c.label_smoothing),
            metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
            jit_compile=distribute.resolve_jit_compile(c.jit_compile, kind),
        )

    extra = list(callbacks or [])
    callbacks = [ProgressiveLearning(stages, c.epochs, state, augmenters, seed=c.seed, verbose=c.verbose)]
    if c.ema_decay > 0:
        # Validation sees the EMA weights; between epochs the model holds the raw ones, which the backup saves.
        callbacks.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=False))
    backup = os.path.join(c.model_dir, "backup")
    if chief:
        callbacks += [
            keras.callbacks.BackupAndRestore(backup, delete_checkpoint=False),
            keras.callbacks.CSVLogger(os.path.join(c.model_dir, "history.csv"), append=True),
            keras.callbacks.TensorBoard(os.path.join(c.model_dir, "logs")),
        ]
    else:
        callbacks.append(_RestoreOnly(backup, delete_checkpoint=False))
    callbacks += extra
    # One fit() per batch size (one in all unless max_batch_scale > 1): Keras 3.15 keeps one step count for all
    # epochs of a fit(). Epoch numbers, callbacks, logs and the backup run on across the calls as one run.
    optimizer.defer_finalize = True
    history: dict[str, list] = {}
    for first_epoch, end_epoch, _, steps, _ in segments:
        # Our own CallbackList, so that progress bars count epochs of the whole run and know each epoch's steps.
        callback_list = keras.callbacks.CallbackList(callbacks, add_history=True, add_progbar=c.verbose != 0,
                                                     verbose=c.verbose, epochs=c.epochs, steps=steps, model=model)
        # The epoch's exact length, stated: where a dataset's length is unknown, Keras 3.15 learns it from the first
        # epoch's end, and each epoch end also counts one optimizer step that never happened (shifting the learning
        # rate and EMA schedules). A wrong length fails loudly here instead of truncating epochs.
        epoch_ds = train_ds.apply(tf.data.experimental.assert_cardinality(steps))
        model.fit(epoch_ds, initial_epoch=first_epoch, epochs=end_epoch, validation_data=eval_ds,
                  validation_freq=c.eval_every, callbacks=callback_list, shuffle=False, verbose=c.verbose)
        for key, values in model.history.history.items():
            history.setdefault(key, []).extend(values)
        model._initial_epoch = None  # a restored start epoch applies to one fit(); Keras never clears it
        if model.stop_training:
            break
    optimizer.defer_finalize = False
    optimizer.finalize_variable_values(model.trainable_weights)  # the EMA weights, for evaluation and saving
    results = model.evaluate(eval_ds, return_dict=True, verbose=0)
    model_path = os.path.join(c.model_dir, FINAL_MODEL)
    if chief:
        model.save(model_path)
    # eval_size, crop_fraction and class_names are what export.load_servable serves the model with.
    summary = {"eval": {k: float(v) for k, v in results.items()}, "eval_size": eval_size,
               "model_path": model_path if chief else None,
               "crop_fraction": c.crop_fraction, "class_names": list(info.class_names),
               "stages": [dataclasses.asdict(s) for s in stages], "replicas": replicas,
               "dtype_policy": keras.mixed_precision.global_policy().name}
    if chief:
        with open(os.path.join(c.model_dir, "results.json"), "w") as f:
            json.dump(summary, f, indent=2)
    summary["history"] = history
    summary["model"] = model
    return summary


class _RestoreOnly(keras.callbacks.BackupAndRestore):
    """A non-chief worker's backup: it resumes from the chief's files (weights are identical on all workers)
    and saves nothing, so workers never write the same files. It restores at the start of the run only: when a
    later fit() of the run begins, the chief may still be writing its backup."""

    _restored = False

    def on_train_begin(self, logs=None):
        if not self._restored:
            super().on_train_begin(logs)
            self._restored = True

    def _save_model(self):
        pass


def evaluate(model_dir: str, dataset: str | None = None, data_dir: str | None = None, batch_size: int = 64,
             eval_size: int | None = None) -> dict[str, float]:
    """Evaluate a finished run's saved model on its dataset's evaluation split (central crop)."""
    from efficientnet_keras import data as data_lib

    path = os.path.join(model_dir, FINAL_MODEL)
    if not os.path.exists(path):
        raise ValueError(f"No trained model at {path}; train first (python -m efficientnet_keras.train).")
    with open(os.path.join(model_dir, RUN_FILE)) as f:
        run = json.load(f)
    with open(os.path.join(model_dir, "results.json")) as f:
        size = eval_size or json.load(f)["eval_size"]
    _, eval_source, info = data_lib.load_source(dataset or run["dataset"], data_dir)
    model = keras.saving.load_model(path)
    return model.evaluate(data_lib.make_eval_dataset(eval_source, info, size, batch_size), return_dict=True,
                          verbose=0)


def _load_backbone(model, variant) -> None:
    """ImageNet weights for everything but the classifier (fine-tuning on another class count)."""
    from efficientnet_keras.models import create_model

    pretrained = create_model(variant, weights="imagenet", include_top=False, input_shape=(None, None, 3))
    for layer in pretrained.layers:
        if layer.weights:
            model.get_layer(layer.name).set_weights(layer.get_weights())


# ---------------------------------------------------------------------------------------------- CLI

_HELP = {
    "model": "Variant, e.g. EfficientNetV2S.",
    "blocks": "Custom network: comma-separated block-args strings (the model's family and coefficients).",
    "dataset": "Embedded name (digits), fashion_mnist, a tfds name, or an image-folder directory.",
    "data_dir": "tfds data_dir (gs://... on TPU).",
    "model_dir": "Run folder: checkpoints, logs, final model.",
    "batch_size": "Global batch size (split over replicas).",
    "max_batch_scale": "Larger batches at small image sizes: stage batch = batch_size x min(this, (max size / "
                       "size)^2), learning rate scaled alike; 1 keeps the batch fixed.",
    "progressive": "Progressive learning (image size and regularization grow per stage).",
    "strategy": "auto|tpu|mirrored|multiworker (cluster from TF_CONFIG)|default.",
    "cpu_devices": "With --strategy=mirrored: split the CPU into this many logical devices.",
    "mixed_precision": "auto|float32|bfloat16|float16 (auto: bfloat16 on TPU, float16 on GPU, float32 on CPU).",
    "jit_compile": "auto|true|false (auto: XLA on TPU/GPU, not on CPU).",
    "resume": "Continue the run in --model_dir from its last epoch.",
    "overwrite": "Delete --model_dir's previous run first.",
    "eval_every": "Evaluate every N epochs.",
    "deterministic": "Reproducible input pipeline and ops (slower).",
    "weights": "Initial weights: a file path, or imagenet for the backbone.",
}


def _define_flags():
    from absl import flags

    flags.DEFINE_enum("mode", "train", ["train", "eval"], "Train, or evaluate a finished run in --model_dir.")
    for field in dataclasses.fields(TrainConfig):
        default, help_ = field.default, _HELP.get(field.name, field.name.replace("_", " ") + ".")
        kind = field.type if isinstance(field.type, str) else field.type.__name__
        if kind.startswith("bool"):
            flags.DEFINE_boolean(field.name, default, help_)
        elif kind.startswith("int"):
            flags.DEFINE_integer(field.name, default, help_)
        elif kind.startswith("float"):
            flags.DEFINE_float(field.name, default, help_)
        else:
            flags.DEFINE_string(field.name, default, help_)


def main(argv) -> None:
    from absl import app, flags

    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    values = flags.FLAGS.flag_values_dict()
    try:
        if values["mode"] == "eval":
            results = evaluate(values["model_dir"], data_dir=values["data_dir"], batch_size=values["batch_size"],
                               eval_size=values["eval_size"])
        else:
            config = TrainConfig(**{f.name: values[f.name] for f in dataclasses.fields(TrainConfig)})
            summary = train(config)
            results = summary["eval"]
            if summary["model_path"]:
                print(f"Saved {summary['model_path']}")
    except ValueError as e:  # configuration errors: one clear line, no traceback
        raise SystemExit(f"error: {e}") from None
    print("Evaluation: " + ", ".join(f"{k} {v:.4f}" for k, v in results.items()))


def run() -> None:
    from absl import app

    _define_flags()
    app.run(main)


if __name__ == "__main__":
    run()
