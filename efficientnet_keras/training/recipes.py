"""Recipe presets: the official settings a ``TrainConfig`` field takes when it is left unset (None).

``imagenet``: the per-variant ImageNet recipe of google/automl ``efficientnetv2`` (``hparams.py`` base_config,
``datasets.py`` ImageNet, ``effnetv2_configs.py`` for the per-variant values the progression reads).
``finetune``: the official fine-tuning recipe, ``datasets.py`` ``ImagenetFt`` (which ``Cifar10Ft``, ``FlowersFt``,
``CarsFt`` copy), for use with pretrained ``--weights``.

Every value names its source. A flag given explicitly always wins over the recipe.
"""

from __future__ import annotations

import dataclasses

__all__ = ["RECIPES", "resolve", "official_augment"]

# effnetv2_configs.py: V2-S/M/L/XL train with augname 'randaug'; V2-B0..B3 ("for fair comparison to
# EfficientNetV1") and every V1 (efficientnetv1_config) with 'effnetv1_autoaug', AutoAugment policy v0.
AUTOAUGMENT_VARIANTS = tuple(f"EfficientNetV2B{i}" for i in range(4)) + tuple(f"EfficientNetB{i}" for i in range(8))


def official_augment(model: str) -> str:
    """The augmentation the official code trains ``model`` with. Lite0-4 have no official training setting in
    google/automl; they take RandAugment like the V2 recipe."""
    return "autoaugment" if model in AUTOAUGMENT_VARIANTS else "randaugment"

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
        progressive=True,  # effnetv2_configs.py efficientnetv2_config: stages=4, sched=True
        train_crop="random",  # preprocessing.py preprocess_for_train: random crop
        cutout=False,  # only the fine-tuning preprocessing adds Cutout
        augment="official",  # per variant: official_augment() below
    ),
    "finetune": dict(
        learning_rate_per_256=0.0005,  # datasets.py ImagenetFt train.lr_base
        lr_schedule="constant",  # ImagenetFt train.lr_sched
        warmup_epochs=1.0,  # ImagenetFt train.lr_warmup_epoch
        weight_decay=1e-5,  # ImagenetFt train.weight_decay
        ema_decay=0.9996,  # ImagenetFt train.ema_decay
        label_smoothing=0.1,  # ImagenetFt train.label_smoothing
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
    ),
}


def resolve(config):
    """``config`` with every unset (None) field that the recipe covers filled from the recipe."""
    if config.recipe not in RECIPES:
        raise ValueError(f"Unknown recipe {config.recipe!r}; choose one of {', '.join(RECIPES)}.")
    values = {k: v for k, v in RECIPES[config.recipe].items() if getattr(config, k) is None}
    if values.get("augment") == "official":
        values["augment"] = official_augment(config.model)
    return dataclasses.replace(config, **values)
