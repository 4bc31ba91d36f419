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
import math
import time
import warnings
from typing import Any

import keras

from efficientnet_keras import _keras_private as private
from efficientnet_keras.models import VARIANTS
from efficientnet_keras.training.optimizers import (SCHEDULES, AdamWEMA, RMSpropEMA, SwapEMA, Unfreeze, ours,
                                                   WarmupExponentialDecay)
from efficientnet_keras.training.progressive import PROGRESSIONS
from efficientnet_keras.training import freeze as freeze_lib
from efficientnet_keras.training import report
from efficientnet_keras.training.losses import LOSSES, OUTPUT_ACTIVATION, make_loss, make_metrics
from efficientnet_keras.training.recipes import RECIPES, default_warmup, official_train_size
from efficientnet_keras.training.rundir import FINAL_MODEL, RESULTS_FILE, RUN_FILE, Backup, HistoryCSV, RunDir
from efficientnet_keras.weights.load import TIMM_PREFIX, WEIGHT_SETS
from efficientnet_keras.weights.registry import set_info

__all__ = ["TrainConfig", "train", "evaluate"]


def _field(default, help: str, resumable: bool = False, choices: tuple | None = None):
    """A TrainConfig field: ``help`` becomes the flag's help text; ``resumable`` fields may differ on --resume
    (they do not change the training math)."""
    return dataclasses.field(default=default, metadata={"help": help, "resumable": resumable, "choices": choices})


