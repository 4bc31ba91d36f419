"""Train any EfficientNet with the EfficientNetV2 recipe and progressive learning, on Model.fit.

The recipe is the official code's (google/automl efficientnetv2 ``hparams.py``, ``effnetv2_configs.py``,
``datasets.py``, ``main.py``); ``recipes.py`` holds the presets (``--recipe=imagenet|finetune``) with the source
of every value: RMSProp with decay 0.9, momentum 0.9, epsilon 0.001; learning rate 0.016 per 256 images warmed up
over 5 epochs, then x0.97 every 2.4 epochs counted from step 0; L2 weight decay 1e-5 in the gradient (not on
bias/gamma/beta); EMA 0.9999 of the weights and BatchNorm statistics, evaluated and saved; label smoothing 0.1;
stochastic depth with survival 0.8; BatchNorm momentum 0.9 (``hparams.py``; the paper says 0.99).

``train()`` is a sequence of steps, each a function below: check the config, pick devices, open the data, claim
the run folder, plan stages and epochs, build the datasets and the model, fit, and finish (evaluate, save).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import time
from typing import Any

import keras
import tensorflow as tf

from efficientnet_keras import _keras_private as private
from efficientnet_keras.layers import set_regularization
from efficientnet_keras.builder import NORMALIZATION_LAYER
from efficientnet_keras.models import create_model
from efficientnet_keras.network import get_preprocessing
from efficientnet_keras.training import data as data_lib
from efficientnet_keras.training import distribute
from efficientnet_keras.training import freeze as freeze_lib
from efficientnet_keras.training import report, sources
from efficientnet_keras.training.augment import StageAugmenters
from efficientnet_keras.training.config import (TrainConfig, check_config, check_labels, cover_min_examples,
                                                train_examples_per_epoch, variant_of)
from efficientnet_keras.training.evaluation import end_of_data_is_expected, evaluate
from efficientnet_keras.training.losses import OUTPUT_ACTIVATION, make_loss, make_metrics
from efficientnet_keras.training.optimizers import (AdamWEMA, RMSpropEMA, SwapEMA, Unfreeze, WarmupExponentialDecay,
                                                   ours)
from efficientnet_keras.training.progressive import ProgressiveLearning, preset_for, scale_batch, stage_for_epoch
from efficientnet_keras.training.recipes import default_warmup, official_train_size, resolve
from efficientnet_keras.training.claim import claim_model_dir
from efficientnet_keras.training.rundir import FINAL_MODEL, RESULTS_FILE, Backup, HistoryCSV, RunDir
from efficientnet_keras.training.skipped import SkippedImagesLog
from efficientnet_keras.weights.convert import assign_layers, layer_values
from efficientnet_keras.weights.load import TIMM_PREFIX, WEIGHT_SETS

__all__ = ["TrainConfig", "train", "evaluate", "inference_model"]


def _stages(c: TrainConfig, variant):
    max_default = variant.train_resolution or variant.resolution
    if c.recipe == "finetune":  # ImagenetFt train.isize=1.0: train at the evaluation size (main.py: // 16 * 16)
        max_default = variant.resolution // 16 * 16
    elif c.recipe == "imagenet" and not c.blocks:
        max_default = official_train_size(variant.function, variant.resolution) or max_default
    preset = preset_for(variant.function, max_default, variant.dropout, c.progression)
    lo = c.image_size_min or min(preset.image_size[0], c.image_size_max or preset.image_size[0])
    hi = c.image_size_max or max(preset.image_size[1], lo)
    preset = dataclasses.replace(preset, image_size=(lo, hi), num_stages=c.num_stages if c.progressive else 1,
                                 stochastic_depth=(c.stochastic_depth, c.stochastic_depth))
    if c.dropout is not None:
        preset = dataclasses.replace(preset, dropout=(c.dropout, c.dropout))
    randaug_max = c.randaug_max if c.augment == "randaugment" else 0.0
    for name, value in (("randaug_magnitude", randaug_max), ("mixup_alpha", c.mixup_max),
                        ("cutmix_alpha", c.cutmix_max)):
        if value is not None:
            preset = dataclasses.replace(preset, **{name: (min(getattr(preset, name)[0], value), value)})
    if not c.adaptive_regularization:  # the paper's "w/o adaptive": every stage regularized as the last
        preset = dataclasses.replace(preset, **{name: (getattr(preset, name)[1],) * 2 for name in (
            "randaug_magnitude", "mixup_alpha", "cutmix_alpha", "dropout", "stochastic_depth")})
    # One stage (fixed-size training) takes the last stage's settings at the final size.
    return preset.stages()


def _fit_segments(c: TrainConfig, stages, num_train: int) -> list[tuple[int, int, int, int, int]]:
    """Runs of consecutive epochs with the same batch: (first epoch, end epoch, batch, steps per epoch, first
    optimizer step)."""
    batches = [stages[stage_for_epoch(e, c.epochs, len(stages))].batch_size or c.batch_size for e in range(c.epochs)]
    segments, epoch, step = [], 0, 0
    for batch, group in itertools.groupby(batches):
        epochs, steps = len(list(group)), num_train // batch
        segments.append((epoch, epoch + epochs, batch, steps, step))
        epoch, step = epoch + epochs, step + epochs * steps
    return segments


# ---------------------------------------------------------------------------------------------- run record


# ---------------------------------------------------------------------------------------------- steps


@dataclasses.dataclass
class _Plan:
    stages: list
    segments: list
    num_train: int
    steps_per_epoch: int
    eval_size: int
    preprocessing: Any = None  # transforms.Preprocessing of the variant


def _plan(c: TrainConfig, variant, info, replicas: int) -> _Plan:
    stages = _stages(c, variant)
    num_train = train_examples_per_epoch(c, info)
    steps_per_epoch = num_train // c.batch_size
    if steps_per_epoch < 1:
        raise ValueError(f"batch_size={c.batch_size} is larger than the {num_train} training examples.")
    if c.max_batch_scale > 1:
        stages = scale_batch(stages, c.batch_size, c.max_batch_scale, multiple=replicas)
        for i, stage in enumerate(stages):
            if stage.batch_size > num_train:
                raise ValueError(f"Stage {i + 1}'s batch of {stage.batch_size} (max_batch_scale={c.max_batch_scale:g}) "
                                 f"is larger than the {num_train} training examples; lower max_batch_scale.")
    # The official code evaluates every config at its eval isize (effnetv2_configs.py: V2-B0 224 ... V2-S 384, V2-M
    # 480; V1 its resolution; main.py input_image_size = eval_size in eval mode), the variant's resolution; a run
    # that chooses its final training size evaluates at that size.
    eval_size = c.eval_size or (stages[-1].image_size if c.image_size_max else variant.resolution)
    # Training on whole images (the fine-tuning recipe) evaluates on whole images, as preprocess_for_finetune.
    preprocessing = variant.preprocessing.whole_image() if c.train_crop == "whole" else variant.preprocessing
    return _Plan(stages, _fit_segments(c, stages, num_train), num_train, steps_per_epoch, eval_size, preprocessing)


def _distribute(strategy, make):
    """``make(input_context)`` on each input pipeline under a strategy (per-host input, per-replica batches);
    ``make(None)`` without one."""
    if strategy is None or strategy.num_replicas_in_sync == 1:
        return make(None)
    return strategy.distribute_datasets_from_function(make)


def _build_model(c: TrainConfig, variant, plan: _Plan, num_classes: int, replicas: int):
    first = plan.stages[0]
    # Pretrained weights (a set or timm's) give the backbone; the classifier is new, for this dataset's classes.
    weight_set = c.weights if c.weights in WEIGHT_SETS or str(c.weights).startswith(TIMM_PREFIX) else None
    # A CoAtNet's relative position tables cover the largest image it will see: every stage and the evaluation.
    largest = max([s.image_size for s in plan.stages] + [plan.eval_size])
    backbone = _backbone(variant, weight_set, largest) if weight_set else None
    model = create_model(variant, weights=None if weight_set else c.weights, input_shape=(None, None, 3),
                         classes=num_classes, classifier_activation=None, dropout_rate=first.dropout,
                         drop_connect_rate=c.stochastic_depth, max_input_size=largest,
                         normalization=get_preprocessing(backbone).normalization if backbone else None)
    if backbone is not None:
        _load_backbone(model, backbone, weight_set)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = c.bn_momentum
            # Statistics over every replica's batch. The official TpuBatchNormalization (utils.py) averages within
            # groups of min(8, shards) cores: the same on up to 8 replicas (a v2-8 / v3-8 TPU, one GPU host); on a
            # pod slice, ours normalizes over all replicas (Keras' synchronized BatchNorm has no groups).
            layer.synchronized = replicas > 1 and keras.backend.backend() == "tensorflow"
    set_regularization(model, dropout=first.dropout, stochastic_depth=first.stochastic_depth)
    return model


def _freeze(c: TrainConfig, model) -> list:
    """Apply --freeze before compile (frozen weights leave the optimizer and the EMA); with --unfreeze_after, the
    weights the optimizer holds still until then."""
    if not c.freeze:
        return []
    if c.unfreeze_after:
        return freeze_lib.hold(model, c.freeze)
    freeze_lib.freeze(model, c.freeze)
    return []


def _compile(c: TrainConfig, model, plan: _Plan, kind: str, held: list) -> None:
    warmup = c.warmup_epochs if c.warmup_epochs is not None else default_warmup(c.recipe, c.epochs)
    steps = plan.steps_per_epoch
    schedule = WarmupExponentialDecay(
        c.learning_rate_per_256 * c.batch_size / 256, int(warmup * steps), c.lr_decay_epochs * steps,
        c.lr_decay_factor, segments=[[first_step, steps / seg_steps, batch / c.batch_size]
                                     for _, _, batch, seg_steps, first_step in plan.segments]
        if len(plan.segments) > 1 else None, decay=c.lr_schedule, total_steps=c.epochs * steps, minimum=c.lr_min)
    mode = c.weight_decay_mode if c.weight_decay_mode != "auto" else (
        "l2" if c.optimizer == "rmsprop" else "decoupled")
    common = dict(l2=c.weight_decay if mode == "l2" else 0.0,
                  weight_decay=(c.weight_decay or None) if mode == "decoupled" else None,
                  use_ema=c.ema_decay > 0, ema_momentum=c.ema_decay or 0.99,
                  global_clipnorm=c.gradient_clip or None)  # main.py gclip: tf.clip_by_global_norm
    if c.optimizer == "rmsprop":  # hparams.py / utils.build_optimizer: decay 0.9, momentum 0.9, epsilon 0.001
        optimizer = RMSpropEMA(learning_rate=schedule, rho=0.9, momentum=0.9, epsilon=1e-3, centered=False, **common)
    else:
        optimizer = AdamWEMA(learning_rate=schedule, **common)
    optimizer.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
    if held:
        optimizer.hold(held)
    model.compile(optimizer=optimizer, loss=make_loss(c.loss, c.label_smoothing), metrics=make_metrics(c.loss),
                  jit_compile=distribute.resolve_jit_compile(c.jit_compile, kind))
    optimizer.average_statistics(model)
    # Built now, not by Keras inside the first traced train step: variables created while tracing make
    # tf.function trace the step a second time (half of a small run's start-up).
    model.optimizer.build(model.trainable_variables)


def _callbacks(c: TrainConfig, plan: _Plan, state, skipped, chief: bool, extra) -> list:
    run = RunDir(c.model_dir)
    callbacks = [ProgressiveLearning(plan.stages, c.epochs, state, seed=c.seed, verbose=c.verbose,
                                     augment=c.augment),
                 SkippedImagesLog(skipped, c.verbose)]
    if c.unfreeze_after:
        callbacks.append(Unfreeze(c.unfreeze_after, c.unfreeze_lr_scale, c.verbose))
    if c.ema_decay > 0:
        # Validation sees the averaged weights and BatchNorm statistics; between epochs the model holds the raw
        # ones, which the backup saves (with the averages, optimizer variables).
        callbacks.append(SwapEMA())
    if chief:
        callbacks += [Backup(run.join("backup"), delete_checkpoint=False),
                      HistoryCSV(run.join("history.csv")), keras.callbacks.TensorBoard(run.join("logs"))]
    else:
        callbacks.append(_RestoreOnly(run.join("backup"), delete_checkpoint=False))
    return callbacks + list(extra or [])


def _fit(c: TrainConfig, model, plan: _Plan, train_for_segment, eval_ds, callbacks) -> dict[str, list]:
    """One fit() per batch size (one in all unless max_batch_scale > 1): Keras 3.15 keeps one step count for all
    epochs of a fit(). Epoch numbers, callbacks, logs and the backup run on across the calls as one run."""
    optimizer = ours(model.optimizer)
    optimizer.defer_finalize = True
    history: dict[str, list] = {}
    for first_epoch, end_epoch, _, steps, _ in plan.segments:
        # Our own CallbackList, so that progress bars count epochs of the whole run and know each epoch's steps.
        progbar = [report.EpochProgbar()] if c.verbose else []  # epoch lines with metrics only
        callback_list = keras.callbacks.CallbackList(callbacks + progbar, add_history=True, add_progbar=False,
                                                     verbose=c.verbose, epochs=c.epochs, steps=steps, model=model)
        with end_of_data_is_expected():
            model.fit(train_for_segment(steps), initial_epoch=first_epoch, epochs=end_epoch,
                      validation_data=eval_ds, validation_freq=c.eval_every, callbacks=callback_list, shuffle=False,
                      verbose=c.verbose)
        for key, values in model.history.history.items():
            history.setdefault(key, []).extend(values)
        private.clear_initial_epoch(model)  # a restored start epoch applies to one fit()
        if model.stop_training:
            break
    optimizer.defer_finalize = False
    optimizer.finalize_variable_values(model.trainable_weights)  # the EMA weights, for evaluation and saving
    return history


def inference_model(model: keras.Model, activation: str | None = "softmax") -> keras.Model:
    """A copy of a trained model that loads on any backend: same layers and weights, BatchNorm not synchronized
    (a MirroredStrategy run's BatchNorm is, and Keras refuses that on JAX and PyTorch), not compiled (no optimizer
    of ours in the file), its classifier ending in ``activation`` (probabilities, as the zoo models return; None
    keeps the logits it trained with)."""
    config = model.get_config()
    for layer in config["layers"]:
        if layer["config"].get("synchronized"):
            layer["config"]["synchronized"] = False
        classifier = layer["config"].get("name") == "predictions"
        if activation and classifier and layer["config"].get("activation") == "linear":
            layer["config"]["activation"] = activation
    copy = model.__class__.from_config(config)
    copy.set_weights(model.get_weights())
    return copy


def train(config: TrainConfig, callbacks: list | None = None) -> dict[str, Any]:  # the steps in order, ~65 lines
    """Run one training job; return the history, the final evaluation and the saved model's path.

    ``callbacks`` are added after the built-in ones (progressive learning, EMA swap, backup, logs).
    """
    c = resolve(config)  # the recipe's values for the fields left unset
    check_config(c)
    variant = variant_of(c)
    kind = distribute.device_kind(c.strategy)
    strategy = distribute.make_strategy(c.strategy, c.cpu_devices)
    replicas = strategy.num_replicas_in_sync if strategy is not None else 1
    if c.batch_size % replicas:
        raise ValueError(f"batch_size={c.batch_size} is not divisible by the {replicas} replicas of the "
                         f"{c.strategy!r} strategy; use a multiple of {replicas}.")
    train_split, eval_split, info = sources.load_source(c.dataset, c.data_dir, c.train_split, c.eval_split)
    check_labels(c, info)
    c = cover_min_examples(c, train_examples_per_epoch(c, info))
    plan = _plan(c, variant, info, replicas)
    train_split = sources.limit(train_split, c.train_examples)
    eval_split = sources.limit(eval_split, c.eval_examples)
    data_lib.check_batch_fits(train_split, max(s.batch_size or c.batch_size for s in plan.stages), c.max_image_pixels)
    chief = claim_model_dir(c, strategy, info.num_classes)
    started, num_eval = time.perf_counter(), min(info.num_eval, c.eval_examples or info.num_eval)
    if c.verbose and chief:
        print(report.header(c, info, plan, num_eval), flush=True)
    with _dtype_policy(distribute.resolve_mixed_precision(c.mixed_precision, kind)):
        keras.utils.set_random_seed(c.seed)
        if c.deterministic and keras.backend.backend() == "tensorflow":
            tf.config.experimental.enable_op_determinism()

        state, skipped = data_lib.StageState(), data_lib.SkippedImages()
        augmenters = StageAugmenters(plan.stages, policy=c.augment)

        def train_for_segment(steps):
            def make(context):
                ds = data_lib.make_train_dataset(
                    train_split, info, plan.stages, state, c.batch_size, seed=c.seed, deterministic=c.deterministic,
                    augmenters=augmenters, shuffle_buffer=c.shuffle_buffer, cache_limit_mb=c.cache_limit_mb,
                    skipped=skipped, input_context=context, preprocessing=plan.preprocessing,
                    random_crop=c.train_crop == "random", finetune_cutout=c.cutout, max_pixels=c.max_image_pixels)
                # The epoch's exact length, stated: where a dataset's length is unknown, Keras 3.15 counts one optimizer
                # step that never happened at each epoch end (shifting the schedules). A wrong length fails loudly.
                # Under a strategy, each step takes one batch per replica of this host.
                per_host = context.num_replicas_in_sync // context.num_input_pipelines if context else 1
                return ds.apply(tf.data.experimental.assert_cardinality(steps * per_host))
            return _distribute(strategy, make)

        eval_ds = _distribute(strategy, lambda context: data_lib.make_eval_dataset(
            eval_split, info, plan.eval_size, c.batch_size, c.crop_fraction, static_batches=kind == "tpu",
            cache_limit_mb=c.cache_limit_mb, skipped=skipped, input_context=context, preprocessing=plan.preprocessing,
            max_pixels=c.max_image_pixels))
        with strategy.scope() if strategy is not None else contextlib.nullcontext():
            model = _build_model(c, variant, plan, info.num_classes, replicas)
            _compile(c, model, plan, kind, _freeze(c, model))
        callback_list = _callbacks(c, plan, state, skipped, chief, callbacks)
        history = _fit(c, model, plan, train_for_segment, eval_ds, callback_list)
        result = _finish(c, model, plan, info, eval_ds, history, chief, replicas)
        if c.verbose and chief:
            print(report.summary(result["eval"], info, num_eval, plan.eval_size, time.perf_counter() - started,
                                 result["model_path"]), flush=True)
        return result


@contextlib.contextmanager
def _dtype_policy(name: str):
    """Keras' global dtype policy set for the run and restored after it, so a caller in the same process (a
    notebook, a test) builds its next models as before."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _finish(c: TrainConfig, model, plan: _Plan, info, eval_ds, history, chief: bool, replicas: int) -> dict:
    """Evaluate the final (EMA) weights, save the inference model and results.json (chief only)."""
    run = RunDir(c.model_dir)
    with end_of_data_is_expected():
        results = model.evaluate(eval_ds, return_dict=True, verbose=0)
    model_path = run.join(FINAL_MODEL)
    # eval_size, preprocessing, crop_fraction and class_names are what export.load_servable serves the model with.
    crop_fraction, preprocessing = sources.eval_settings(info, plan.preprocessing, c.crop_fraction)
    summary = {"eval": {k: float(v) for k, v in results.items()}, "eval_size": plan.eval_size,
               "model_path": model_path if chief else None, "crop_fraction": crop_fraction,
               "preprocessing": dataclasses.asdict(preprocessing),
               "class_names": list(info.class_names), "stages": [dataclasses.asdict(s) for s in plan.stages],
               "replicas": replicas, "dtype_policy": keras.mixed_precision.global_policy().name,
               "freeze": c.freeze, "frozen_layers": freeze_lib.frozen_layers(model),
               "unfreeze_after": c.unfreeze_after,
               "output": f"probabilities ({OUTPUT_ACTIVATION[c.loss]} of the classifier's logits)"}
    if chief:
        inference_model(model, OUTPUT_ACTIVATION[c.loss]).save(model_path)
        run.write_json(RESULTS_FILE, summary)
    return {**summary, "history": history, "model": model}


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


def _backbone(variant, weight_set: str, max_input_size: int) -> keras.Model:
    """The pretrained network (a set, or timm's) without its classifier: fine-tuning gives it a new head."""
    return create_model(variant, weights=weight_set, include_top=False, input_shape=(None, None, 3),
                        max_input_size=max_input_size)


def _load_backbone(model, backbone: keras.Model, weight_set: str) -> None:
    """``backbone``'s weights into ``model`` but the classifier (new) and the input normalization: the builder set
    ``model``'s from the weight set's numbers (keras.applications' V1 files hold it in another form)."""
    values = {k: v for k, v in layer_values(backbone.layers).items() if k != NORMALIZATION_LAYER}
    values.update(layer_values([model.get_layer("predictions")]))
    assign_layers(model, values, f"weights={weight_set}")
    model.preprocessing = dataclasses.replace(get_preprocessing(model), weights=weight_set)
