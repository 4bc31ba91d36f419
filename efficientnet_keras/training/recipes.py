"""Recipe presets: the official settings a ``TrainConfig`` field takes when it is left unset (None).

``imagenet``: the per-variant ImageNet recipe of google/automl ``efficientnetv2`` (``hparams.py`` base_config,
``datasets.py`` ImageNet, ``effnetv2_configs.py`` for the per-variant values the progression reads).
``finetune``: the official fine-tuning recipe, ``datasets.py`` ``ImagenetFt`` (which ``Cifar10Ft``, ``FlowersFt``,
``CarsFt`` copy), for use with pretrained ``--weights``.
``imagenet21k``: the official ImageNet-21k pretraining, ``datasets.py`` ``ImageNet21k`` with its multi-label loss
(``main.py``: multi-hot labels normalized to sum 1, softmax cross-entropy).
``coatnet``: the CoAtNet paper's ImageNet-1k training (arXiv 2106.04803v2, Appendix A.2, Table 8, the column
"ImageNet-1K pre-training"), the default for CoAtNet models.

Every value names its source. A flag given explicitly always wins over the recipe.
"""

from __future__ import annotations

import dataclasses

from efficientnet_keras.models import get_variant

__all__ = ["RECIPES", "resolve", "official_augment", "default_recipe", "default_warmup", "official_train_size",
           "GENERIC", "WARMUP_EPOCHS"]

# effnetv2_configs.py: V2-S/M/L/XL train with augname 'randaug'; V2-B0..B3 ("for fair comparison to
# EfficientNetV1") and every V1 (efficientnetv1_config) with 'effnetv1_autoaug', AutoAugment policy v0.
V1_VARIANTS = (*(f"EfficientNetB{i}" for i in range(9)), "EfficientNetL2")
AUTOAUGMENT_VARIANTS = tuple(f"EfficientNetV2B{i}" for i in range(4)) + V1_VARIANTS
LITE_VARIANTS = tuple(f"EfficientNetLite{i}" for i in range(5))

# Epochs and batch where a recipe leaves them to the user: the imagenet recipe's official 350 epochs at batch
# 4096 (hparams.py) are a TPU-pod ImageNet run, not a default for any dataset; the README's ImageNet command
# passes them.
GENERIC = dict(epochs=8, batch_size=64)


def official_augment(model: str) -> str:
    """The augmentation the official code trains ``model`` with. Lite0-4 have no official training setting in
    google/automl; they take RandAugment like the V2 recipe."""
    return "autoaugment" if model in AUTOAUGMENT_VARIANTS else "randaugment"


def official_train_size(model: str, resolution: int) -> int | None:
    """The fixed training size of the official V1 config (``effnetv2_configs.efficientnetv1_config``:
    train isize=0.8, which ``main.py`` turns into int(eval size x 0.8) // 16 * 16: B0 176 px, B7 480 px); None
    for the variants the official code trains progressively."""
    return int(resolution * 0.8) // 16 * 16 if model in V1_VARIANTS else None


# The warm-up a recipe states, in epochs, and the run length it belongs to: hparams.py lr_warmup_epoch 5 of 350;
# CoAtNet Table 8: 10K steps of 4096 images (31.97 ImageNet epochs) of 300.
WARMUP_EPOCHS = {"imagenet": (5.0, 350), "coatnet": (10_000 * 4096 / 1_281_167, 300)}


def default_warmup(recipe: str, epochs: int) -> float:
    """Warm-up epochs of a run that leaves --warmup_epochs unset: the recipe's, shortened for shorter runs to the
    recipe's fraction of the run or a tenth of it, whichever is larger (imagenet: min(5, epochs / 10))."""
    warmup, length = WARMUP_EPOCHS.get(recipe, WARMUP_EPOCHS["imagenet"])
    return min(warmup, epochs * max(warmup / length, 0.1))


def default_recipe(model: str) -> str:
    """``coatnet`` for CoAtNet models, ``imagenet`` for every EfficientNet."""
    return "coatnet" if model.startswith("CoAtNet") else "imagenet"