@dataclasses.dataclass
class TrainConfig:
    """Everything a training run depends on; saved whole in the run folder, and each field a flag of the CLI."""

    model: str = _field("EfficientNetV2B0", f"Variant: {', '.join(VARIANTS)}.")
    recipe: str | None = _field(None, "Preset of the settings left unset: imagenet (the official per-variant "
                                      "ImageNet recipe), finetune (the official ImagenetFt recipe; needs --weights), "
                                      "imagenet21k (the official 21k pretraining; multi-label data) or coatnet (the "
                                      "CoAtNet paper's); default: coatnet for CoAtNet models, else imagenet.",
                                choices=tuple(RECIPES))
    blocks: str | None = _field(None, "Custom network: comma-separated block-args strings in the model's family "
                                      "and coefficients.")
    dataset: str = _field("digits", "Embedded name (digits), fashion_mnist, a tfds name, or an image-folder "
                                    "directory (root/train/<class>/<image>, local or gs://).")
    data_dir: str | None = _field(None, "tfds data_dir (gs://... on TPU).", resumable=True)
    train_split: str = _field("train", "Training split (tfds slicing allowed, e.g. train[:90%]).")
    eval_split: str | None = _field(None, "Evaluation split; default validation, else val, else test.",
                                    resumable=True)
    model_dir: str = _field("runs/default", "Run folder (local or gs://): run record, backup, logs, final model.",
                            resumable=True)
    batch_size: int | None = _field(None, "Global batch (images per step over all replicas); default: the recipe's "
                                          "(finetune 512, coatnet 4096), else 64.")
    max_batch_scale: float = _field(1.0, "Larger batches at small images: stage batch = batch_size x min(this, "
                                         "(max size / size)^2), learning rate scaled alike; 1 keeps it fixed.")
    epochs: int | None = _field(None, "Epochs (passes over the training split); default: the recipe's (finetune 15, "
                                      "imagenet21k 60, coatnet 300), else 8.")
    min_examples: int | None = _field(None, "Train at least this many examples: epochs are raised to cover them "
                                            "(the official fine-tuning's min_steps 10000 at batch 512 = 5,120,000); "
                                            "default: the recipe's (imagenet 0).")
    progressive: bool | None = _field(None, "Progressive learning: image size and regularization grow per stage "
                                            "(default: the recipe's).")
    progression: str = _field("official", "official (the google/automl code: sizes ibase+(S-ibase)(i+1)/M, dropout "
                                          "fixed) or paper (Algorithm 1 and Table 6: dropout grows too).",
                              choices=PROGRESSIONS)
    num_stages: int = _field(4, "Progressive-learning stages.")
    adaptive_regularization: bool = _field(True, "Grow RandAugment, mixup, CutMix (and with --progression=paper, "
                                                 "dropout) with the image size; false holds every stage at the last "
                                                 "stage's (the paper's 'w/o adaptive' ablation).")
    image_size_min: int | None = _field(None, "Base size in px: the official progression's ibase (128), the paper's "
                                              "first stage (default: the variant's preset).")
    image_size_max: int | None = _field(None, "Last stage's image size in px (default: the variant's preset).")
    eval_size: int | None = _field(None, "Evaluation image size in px (default: the variant's own, as the official "
                                         "eval isize; with --image_size_max, the last stage's).", resumable=True)
    crop_fraction: float | None = _field(None, "Evaluation central crop, fraction of the shorter side (default: the "
                                               "variant's official crop, e.g. size/(size+32)).", resumable=True)
    train_crop: str | None = _field(None, "random (the variant's official random crop) or whole (resize the whole "
                                          "image, as the official fine-tuning); default: the recipe's.",
                                    choices=("random", "whole"))
    cutout: bool | None = _field(None, "The official fine-tuning Cutout (a noise square of half the image side); "
                                       "default: the recipe's.")
    augment: str | None = _field(None, "randaugment (the official op set, magnitude per stage), autoaugment (the "
                                       "official policy v0) or none; default: the recipe's (imagenet: the "
                                       "variant's official one, AutoAugment for V1 and V2-B0..B3).",
                                 choices=("randaugment", "autoaugment", "none"))
    strategy: str = _field("auto", "auto|tpu|mirrored|multiworker (cluster from TF_CONFIG)|default.",
                           resumable=True, choices=("auto", "tpu", "mirrored", "multiworker", "default"))
    cpu_devices: int = _field(0, "With --strategy=mirrored: split the CPU into this many logical devices.",
                              resumable=True)
    mixed_precision: str = _field("auto", "auto (bfloat16 on TPU, float16 on GPU, float32 on CPU)|float32|"
                                          "bfloat16|float16.", choices=("auto", "float32", "bfloat16", "float16"))
    jit_compile: str = _field("auto", "XLA: auto (on TPU/GPU, not CPU)|true|false.", resumable=True,
                              choices=("auto", "true", "false"))
    resume: bool = _field(False, "Continue the run in --model_dir from its last finished epoch.", resumable=True)
    overwrite: bool = _field(False, "Delete --model_dir's previous run first.", resumable=True)
    eval_every: int = _field(1, "Evaluate every N epochs.", resumable=True)
    seed: int = _field(0, "Seed of data order, augmentation, initialization and dropout.")
    deterministic: bool = _field(False, "Reproducible input pipeline and ops (slower).", resumable=True)
    train_examples: int | None = _field(None, "Use only the first N training examples (quick runs).")
    eval_examples: int | None = _field(None, "Evaluate on the first N evaluation examples.", resumable=True)
    shuffle_buffer: int = _field(2048, "Encoded examples per shuffle window of a streamed (uncached) tfds split; "
                                       "memory grows with it (2048 ImageNet JPEGs: ~0.6 GiB over two epochs).")
    cache_limit_mb: float = _field(1024.0, "Cache a split's encoded images in memory when they take at most this "
                                           "many MiB (decoded images are never cached).")
    optimizer: str | None = _field(None, "rmsprop (the EfficientNet recipes') or adamw (CoAtNet's; often better for "
                                         "short runs); default: the recipe's.", choices=("rmsprop", "adamw"))
    loss: str | None = _field(None, "softmax (one label per image), multilabel_softmax (the official 21k loss: "
                                    "multi-hot labels normalized to sum 1, softmax cross-entropy) or sigmoid (sigmoid "
                                    "cross-entropy summed over classes); default: the recipe's.",
                              choices=LOSSES)
    lr_min: float | None = _field(None, "Floor of the learning rate after warm-up (official minimal_lr; coatnet "
                                        "1e-5); default: the recipe's.")
    gradient_clip: float | None = _field(None, "Clip gradients to this global norm (0: off; coatnet 1.0); default: "
                                               "the recipe's.")
    learning_rate_per_256: float | None = _field(None, "Peak learning rate per 256 images of global batch (default: "
                                                       "the recipe's, 0.016 imagenet, 0.0005 finetune).")
    lr_schedule: str | None = _field(None, "exponential, constant or cosine after warm-up (default: the recipe's).",
                                     choices=SCHEDULES)
    warmup_epochs: float | None = _field(None, "Linear warm-up in epochs (default: the recipe's; imagenet's 5 becomes "
                                               "epochs / 10 in runs shorter than 50 epochs).")
    lr_decay_factor: float = _field(0.97, "Learning-rate decay factor per lr_decay_epochs.")
    lr_decay_epochs: float = _field(2.4, "Epochs between learning-rate decays.")
    weight_decay: float | None = _field(None, "Weight decay (0 disables; default: the recipe's 1e-5).")
    weight_decay_mode: str = _field("auto", "l2 (the official: wd*v added to the gradient, i.e. wd*sum(v^2)/2 in the "
                                            "loss), decoupled (AdamW: v -= lr*wd*v), or auto (l2 with rmsprop, "
                                            "decoupled with adamw).", choices=("auto", "l2", "decoupled"))
    ema_decay: float | None = _field(None, "EMA decay of the weights and BatchNorm statistics, evaluated and saved "
                                           "(0 disables; default: the recipe's).")
    label_smoothing: float | None = _field(None, "Label smoothing (default: the recipe's 0.1).")
    stochastic_depth: float | None = _field(None, "Stochastic-depth rate of the last block (default: the recipe's "
                                                  "0.2).")
    dropout: float | None = _field(None, "Top dropout (default: the preset's range; fixed size: the variant's).")
    randaug_max: float | None = _field(None, "Last stage's RandAugment magnitude on the official 0-30 scale "
                                             "(default: the variant's, e.g. 10 for V2-S; 0 disables).")
    mixup_max: float | None = _field(None, "Last stage's mixup alpha (default: the preset's; 0 disables).")
    cutmix_max: float | None = _field(None, "Last stage's cutmix alpha (default: the variant's, e.g. 0.2 for V2-M).")
    bn_momentum: float = _field(0.9, "BatchNorm moving-average momentum (0.9: the official hparams.py; the paper "
                                     "says 0.99).")
    weights: str | None = _field(None, "Initial weights: a weight set for the backbone (imagenet, imagenet21k-ft1k, "
                                       "imagenet21k, noisy-student, advprop: the classifier is new), timm:<name.tag> "
                                       "or timm:<file.pth|.safetensors> (timm's weights), or a weights file.")
    freeze: str | None = _field(None, "Fine-tuning: 'backbone' (train the classifier only) or a stage name (stem, "
                                      "block1, block2, ...: it and everything below stay frozen). Frozen BatchNorm "
                                      "layers run in inference mode: their statistics do not move.")
    unfreeze_after: int = _field(0, "Two-phase fine-tuning (Keras' transfer-learning guide): with --freeze, the "
                                    "frozen part is held still for this many epochs, then everything but BatchNorm "
                                    "trains at --unfreeze_lr_scale x the learning rate; 0 keeps it frozen.")
    unfreeze_lr_scale: float = _field(0.1, "Learning-rate factor of every layer after --unfreeze_after.")
    verbose: int = _field(1, "0 silent, 1 progress bars, 2 one line per epoch. TensorFlow's own log lines are "
                             "hidden; TF_CPP_MIN_LOG_LEVEL=0 shows them.", resumable=True)


