"""TrainConfig, every setting of a training run (each a flag of the CLI), and the checks that refuse a bad one
before any data is read or any model is built."""

from __future__ import annotations

import dataclasses
import math

from efficientnet_keras.block_args import decode_all
from efficientnet_keras.models import VARIANTS, get_variant
from efficientnet_keras.training import freeze as freeze_lib
from efficientnet_keras.training.augment import MAX_ALPHA
from efficientnet_keras.training.losses import LOSSES
from efficientnet_keras.training.optimizers import SCHEDULES
from efficientnet_keras.training.progressive import PROGRESSIONS
from efficientnet_keras.training.randaugment import check_magnitude
from efficientnet_keras.training.recipes import RECIPES
from efficientnet_keras.transforms import MAX_PIXELS
from efficientnet_keras.weights.load import check_weights_argument

__all__ = ["TrainConfig", "check_config", "check_labels", "train_examples_per_epoch", "cover_min_examples", "variant_of"]


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
    max_image_pixels: int = _field(MAX_PIXELS, "Skip (and count) images whose header claims more pixels than this, "
                                               "before decoding them: a hostile or broken file cannot take the run's "
                                               "memory.", resumable=True)
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


def check_config(c: TrainConfig) -> None:
    variant = get_variant(c.model)  # unknown model: ValueError naming the choices
    if c.weights and not c.blocks:
        # An unknown set, one the variant lacks, a missing file: the error before any data is read.
        check_weights_argument(variant, c.weights, include_top=False, classes=None, classifier_activation=None)
    if c.blocks:
        decode_all(b.strip() for b in c.blocks.split(","))  # a bad string: ValueError naming the token
    for f in dataclasses.fields(c):
        choices = f.metadata.get("choices")
        if choices and getattr(c, f.name) is not None and getattr(c, f.name) not in choices:
            raise ValueError(f"{f.name} must be one of {', '.join(choices)}; got {getattr(c, f.name)!r}.")
    for name in ("batch_size", "epochs", "num_stages", "eval_every", "shuffle_buffer", "max_image_pixels"):
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


def check_labels(c: TrainConfig, info) -> None:
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


def train_examples_per_epoch(c: TrainConfig, info) -> int:
    """Training examples per epoch: the split, or its first ``train_examples``."""
    return min(info.num_train, c.train_examples or info.num_train)


def cover_min_examples(c: TrainConfig, num_train: int) -> TrainConfig:
    """As the official ``main.py`` (train_steps = max(min_steps, epochs x steps_per_epoch)), in passes over the data:
    epochs become at least ceil(min_examples / num_train). The run record keeps the raised count."""
    epochs = max(c.epochs, math.ceil((c.min_examples or 0) / num_train))
    if epochs > c.epochs and c.verbose:
        print(f"The {c.recipe} recipe trains at least {c.min_examples:,} examples: {epochs} epochs of {num_train:,} "
              f"instead of {c.epochs} (--min_examples=0 keeps --epochs).")
    return dataclasses.replace(c, epochs=epochs)


def _check_regularization(c: TrainConfig) -> None:
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


def variant_of(c: TrainConfig):
    variant = get_variant(c.model)
    if c.blocks:
        variant = dataclasses.replace(variant, blocks=tuple(b.strip() for b in c.blocks.split(",")),
                                      name=f"{variant.name}-custom")
    return variant
