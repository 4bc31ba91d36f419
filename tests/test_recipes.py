"""Recipe presets: unset fields take the recipe's values, per variant where the official code differs."""

import pytest

from efficientnet_keras.training.recipes import RECIPES, resolve
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