def _check_config(c: TrainConfig) -> None:
    from efficientnet_keras.models import get_variant

    variant = get_variant(c.model)  # unknown model: ValueError naming the choices
    if c.weights and not c.blocks:
        from efficientnet_keras.weights.load import check_weights_argument

        # An unknown set, one the variant lacks, a missing file: the error before any data is read.
        check_weights_argument(variant, c.weights, include_top=False, classes=None, classifier_activation=None)
    if c.blocks:
        from efficientnet_keras.block_args import decode_all

        decode_all(b.strip() for b in c.blocks.split(","))  # a bad string: ValueError naming the token
    for f in dataclasses.fields(c):
        choices = f.metadata.get("choices")
        if choices and getattr(c, f.name) is not None and getattr(c, f.name) not in choices:
            raise ValueError(f"{f.name} must be one of {', '.join(choices)}; got {getattr(c, f.name)!r}.")
    for name in ("batch_size", "epochs", "num_stages", "eval_every", "shuffle_buffer"):
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
                         f"got {c.epochs}: lower --num_stages, or train at one size with --noprogressive.")
    if c.crop_fraction is not None and not 0 < c.crop_fraction <= 1:
        raise ValueError(f"crop_fraction must be in (0, 1], got {c.crop_fraction}.")
    if c.recipe == "finetune" and not c.weights:
        raise ValueError("--recipe=finetune fine-tunes pretrained weights: pass --weights=imagenet (or a weights file), "
                         "or use --recipe=imagenet to train from scratch.")
    _check_regularization(c)
    if c.max_batch_scale < 1:
        raise ValueError(f"max_batch_scale must be >= 1 (1 keeps the batch fixed), got {c.max_batch_scale}.")
    if not 0 <= c.ema_decay < 1:
        raise ValueError(f"ema_decay must be in [0, 1), got {c.ema_decay}.")
    if c.min_examples is not None and c.min_examples < 0:
        raise ValueError(f"min_examples must be >= 0 (0: train exactly --epochs), got {c.min_examples}.")
    if c.learning_rate_per_256 <= 0 or c.weight_decay < 0:
        raise ValueError(f"learning_rate_per_256 must be > 0 and weight_decay >= 0; got {c.learning_rate_per_256} and "
                         f"{c.weight_decay}.")
    if c.blocks and c.weights:
        raise ValueError("A custom --blocks network has no pretrained weights; drop --weights.")
    _check_freeze_and_rates(c, variant)


