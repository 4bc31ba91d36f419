"""Fine-tuning that freezes: frozen weights and BatchNorm statistics do not move in a fit, nor across a resume."""

import json
import os

import keras
import numpy as np
import pytest

from efficientnet_keras.training import freeze as freeze_lib
from efficientnet_keras.training.trainer import TrainConfig, train

TINY = "r1_k3_s1_e1_i16_o16_c1,r2_k3_s2_e4_i16_o24_c1,r2_k3_s2_e4_i24_o32_se0.25,r1_k3_s2_e4_i32_o48_se0.25"
CONFIG = dict(dataset="digits", model="EfficientNetV2B0", blocks=TINY, train_examples=96, eval_examples=32,
              batch_size=32, epochs=2, progressive=False, image_size_max=32, optimizer="adamw",
              learning_rate_per_256=0.05, ema_decay=0.9, augment="none", verbose=0)


class _Snapshot(keras.callbacks.Callback):
    """Every layer's weights (BatchNorm statistics included) when training begins, and a stop after ``stop_after``
    epochs (an interrupted run)."""

    def __init__(self, stop_after=None):
        super().__init__()
        self.stop_after, self.weights = stop_after, None

    def on_train_begin(self, logs=None):
        if self.weights is None:
            self.weights = {layer.name: [np.array(w) for w in layer.get_weights()] for layer in self.model.layers}

    def on_epoch_end(self, epoch, logs=None):
        if self.stop_after is not None and epoch + 1 >= self.stop_after:
            self.model.stop_training = True


def _moved(before, model):
    """Layer name -> whether any of its weights differ from ``before``."""
    return {layer.name: any(not np.array_equal(a, np.array(b)) for a, b in
                            zip(before[layer.name], layer.get_weights(), strict=True))
            for layer in model.layers if layer.weights}


@pytest.mark.slow
def test_frozen_stages_and_their_batchnorm_statistics_do_not_move_across_a_fit_and_a_resume(tmp_path):
    run = str(tmp_path / "run")
    first = _Snapshot(stop_after=1)
    train(TrainConfig(**CONFIG, freeze="block2", model_dir=run), callbacks=[first])  # stopped after epoch 1
    result = train(TrainConfig(**CONFIG, freeze="block2", model_dir=run, resume=True))  # epoch 2, resumed
    moved = _moved(first.weights, result["model"])
    frozen = {name for name in moved if name.startswith(("stem", "block1", "block2"))}
    assert frozen and not any(moved[name] for name in frozen)  # bit-identical, BatchNorm statistics included
    assert "stem_bn" in frozen and "block2b_expand_bn" in frozen
    assert all(moved[name] for name in moved if name.startswith(("block3", "block4", "top", "predictions")))
    with open(os.path.join(run, "results.json")) as f:
        record = json.load(f)
    assert record["freeze"] == "block2" and set(record["frozen_layers"]) == frozen
    saved = keras.saving.load_model(os.path.join(run, "model.keras"))
    assert set(freeze_lib.frozen_layers(saved)) == frozen  # the saved model records what was frozen


@pytest.mark.slow
def test_backbone_freeze_trains_only_the_classifier(tmp_path):
    snapshot = _Snapshot()
    result = train(TrainConfig(**{**CONFIG, "epochs": 1}, freeze="backbone", model_dir=str(tmp_path / "run")),
                   callbacks=[snapshot])
    moved = _moved(snapshot.weights, result["model"])
    assert [name for name, changed in moved.items() if changed] == ["predictions"]


def test_freeze_helper_names_the_stages_a_model_has():
    from efficientnet_keras import EfficientNetLite0

    model = EfficientNetLite0(weights=None, input_shape=(64, 64, 3))
    assert freeze_lib.stage_names(model) == ["stem"] + [f"block{i}" for i in range(1, 8)]
    frozen = freeze_lib.freeze(model, "block3")
    assert "block3b_project_bn" in frozen and not any(n.startswith(("block4", "top")) for n in frozen)
    assert model.get_layer("block4a_expand_conv").trainable and not model.get_layer("stem_conv").trainable
    with pytest.raises(ValueError, match="freeze='block8' names no stage of efficientnet-lite0; it has backbone"):
        freeze_lib.freeze(EfficientNetLite0(weights=None, input_shape=(64, 64, 3)), "block8")


class _EpochWeights(keras.callbacks.Callback):
    """Every layer's weights at the start of training and after each epoch."""

    def __init__(self):
        super().__init__()
        self.after = []

    def on_train_begin(self, logs=None):
        self.start = {layer.name: [np.array(w) for w in layer.get_weights()] for layer in self.model.layers}

    def on_epoch_end(self, epoch, logs=None):
        self.after.append({layer.name: [np.array(w) for w in layer.get_weights()] for layer in self.model.layers})


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["adamw", "rmsprop"])
def test_two_phase_schedule_holds_the_backbone_then_trains_everything_but_batchnorm(tmp_path, optimizer):
    """Keras' transfer-learning guide: the classifier first (backbone held still: weights, decoupled weight decay
    and averages), then every layer at a lower rate, BatchNorm layers kept in inference mode throughout."""
    record = _EpochWeights()
    train(TrainConfig(**{**CONFIG, "epochs": 3, "optimizer": optimizer, "weight_decay": 0.05}, freeze="backbone",
                      unfreeze_after=2, model_dir=str(tmp_path / "run")), callbacks=[record])
    start, first, second, third = record.start, *record.after

    def moved(before, after, name):
        return any(not np.array_equal(a, b) for a, b in zip(before[name], after[name], strict=True))

    weighted = [name for name, weights in start.items() if weights]
    batchnorm = [name for name in weighted if name.endswith("bn")]
    others = [name for name in weighted if name not in batchnorm and name != "predictions"]
    assert batchnorm and others
    for epoch in (first, second):  # phase 1: only the classifier moves (the EMA copy is not swapped in here)
        assert [name for name in weighted if moved(start, epoch, name)] == ["predictions"]
    assert all(moved(second, third, name) for name in others + ["predictions"])  # phase 2
    assert not any(moved(start, third, name) for name in batchnorm)  # weights and statistics, both phases


def test_unfreeze_needs_freeze_and_fits_the_epochs(tmp_path):
    with pytest.raises(ValueError, match="unfreeze_after=2 needs --freeze and 0 < unfreeze_after < epochs=2"):
        train(TrainConfig(**CONFIG, freeze="backbone", unfreeze_after=2, model_dir=str(tmp_path / "run")))

