"""The progressive-learning callback, observed inside a compiled fit: sizes, regularization, logs."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import efficientnet_keras as ek
from efficientnet_keras.training import data
from efficientnet_keras.training.data import Stage, StageState
from efficientnet_keras.training.progressive import (OFFICIAL, PAPER, ProgressiveConfig, ProgressiveLearning,
                                                     preset_for, scale_batch, stage_for_epoch)
from conftest import count_traces

TINY = ["r2_k3_s1_e1_i16_o16_c1", "r2_k3_s2_e4_i16_o24_c1", "r1_k3_s2_e4_i24_o32_se0.25", "r1_k3_s2_e4_i32_o48",
        "r1_k3_s2_e4_i48_o64"]


def test_official_progression():
    """main.py: size int(128 + (S - 128)(i + 1) / 4), RandAugment linspace(5, ram, 4), mixup and CutMix
    linspace(0, alpha, 4), dropout fixed; epochs int(s E / M) .. int((s + 1) E / M) - 1 per stage."""
    stages = OFFICIAL["EfficientNetV2S"].stages()
    assert [s.image_size for s in stages] == [171, 214, 257, 300]
    assert [s.randaug_magnitude for s in stages] == pytest.approx([5, 5 + 5 / 3, 5 + 10 / 3, 10])
    assert [s.dropout for s in stages] == pytest.approx([0.2] * 4)
    m = OFFICIAL["EfficientNetV2M"].stages()
    assert [s.image_size for s in m] == [192, 256, 320, 384]
    assert [s.mixup_alpha for s in m] == [s.cutmix_alpha for s in m] == pytest.approx([0, 0.2 / 3, 0.4 / 3, 0.2])
    assert OFFICIAL["EfficientNetV2L"].stages()[-1].randaug_magnitude == 20
    assert [stage_for_epoch(e, 10, 4) for e in range(10)] == [0, 0, 1, 1, 1, 2, 2, 3, 3, 3]
    assert [stage_for_epoch(e, 350, 4) for e in (86, 87, 174, 175, 261, 262)] == [0, 1, 1, 2, 2, 3]


def test_paper_progression():
    """Algorithm 1 and Table 6: sizes from S_0 to S_e, dropout grows with them."""
    stages = PAPER["EfficientNetV2S"].stages()
    assert [s.image_size for s in stages] == [128, 185, 242, 300]
    assert [s.randaug_magnitude for s in stages] == pytest.approx([5, 25 / 3, 35 / 3, 15])
    assert [s.dropout for s in stages] == pytest.approx([0.1, 0.1 + 0.2 / 3, 0.1 + 0.4 / 3, 0.3])
    assert PAPER["EfficientNetV2L"].stages()[-1].mixup_alpha == pytest.approx(0.4)
    b0 = preset_for("EfficientNetV2B0", 192, 0.2, "paper").stages()
    assert [s.image_size for s in b0] == [128, 149, 170, 192] and b0[0].dropout == pytest.approx(0.1)
    assert [s.image_size for s in preset_for("EfficientNetV2B0", 192, 0.2).stages()] == [144, 160, 176, 192]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(image_size=(16, 64)), "sizes must be >= 32"),
        (dict(image_size=(128, 64)), "min <= max"),
        (dict(dropout=(0.1, 1.0)), "must stay below 1"),
        (dict(mixup_alpha=(-1, 0)), "must not be negative"),
        (dict(num_stages=0), "num_stages must be >= 1"),
        (dict(progression="fast"), "progression must be one of official, paper"),
    ],
)
def test_inconsistent_stage_settings(kwargs, message):
    base = dict(image_size=(32, 64), randaug_magnitude=(5, 15), mixup_alpha=(0, 0), dropout=(0.1, 0.3))
    with pytest.raises(ValueError, match=message):
        ProgressiveConfig(**{**base, **kwargs})


def test_scale_batch_keeps_pixels_per_batch_up_to_the_cap():
    stages = PAPER["EfficientNetV2S"].stages()  # 128, 185, 242, 300 px
    # (300/128)^2 = 5.49 -> capped at 4; (300/185)^2 = 2.63; (300/242)^2 = 1.54; rounded down to multiples of 8.
    assert [s.batch_size for s in scale_batch(stages, 64, 4.0, multiple=8)] == [256, 168, 96, 64]
    assert [s.batch_size for s in scale_batch(stages, 64, 1.0)] == [64, 64, 64, 64]
    assert [s.image_size for s in scale_batch(stages, 64, 4.0)] == [128, 185, 242, 300]  # nothing else changes
    with pytest.raises(ValueError, match="max batch scale must be >= 1"):
        scale_batch(stages, 64, 0.5)


def test_callback_needs_enough_epochs():
    with pytest.raises(ValueError, match="4 stages need at least 4 epochs"):
        ProgressiveLearning([Stage(32, 0, 0, 0)] * 4, 3, StageState())


def test_stage_changes_are_observed_inside_fit():
    """Record what the compiled train step really receives, and check what the model really did with it."""
    train, _, info = data.load_source("digits")
    train = data.limit(train, 64)
    stages = [Stage(32, 0, 0, dropout=0.0, stochastic_depth=0.0),
              Stage(48, 10, 0.2, dropout=0.9, stochastic_depth=0.5, cutmix_alpha=1.0)]
    state = StageState()
    batches = []

    def record(images, labels):
        tf.py_function(lambda a, b: batches.append((a.numpy(), b.numpy())), [images, labels], [])
        return images, labels

    ds = data.make_train_dataset(train, info, stages, state, batch_size=32, seed=0, deterministic=True)
    ds = ds.map(record)
    model = ek.build_efficientnet(TINY, default_size=32, family="v2", input_shape=(None, None, 3), classes=10,
                                  classifier_activation=None, dropout_rate=0.0, drop_connect_rate=0.0)
    loss_fn = keras.losses.CategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss=loss_fn)  # lr 0: the weights never change
    traces = count_traces(model)
    callback = ProgressiveLearning(stages, epochs=4, state=state, seed=0, verbose=0)
    history = model.fit(ds, epochs=4, callbacks=[callback], shuffle=False, verbose=0)

    # The dataset yielded 32 px in stage 1 (epochs 1-2) and 48 px in stage 2 (epochs 3-4), two batches each.
    assert [b[0].shape[1] for b in batches] == [32, 32, 32, 32, 48, 48, 48, 48]
    # Recompute each epoch's loss on the recorded batches without dropout: stage 1 matches what fit logged
    # (no dropout there), stage 2 does not (fit's compiled step applied dropout 0.9 and stochastic depth 0.5).
    ek.set_regularization(model, dropout=0.0, stochastic_depth=0.0)
    clean = [np.mean([float(loss_fn(b[1], model(b[0], training=True))) for b in batches[2 * e: 2 * e + 2]])
             for e in range(4)]
    logged = history.history["loss"]
    assert logged[:2] == pytest.approx(clean[:2], abs=1e-4)
    assert all(abs(logged[e] - clean[e]) > 1e-2 for e in (2, 3))
    # Stage 1: no RandAugment (bicubic-resized pixels are fractional), one-hot labels. Stage 2: RandAugment's uint8
    # output (the CutMix half is whole pixels of two such images), mixup on the first half (a weight >= 1/2 per
    # example) and CutMix on the second (one label weight, the boxes' mean area, for all of it).
    for images, labels in batches[:4]:
        assert np.any(images != np.round(images)) and set(np.unique(labels)) == {0.0, 1.0}
    for images, labels in batches[4:]:
        np.testing.assert_array_equal(images[16:], np.round(images[16:]))
        own = labels.max(axis=1)
        assert (own[:16] >= 0.5).all() and len(np.unique(np.round(own[:16], 5))) > 1
        mixed = own[16:][labels[16:].max(axis=1) < 1]  # rows whose partner has another class
        assert len(mixed) and np.allclose(mixed, mixed[0])
    # The stage's settings reach the logs (TensorBoard, CSV).
    assert history.history["image_size"] == [32, 32, 48, 48]
    assert history.history["dropout"] == pytest.approx([0, 0, 0.9, 0.9])
    # One traced train step served both stages: new sizes and rates needed no re-trace.
    assert len(traces) == 1