def _check_freeze_and_rates(c: TrainConfig, variant) -> None:
    if c.freeze:  # stages as the builder names them: stem, then block<i> per block string
        blocks = len(c.blocks.split(",")) if c.blocks else len(variant.blocks)
        freeze_lib.check_name(c.freeze, ["stem"] + [f"block{i + 1}" for i in range(blocks)],
                              f"{variant.function}-custom" if c.blocks else variant.function)
    if c.unfreeze_after and (not c.freeze or not 0 < c.unfreeze_after < c.epochs):
        raise ValueError(f"unfreeze_after={c.unfreeze_after} needs --freeze and 0 < unfreeze_after < "
                         f"epochs={c.epochs}: the epochs trained frozen before everything trains.")
    if not 0 < c.unfreeze_lr_scale <= 1:
        raise ValueError(f"unfreeze_lr_scale must be in (0, 1], got {c.unfreeze_lr_scale}.")
    if c.lr_min < 0 or c.gradient_clip < 0:
        raise ValueError(f"lr_min and gradient_clip must be >= 0 (0: off); got {c.lr_min} and {c.gradient_clip}.")
    if c.lr_min >= c.learning_rate_per_256 * c.batch_size / 256:
        raise ValueError(f"lr_min={c.lr_min:g} is not below the peak learning rate "
                         f"{c.learning_rate_per_256 * c.batch_size / 256:g} (learning_rate_per_256 x batch / 256).")