RECIPES: dict[str, dict] = {
    "imagenet": dict(
        learning_rate_per_256=0.016,  # hparams.py train.lr_base (scaled by batch / 256 in main.py)
        lr_schedule="exponential",  # hparams.py lr_sched, with lr_decay_epoch 2.4, lr_decay_factor 0.97
        # warmup_epochs: hparams.py lr_warmup_epoch 5 of 350 epochs; left unset, the trainer warms up for
        # min(5, epochs / 10) epochs so that short runs are not mostly warm-up.
        weight_decay=1e-5,  # hparams.py train.weight_decay
        ema_decay=0.9999,  # hparams.py train.ema_decay
        label_smoothing=0.1,  # hparams.py / datasets.py ImageNet train.label_smoothing
        min_examples=0,  # hparams.py train.min_steps 0
        stochastic_depth=0.2,  # hparams.py model.survival_prob 0.8
        # effnetv2_configs.py: every V2 config stages=4, sched=True; the V1 config has no stages (fixed size at
        # official_train_size); Lite has no official config and trains as V1 does (tensorflow/tpu efficientnet:
        # one size). Resolved per variant in resolve().
        progressive="official",
        train_crop="random",  # preprocessing.py preprocess_for_train: random crop
        cutout=False,  # only the fine-tuning preprocessing adds Cutout
        augment="official",  # per variant: official_augment() above
        optimizer="rmsprop",  # hparams.py train.optimizer
        loss="softmax",  # hparams.py train.loss_type None: softmax cross-entropy
        lr_min=0.0,  # hparams.py train.lr_min
        gradient_clip=0.0,  # hparams.py train.gclip
    ),
    "finetune": dict(
        learning_rate_per_256=0.0005,  # datasets.py ImagenetFt train.lr_base
        lr_schedule="constant",  # ImagenetFt train.lr_sched
        warmup_epochs=1.0,  # ImagenetFt train.lr_warmup_epoch
        weight_decay=1e-5,  # ImagenetFt train.weight_decay
        ema_decay=0.9996,  # ImagenetFt train.ema_decay
        label_smoothing=0.1,  # ImagenetFt train.label_smoothing
        epochs=15,  # ImagenetFt train.epochs
        batch_size=512,  # ImagenetFt train.batch_size
        # ImagenetFt train.min_steps 10000 at its batch_size 512: main.py trains max(min_steps, epochs x steps per
        # epoch) steps, so small datasets (CIFAR-10: 102 epochs) train far longer than epochs=15 says.
        min_examples=10000 * 512,
        dropout=1e-6,  # ImagenetFt model.dropout_rate
        stochastic_depth=0.2,  # ImagenetFt model.survival_prob 0.8
        progressive=False,  # ImagenetFt train.stages=0
        mixup_max=0.0,  # ImagenetFt data.mixup_alpha
        cutmix_max=0.0,  # ImagenetFt data.cutmix_alpha
        randaug_max=0.0,  # ImagenetFt data.augname='ft': no RandAugment ...
        train_crop="whole",  # ... preprocess_for_finetune: the whole image resized, no crop ...
        cutout=True,  # ... and Cutout with noise, half side image_size // 4
        augment="none",
        optimizer="rmsprop",  # hparams.py train.optimizer (ImagenetFt keeps it)
        loss="softmax",
        lr_min=0.0,
        gradient_clip=0.0,
    ),
    "imagenet21k": dict(
        learning_rate_per_256=0.008,  # datasets.py ImageNet21k train.lr_base
        lr_schedule="cosine",  # ImageNet21k train.lr_sched
        warmup_epochs=1.0,  # ImageNet21k train.lr_warmup_epoch
        epochs=60,  # ImageNet21k train.epochs
        weight_decay=1e-5,  # hparams.py train.weight_decay (ImageNet21k keeps it)
        ema_decay=0.9999,  # hparams.py train.ema_decay
        label_smoothing=0.0,  # ImageNet21k train.label_smoothing
        min_examples=0,
        dropout=1e-6,  # ImageNet21k model.dropout_rate
        stochastic_depth=0.0,  # ImageNet21k model.survival_prob 1.0
        progressive=False,  # ImageNet21k train.stages=0, sched=False ...
        image_size_max=224,  # ... train.isize=224 ...
        eval_size=224,  # ... eval.isize=224
        augment="none",  # ImageNet21k data.augname=None: "Disable all augmentation and mixup"
        randaug_max=0.0,
        mixup_max=0.0,  # ImageNet21k data.mixup_alpha
        cutmix_max=0.0,  # ImageNet21k data.cutmix_alpha
        train_crop="random",  # the random crop and flip of preprocess_for_train stay (augname only adds ops)
        cutout=False,
        optimizer="rmsprop",
        # main.py, data.multiclass: labels /= sum(labels), then softmax cross-entropy; --loss=sigmoid is the
        # documented alternative (hparams.py train.loss_type='sigmoid': sigmoid cross-entropy summed over classes).
        loss="multilabel_softmax",
        lr_min=0.0,
        gradient_clip=0.0,
    ),
    # CoAtNet paper, Appendix A.2 Table 8, column "ImageNet-1K pre-training" (CoAtNet-0/1/2/3). Stochastic depth
    # is per model (Table 8: 0.2 / 0.3 / 0.5 / 0.7): it is the variant table's drop_connect. Where the table is
    # silent (bn momentum, dropout), the EfficientNet values stay.
    "coatnet": dict(
        optimizer="adamw",  # Table 8 "Optimizer type: AdamW"
        learning_rate_per_256=1e-3 * 256 / 4096,  # Table 8 peak learning rate 1e-3 at train batch size 4096
        batch_size=4096,  # Table 8 train batch size
        epochs=300,  # Table 8 train epochs
        lr_schedule="cosine",  # Table 8 LR decay schedule: cosine
        lr_min=1e-5,  # Table 8 min learning rate
        # warmup_epochs: Table 8 warm-up 10K steps, at batch 4096 on ImageNet-1k's 1,281,167 images 31.97 epochs
        # (WARMUP_EPOCHS); left unset, runs shorter than 320 epochs warm up for a tenth of their epochs.
        weight_decay=0.05,  # Table 8 weight decay rate (AdamW: decoupled)
        gradient_clip=1.0,  # Table 8 gradient clip (global norm)
        ema_decay=0.0,  # Table 8 EMA decay rate: none
        label_smoothing=0.1,  # Table 8 label smoothing
        loss="softmax",  # Table 8 loss type: softmax
        mixup_max=0.8,  # Table 8 mixup alpha
        cutmix_max=0.0,  # Table 8 lists no CutMix
        augment="randaugment",  # Table 8 RandAugment: 2 layers (our num_layers), magnitude 15
        randaug_max=15.0,
        progressive=False,  # the paper trains at 224 px throughout (progressive learning stays available)
        train_crop="random",  # Inception-style random crop (Table 8 "center crop" is the evaluation crop)
        cutout=False,
        min_examples=0,
    ),
}


