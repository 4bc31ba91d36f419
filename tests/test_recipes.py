"""Recipe presets: unset fields take the recipe's values, per variant where the official code differs."""

import pytest

from efficientnet_keras.training import trainer
from efficientnet_keras.training.data import DatasetInfo
from efficientnet_keras.training.recipes import RECIPES, default_warmup, resolve
from efficientnet_keras.training.trainer import TrainConfig


@pytest.mark.parametrize("model, expected", [
    ("EfficientNetV2B0", "autoaugment"), ("EfficientNetV2B3", "autoaugment"), ("EfficientNetB4", "autoaugment"),
    ("EfficientNetV2S", "randaugment"), ("EfficientNetV2XL", "randaugment"), ("EfficientNetLite0", "randaugment"),
])
def test_imagenet_recipe_takes_the_variants_official_augmentation(model, expected):
    assert resolve(TrainConfig(model=model)).augment == expected


def test_explicit_values_win_and_finetune_turns_augmentation_off():
    assert resolve(TrainConfig(model="EfficientNetV2B0", augment="randaugment")).augment == "randaugment"
    tuned = resolve(TrainConfig(model="EfficientNetV2S", recipe="finetune", learning_rate_per_256=0.001))
    assert tuned.augment == "none" and tuned.learning_rate_per_256 == 0.001
    assert tuned.ema_decay == RECIPES["finetune"]["ema_decay"] == 0.9996


def test_every_recipe_field_is_a_config_field():
    fields = set(TrainConfig.__dataclass_fields__)
    for recipe in RECIPES.values():
        assert set(recipe) <= fields


# effnetv2_configs.py eval isize of every EfficientNetV2 config; main.py evaluates at it.
OFFICIAL_EVAL_SIZES = {"EfficientNetV2B0": 224, "EfficientNetV2B1": 240, "EfficientNetV2B2": 260,
                       "EfficientNetV2B3": 300, "EfficientNetV2S": 384, "EfficientNetV2M": 480,
                       "EfficientNetV2L": 480, "EfficientNetV2XL": 512}
INFO = DatasetInfo("imagenet-like", 1000, 100_000, 1000)


def _plan(**fields):
    config = resolve(TrainConfig(**fields))
    return config, trainer._plan(config, trainer.variant_of(config), INFO, 1)


@pytest.mark.parametrize("model, size", sorted(OFFICIAL_EVAL_SIZES.items()))
def test_every_v2_config_is_evaluated_at_its_official_eval_size(model, size):
    _, plan = _plan(model=model)
    assert plan.eval_size == size
    assert len(plan.stages) == 4  # effnetv2_configs.py: stages=4 for every V2 config


@pytest.mark.parametrize("model, train_size, eval_size", [
    ("EfficientNetB0", 176, 224), ("EfficientNetB1", 192, 240), ("EfficientNetB3", 240, 300),
    ("EfficientNetB7", 480, 600)])
def test_v1_trains_at_one_size_of_0_8_of_its_eval_size(model, train_size, eval_size):
    """efficientnetv1_config: no stages, train isize=0.8 -> int(eval x 0.8) // 16 * 16 (main.py)."""
    config, plan = _plan(model=model)
    assert config.progressive is False and [s.image_size for s in plan.stages] == [train_size]
    assert plan.eval_size == eval_size and config.augment == "autoaugment"


def test_finetune_recipe_sets_the_official_epochs_and_batch_and_flags_still_win():
    tuned = resolve(TrainConfig(model="EfficientNetV2S", recipe="finetune", weights="imagenet"))
    assert (tuned.epochs, tuned.batch_size) == (15, 512)  # datasets.py ImagenetFt
    mine = resolve(TrainConfig(model="EfficientNetV2S", recipe="finetune", weights="imagenet", epochs=3, batch_size=8))
    assert (mine.epochs, mine.batch_size) == (3, 8)
    assert (resolve(TrainConfig()).epochs, resolve(TrainConfig()).batch_size) == (8, 64)  # imagenet: generic