def _check_labels(c: TrainConfig, info) -> None:
    """A multi-label loss needs multi-label data, and the reverse (before any model is built)."""
    if c.loss != "softmax" and not info.multi_label:
        what = "normalizes" if c.loss == "multilabel_softmax" else "trains"
        source = f" (the {c.recipe} recipe's)" if c.recipe == "imagenet21k" else ""
        raise ValueError(f"--loss={c.loss}{source} {what} multi-hot labels, but {info.name!r} has one label per image; "
                         "use --recipe=imagenet (or --loss=softmax), or a multi-label dataset (tfrecord:<pattern> "
                         "in the ImageNet-21k layout, a label list per record).")
    if info.multi_label and c.loss == "softmax":
        raise ValueError(f"{info.name!r} has several labels per image, which --loss=softmax cannot train; use "
                         "--recipe=imagenet21k or --loss=multilabel_softmax|sigmoid.")


def _num_train(c: TrainConfig, info) -> int:
    """Training examples per epoch: the split, or its first ``train_examples``."""
    return min(info.num_train, c.train_examples or info.num_train)


def _cover_min_examples(c: TrainConfig, num_train: int) -> TrainConfig:
    """As the official ``main.py`` (train_steps = max(min_steps, epochs x steps_per_epoch)), in passes over the data:
    epochs become at least ceil(min_examples / num_train). The run record keeps the raised count."""
    epochs = max(c.epochs, math.ceil((c.min_examples or 0) / num_train))
    if epochs > c.epochs and c.verbose:
        print(f"The {c.recipe} recipe trains at least {c.min_examples:,} examples: {epochs} epochs of {num_train:,} "
              f"instead of {c.epochs} (--min_examples=0 keeps --epochs).")
    return dataclasses.replace(c, epochs=epochs)


def _check_regularization(c: TrainConfig) -> None:
    from efficientnet_keras.training.augment import MAX_ALPHA
    from efficientnet_keras.training.randaugment import check_magnitude

    if c.randaug_max is not None:
        check_magnitude(c.randaug_max)
        if c.randaug_max > 0 and c.augment != "randaugment":
            raise ValueError(f"randaug_max={c.randaug_max:g} sets RandAugment's magnitude, but this run's augmentation "
                             f"is {c.augment!r} ({c.model} with the {c.recipe} recipe, or --augment); add "
                             "--augment=randaugment, or drop --randaug_max.")
    for name in ("mixup_max", "cutmix_max"):
        value = getattr(c, name)
        if value is not None and not 0 <= value <= MAX_ALPHA:
            raise ValueError(f"{name}={value:g} is out of range: a Beta alpha in [0, {MAX_ALPHA:g}] (the official "
                             "recipes use 0 to 0.5).")
    for name in ("dropout", "stochastic_depth", "label_smoothing"):
        value = getattr(c, name)
        if value is not None and not 0 <= value < 1:
            raise ValueError(f"{name} must be in [0, 1), got {value}.")


def _variant(c: TrainConfig):
    from efficientnet_keras.models import get_variant

    variant = get_variant(c.model)
    if c.blocks:
        variant = dataclasses.replace(variant, blocks=tuple(b.strip() for b in c.blocks.split(",")),
                                      name=f"{variant.name}-custom")
    return variant


def _stages(c: TrainConfig, variant):
    from efficientnet_keras.training.progressive import preset_for

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
    from efficientnet_keras.training.progressive import stage_for_epoch

    batches = [stages[stage_for_epoch(e, c.epochs, len(stages))].batch_size or c.batch_size for e in range(c.epochs)]
    segments, epoch, step = [], 0, 0
    for batch, group in itertools.groupby(batches):
        epochs, steps = len(list(group)), num_train // batch
        segments.append((epoch, epoch + epochs, batch, steps, step))
        epoch, step = epoch + epochs, step + epochs * steps
    return segments


# ---------------------------------------------------------------------------------------------- run record


def _record(c: TrainConfig, num_classes: int) -> dict[str, Any]:
    return {"config": dataclasses.asdict(c), "num_classes": num_classes}