def _variant_values(c, values: dict) -> dict:
    """The recipe values that depend on the variant."""
    if values.get("augment") == "official":
        values["augment"] = official_augment(c.model)
    if values.get("progressive") == "official":
        values["progressive"] = not (c.model in V1_VARIANTS or c.model in LITE_VARIANTS)
    return values


def check_recipe(recipe: str, model: str) -> None:
    """Refuse a recipe that makes no sense for ``model``."""
    if recipe not in RECIPES:
        raise ValueError(f"Unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}.")
    if recipe == "coatnet" and not model.startswith("CoAtNet"):
        raise ValueError(f"--recipe=coatnet is the CoAtNet paper's training (AdamW, mixup 0.8, 300 epochs); {model} is "
                         "an EfficientNet: use --recipe=imagenet (its official recipe) or finetune.")


def resolve(config):
    """``config`` with every unset (None) field that the recipe covers filled from the recipe."""
    recipe = config.recipe or default_recipe(config.model)
    check_recipe(recipe, config.model)
    preset = {**GENERIC, **RECIPES[recipe]}
    if recipe == "coatnet":  # Table 8's stochastic depth per model is the variant table's drop_connect
        preset["stochastic_depth"] = get_variant(config.model).drop_connect
    values = {k: v for k, v in preset.items() if getattr(config, k) is None}
    return dataclasses.replace(config, recipe=recipe, **_variant_values(config, values))