def test_imagenet21k_recipe_is_the_official_one():
    """datasets.py ImageNet21k: lr_base 0.008, cosine, 1 warm-up epoch, 60 epochs, no label smoothing, no
    augmentation or mixing, dropout 1e-6, survival 1.0, one stage at 224 px; main.py's multi-class loss."""
    c = resolve(TrainConfig(model="EfficientNetV2S", recipe="imagenet21k"))
    assert (c.learning_rate_per_256, c.lr_schedule, c.warmup_epochs, c.epochs) == (0.008, "cosine", 1.0, 60)
    assert (c.label_smoothing, c.augment, c.mixup_max, c.cutmix_max) == (0.0, "none", 0.0, 0.0)
    assert (c.dropout, c.stochastic_depth, c.progressive) == (1e-6, 0.0, False)
    assert (c.image_size_max, c.eval_size, c.loss) == (224, 224, "multilabel_softmax")


# CoAtNet paper (arXiv 2106.04803v2) Appendix A.2, Table 8, "ImageNet-1K pre-training" column.
TABLE_8 = dict(optimizer="adamw", peak_lr=1e-3, batch_size=4096, epochs=300, lr_schedule="cosine", lr_min=1e-5,
               warmup_steps=10_000, weight_decay=0.05, gradient_clip=1.0, ema_decay=0.0, label_smoothing=0.1,
               loss="softmax", mixup=0.8, randaug=(2, 15.0))
TABLE_8_STOCHASTIC_DEPTH = {"CoAtNet0": 0.2, "CoAtNet1": 0.3, "CoAtNet2": 0.5, "CoAtNet3": 0.7}


@pytest.mark.parametrize("model, rate", sorted(TABLE_8_STOCHASTIC_DEPTH.items()))
def test_coatnet_recipe_is_table_8(model, rate):
    from efficientnet_keras.training import randaugment

    c = resolve(TrainConfig(model=model))  # the default recipe of a CoAtNet
    assert c.recipe == "coatnet" and c.stochastic_depth == rate
    assert (c.optimizer, c.batch_size, c.epochs) == (TABLE_8["optimizer"], TABLE_8["batch_size"], TABLE_8["epochs"])
    assert c.learning_rate_per_256 * c.batch_size / 256 == pytest.approx(TABLE_8["peak_lr"])
    assert (c.lr_schedule, c.lr_min) == (TABLE_8["lr_schedule"], TABLE_8["lr_min"])
    steps_per_epoch = 1_281_167 / TABLE_8["batch_size"]  # ImageNet-1k's training images
    assert default_warmup(c.recipe, c.epochs) * steps_per_epoch == pytest.approx(TABLE_8["warmup_steps"])
    assert default_warmup(c.recipe, 30) == pytest.approx(30 * 10_000 / steps_per_epoch / 300)  # the same share
    assert default_warmup("imagenet", 8) == pytest.approx(0.8) and default_warmup("imagenet", 350) == 5.0
    assert (c.weight_decay, c.gradient_clip, c.ema_decay) == (0.05, 1.0, 0.0)
    assert (c.label_smoothing, c.loss, c.mixup_max, c.cutmix_max) == (0.1, "softmax", 0.8, 0.0)
    assert (randaugment.NUM_LAYERS, c.randaug_max, c.augment) == (*TABLE_8["randaug"], "randaugment")
    assert c.progressive is False
    _, plan = _plan(model=model)
    assert [s.image_size for s in plan.stages] == [224] and plan.eval_size == 224


def test_progressive_learning_stays_available_for_coatnet():
    _, plan = _plan(model="CoAtNet0", progressive=True, image_size_min=128)
    assert [s.image_size for s in plan.stages] == [152, 176, 200, 224]
    assert [s.mixup_alpha for s in plan.stages] == pytest.approx([0.0, 0.8 / 3, 1.6 / 3, 0.8])


def test_fixed_regularization_holds_every_stage_at_the_last_ones():
    """--adaptive_regularization=false: the paper's "w/o adaptive" arm."""
    _, adaptive = _plan(model="EfficientNetV2S", progression="paper")
    _, held = _plan(model="EfficientNetV2S", progression="paper", adaptive_regularization=False)
    assert [s.image_size for s in held.stages] == [s.image_size for s in adaptive.stages]
    last = adaptive.stages[-1]
    assert adaptive.stages[0].randaug_magnitude < last.randaug_magnitude
    for s in held.stages:
        assert (s.randaug_magnitude, s.mixup_alpha, s.dropout) == (last.randaug_magnitude, last.mixup_alpha,
                                                                   last.dropout)