def _changed_fields(previous: dict, current: dict) -> dict[str, tuple]:
    """Fields that change the training math and differ between two run records. Records of older versions (a
    flat dict of some fields) compare on the fields they have."""
    old = previous.get("config", previous)
    new = {**current["config"], "num_classes": current["num_classes"]}
    if "config" in previous:
        old = {**old, "num_classes": previous.get("num_classes")}
    resumable = {f.name for f in dataclasses.fields(TrainConfig) if f.metadata["resumable"]}
    return {k: (old[k], v) for k, v in new.items() if k in old and k not in resumable and old[k] != v}


def _prepare_model_dir(c: TrainConfig, num_classes: int) -> None:
    """Write the run record; refuse to mix runs (a changed setting, another run, a foreign folder)."""
    run = RunDir(c.model_dir)
    record = _record(c, num_classes)
    if run.exists(RUN_FILE):
        if c.overwrite:
            run.delete()
        else:
            changed = _changed_fields(run.read_json(RUN_FILE), record)
            if changed:
                raise ValueError(
                    f"model_dir {c.model_dir!r} holds a run of another configuration: "
                    + ", ".join(f"{k}: {old!r} there vs {new!r} now" for k, (old, new) in changed.items())
                    + ". These change the training, so the run cannot continue with them. Use the run's settings, "
                    "another --model_dir, or --overwrite to delete it."
                )
            if not c.resume:
                raise ValueError(
                    f"model_dir {c.model_dir!r} already holds this run. Pass --resume to continue it (or to re-run "
                    "its final evaluation), or --overwrite to start over; nothing was changed."
                )
    elif not run.is_empty() and not c.overwrite:
        raise ValueError(f"model_dir {c.model_dir!r} is not empty and holds no run of ours; choose another folder.")
    run.check_writable()
    run.write_json(RUN_FILE, record)


def _claim_model_dir(c: TrainConfig, strategy, num_classes: int) -> bool:
    """The chief prepares model_dir (all workers share it); the others wait and stop if it refused. Returns
    whether this process is the chief (the one that writes)."""
    from efficientnet_keras.training import distribute

    chief = distribute.is_chief(strategy)
    refused = None
    if chief:
        try:
            _prepare_model_dir(c, num_classes)
        except ValueError as e:
            refused = e
    if not distribute.all_workers_ok(strategy, refused is None):
        raise refused or ValueError(f"The chief worker refused model_dir {c.model_dir!r}; its output says why.")
    return chief


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
    from efficientnet_keras.training.progressive import scale_batch

    stages = _stages(c, variant)
    num_train = _num_train(c, info)
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
    from efficientnet_keras.layers import set_regularization
    from efficientnet_keras.models import create_model

    first = plan.stages[0]
    # Pretrained weights (a set or timm's) give the backbone; the classifier is new, for this dataset's classes.
    weight_set = c.weights if c.weights in WEIGHT_SETS or str(c.weights).startswith(TIMM_PREFIX) else None
    normalization = _weights_normalization(variant, weight_set) if weight_set else None
    # A CoAtNet's relative position tables cover the largest image it will see: every stage and the evaluation.
    largest = max([s.image_size for s in plan.stages] + [plan.eval_size])
    model = create_model(variant, weights=None if weight_set else c.weights, input_shape=(None, None, 3),
                         classes=num_classes, classifier_activation=None, dropout_rate=first.dropout,
                         drop_connect_rate=c.stochastic_depth, normalization=normalization, max_input_size=largest)
    if weight_set:
        _load_backbone(model, variant, weight_set, largest)
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
    from efficientnet_keras.training import distribute

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


class _SkippedImagesLog(keras.callbacks.Callback):
    """Adds the images skipped as undecodable in each epoch to its logs (CSV, TensorBoard) and says so: each file
    by its path, once in the run; records (no names) by their count, when it first appears or changes."""

    def __init__(self, skipped, verbose: int):
        super().__init__()
        self.skipped, self.verbose = skipped, verbose
        self.seen = {"train": 0, "eval": 0}
        self.named: set[str] = set()
        self.told = {"train": 0, "eval": 0}

    def on_epoch_begin(self, epoch, logs=None):
        self.skipped.reset_positions()

    def on_epoch_end(self, epoch, logs=None):
        for part in ("train", "eval"):
            total = int(getattr(self.skipped, part).numpy())
            new, self.seen[part] = total - self.seen[part], total
            if logs is not None:
                logs[f"skipped_{part}_images"] = float(new)
            if new and self.verbose:
                self._tell(part, epoch, new)

    def _tell(self, part: str, epoch: int, count: int) -> None:
        names = self.skipped.names(part, epoch)
        if names is None:
            if count != self.told[part]:
                self.told[part] = count
                print(f"\nWarning: epoch {epoch + 1} skipped {count} {part} image(s) that could not be decoded "
                      f"(corrupt, or not JPEG/PNG/GIF/BMP); each epoch's count is logged as skipped_{part}_images.")
            return
        for name in sorted(set(names) - self.named):
            print(f"\nWarning: skipped {name}: it could not be decoded (corrupt, or not JPEG/PNG/GIF/BMP). It is "
                  f"left out of every epoch (logged as skipped_{part}_images); replace or delete it.")
        self.named.update(names)


def _callbacks(c: TrainConfig, plan: _Plan, state, skipped, chief: bool, extra) -> list:
    from efficientnet_keras.training.progressive import ProgressiveLearning

    run = RunDir(c.model_dir)
    callbacks = [ProgressiveLearning(plan.stages, c.epochs, state, seed=c.seed, verbose=c.verbose,
                                     augment=c.augment),
                 _SkippedImagesLog(skipped, c.verbose)]
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


@contextlib.contextmanager
def _end_of_data_is_expected():
    """Keras 3.15 warns "Your input ran out of data" whenever a dataset of unknown length ends, which is how every
    evaluation of files ends (their length is unknown: a corrupt image may be skipped)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Your input ran out of data", category=UserWarning)
        yield


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
        with _end_of_data_is_expected():
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
    import tensorflow as tf

    from efficientnet_keras.training import data as data_lib
    from efficientnet_keras.training import distribute
    from efficientnet_keras.training.augment import StageAugmenters

    from efficientnet_keras.training.recipes import resolve

    c = resolve(config)  # the recipe's values for the fields left unset
    _check_config(c)
    variant = _variant(c)
    kind = distribute.device_kind(c.strategy)
    strategy = distribute.make_strategy(c.strategy, c.cpu_devices)
    replicas = strategy.num_replicas_in_sync if strategy is not None else 1
    if c.batch_size % replicas:
        raise ValueError(f"batch_size={c.batch_size} is not divisible by the {replicas} replicas of the "
                         f"{c.strategy!r} strategy; use a multiple of {replicas}.")
    train_split, eval_split, info = data_lib.load_source(c.dataset, c.data_dir, c.train_split, c.eval_split)
    _check_labels(c, info)
    c = _cover_min_examples(c, _num_train(c, info))
    plan = _plan(c, variant, info, replicas)
    train_split = data_lib.limit(train_split, c.train_examples)
    eval_split = data_lib.limit(eval_split, c.eval_examples)
    data_lib.check_batch_fits(train_split, max(s.batch_size or c.batch_size for s in plan.stages))
    chief = _claim_model_dir(c, strategy, info.num_classes)
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
                    random_crop=c.train_crop == "random", finetune_cutout=c.cutout)
                # The epoch's exact length, stated: where a dataset's length is unknown, Keras 3.15 counts one optimizer
                # step that never happened at each epoch end (shifting the schedules). A wrong length fails loudly.
                # Under a strategy, each step takes one batch per replica of this host.
                per_host = context.num_replicas_in_sync // context.num_input_pipelines if context else 1
                return ds.apply(tf.data.experimental.assert_cardinality(steps * per_host))
            return _distribute(strategy, make)

        eval_ds = _distribute(strategy, lambda context: data_lib.make_eval_dataset(
            eval_split, info, plan.eval_size, c.batch_size, c.crop_fraction, static_batches=kind == "tpu",
            cache_limit_mb=c.cache_limit_mb, skipped=skipped, input_context=context, preprocessing=plan.preprocessing))
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
    from efficientnet_keras.training import data as data_lib

    run = RunDir(c.model_dir)
    with _end_of_data_is_expected():
        results = model.evaluate(eval_ds, return_dict=True, verbose=0)
    model_path = run.join(FINAL_MODEL)
    # eval_size, preprocessing, crop_fraction and class_names are what export.load_servable serves the model with.
    crop_fraction, preprocessing = data_lib.eval_settings(info, plan.preprocessing, c.crop_fraction)
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


def evaluate(model_dir: str, dataset: str | None = None, data_dir: str | None = None, batch_size: int | None = None,
             eval_size: int | None = None, eval_split: str | None = None) -> dict[str, float]:
    """Evaluate a finished run's saved model on its dataset's evaluation split (central crop); ``batch_size``
    (images per evaluation step) defaults to 64."""
    from efficientnet_keras.training import data as data_lib
    from efficientnet_keras.transforms import saved_eval_transform

    run = RunDir(model_dir)
    if not run.exists(FINAL_MODEL):
        raise ValueError(f"No trained model at {run.join(FINAL_MODEL)}; train first (python -m "
                         "efficientnet_keras.train).")
    config = run.read_json(RUN_FILE)
    config = config.get("config", config)
    results = run.read_json(RESULTS_FILE)
    loss = make_loss(config.get("loss") or "softmax", config.get("label_smoothing", 0.0))
    _, split, info = data_lib.load_source(dataset or config["dataset"], data_dir or config.get("data_dir"),
                                          config.get("train_split", "train"), eval_split or config.get("eval_split"))
    split = data_lib.limit(split, None if dataset else config.get("eval_examples"))
    model = keras.saving.load_model(run.join(FINAL_MODEL))
    _logits(model)  # the loss takes logits; model.keras returns probabilities
    model.compile(loss=loss, metrics=make_metrics(config.get("loss") or "softmax"))
    crop_fraction, preprocessing = saved_eval_transform(results)
    ds = data_lib.make_eval_dataset(split, info, eval_size or results["eval_size"], batch_size or 64,
                                    crop_fraction=crop_fraction, preprocessing=preprocessing)
    with _end_of_data_is_expected():
        return model.evaluate(ds, return_dict=True, verbose=0)


def _logits(model: keras.Model) -> None:
    """Make a saved model's classifier return logits again, for the loss (models saved by earlier versions
    return logits already)."""
    classifier = model.get_layer("predictions")
    if getattr(classifier.activation, "__name__", "linear") != "linear":
        classifier.activation = keras.activations.linear


def _weights_normalization(variant, weights: str) -> str:
    if weights.startswith(TIMM_PREFIX):
        from efficientnet_keras.weights.timm_convert import timm_normalization

        return timm_normalization(weights[len(TIMM_PREFIX):], variant)
    return set_info(variant.name, weights).normalization


def _load_backbone(model, variant, weight_set: str, max_input_size: int) -> None:
    """Pretrained weights (a set, or timm's) for everything but the classifier (fine-tuning on another class
    count)."""
    from efficientnet_keras.models import create_model
    from efficientnet_keras.weights.convert import assign_layers, layer_values

    pretrained = create_model(variant, weights=weight_set, include_top=False, input_shape=(None, None, 3),
                              max_input_size=max_input_size)
    values = {**layer_values(pretrained.layers), **layer_values([model.get_layer("predictions")])}  # head: new
    assign_layers(model, values, f"weights={weight_set}")
