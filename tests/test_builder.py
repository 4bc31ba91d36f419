"""The generic builder: custom networks from strings, scaling rules, checks, endpoints, regularization, FLOPs."""

import keras
import numpy as np
import pytest

import efficientnet_keras as ek
from efficientnet_keras.builder import LITE, V1, V2
from conftest import count_traces, random_images

TINY = ["r1_k3_s1_e1_i16_o16_c1", "r2_k3_s2_e4_i16_o24_c1", "r2_k5_s2_e4_i24_o32_se0.25", "r1_k3_s2_e4_i32_o48_se0.25",
        "r2_k3_s2_e6_i48_o64_se0.25"]


def tiny(**kwargs):
    kwargs.setdefault("family", V2)
    kwargs.setdefault("default_size", 64)
    return ek.build_efficientnet(TINY, **kwargs)


def test_custom_network_from_strings():
    model = tiny(classes=7, name="tiny")
    assert model.name == "tiny" and model.output_shape == (None, 7)
    layer_names = [l.name for l in model.layers]
    assert "block1a_project_conv" in layer_names and "block2b_add" in layer_names
    assert "block3a_se_excite" in layer_names and "block1a_se_excite" not in layer_names
    # Fused-MBConv with expansion: a strided k x k expand conv, then a 1x1 project conv.
    assert model.get_layer("block2a_expand_conv").strides == (2, 2)
    assert model.get_layer("block2a_expand_conv").kernel_size == (3, 3)
    assert model.get_layer("block2a_project_conv").kernel_size == (1, 1)
    # MBConv: 1x1 expand, depthwise k x k ("dwconv2" in V2 naming), SE sized from the block's input filters.
    assert model.get_layer("block3a_dwconv2").kernel_size == (5, 5)
    assert model.get_layer("block3a_se_reduce").filters == 24 // 4
    out = model(random_images(2, 64), training=False)
    assert np.allclose(keras.ops.convert_to_numpy(out).sum(1), 1, atol=1e-5)


@pytest.mark.parametrize("width, filters, expected", [(1.0, 32, 32), (1.1, 16, 16), (1.2, 40, 48), (2.0, 320, 640),
                                                      (1.4, 24, 32), (0.25, 16, 8)])
def test_round_filters(width, filters, expected):
    assert ek.round_filters(filters, width) == expected


def test_round_filters_guard_differs_between_families():
    # 17 * 0.7 = 11.9 rounds to 8, but 8 < 0.9 * 11.9 so V1/Lite add a divisor: 16. V2 keeps 8.
    assert ek.round_filters(17, 0.7, guard=True) == 16
    assert ek.round_filters(17, 0.7, guard=False) == 8


def test_depth_scaling_and_lite_fixed_stages():
    assert ek.round_repeats(3, 3.1) == 10
    lite4 = ek.EfficientNetLite4(weights=None, include_top=False, input_shape=(64, 64, 3))
    names = {l.name for l in lite4.layers}
    # Lite keeps the first and last stage at 1 repeat and the stem at 32 filters, whatever the coefficients.
    assert "block1a_project_conv" in names and "block1b_project_conv" not in names
    assert "block7a_project_conv" in names and "block7b_project_conv" not in names
    assert "block6h_project_conv" in names  # 4 repeats * 1.8 -> 8
    assert lite4.get_layer("stem_conv").filters == 32 and lite4.get_layer("top_conv").filters == 1280
    assert lite4.get_layer("block1a_activation").activation.__name__ == "relu6"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(width_coefficient=0), "width_coefficient must be a positive number"),
        (dict(width_coefficient=-1.0), "width_coefficient must be a positive number"),
        (dict(depth_coefficient=0), "depth_coefficient must be a positive number"),
        (dict(dropout_rate=1.0), "dropout_rate must be in"),
        (dict(drop_connect_rate=-0.1), "drop_connect_rate must be in"),
        (dict(default_size=16), "default_size must be an integer >= 32"),
        (dict(pooling="mean", include_top=False), "pooling must be None, 'avg' or 'max'"),
        (dict(classes=0), "classes must be a positive integer"),
        (dict(family="v3"), "Unknown family 'v3'"),
    ],
)
def test_bad_coefficients(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny(**kwargs)


def test_bad_block_string_reaches_the_user():
    with pytest.raises(ValueError, match=r"token 5 'x24'"):
        ek.build_efficientnet(["r2_k3_s1_e1_x24"])


def test_stages_must_chain():
    with pytest.raises(ValueError, match=r"Stage 2 \('r1_k3_s2_e4_i24_o32'\) takes i24 .* stage 1 gives 16"):
        ek.build_efficientnet(["r1_k3_s1_e1_i16_o16", "r1_k3_s2_e4_i24_o32"], default_size=64)


@pytest.mark.parametrize(
    "shape, message",
    [
        ((31, 64, 3), "at least 32x32"),
        ((64, 16, 3), "at least 32x32"),
        ((64, 64), "3 entries"),
    ],
)
def test_bad_input_shapes(shape, message):
    with pytest.raises(ValueError, match=message):
        tiny(input_shape=shape)


def test_top_with_variable_input_size():
    model = tiny(input_shape=(None, None, 3), classes=4)
    for size in (32, 48):
        assert model(random_images(1, size)).shape == (1, 4)


def test_other_channel_counts_without_pretrained_weights():
    for family in (V1, V2, LITE):
        for channels in (1, 4):
            model = tiny(family=family, include_top=False, input_shape=(None, None, channels))
            assert model.output_shape == (None, None, None, 1280)


def test_channels_first():
    keras.config.set_image_data_format("channels_first")
    model = tiny(include_top=False, input_shape=(3, 64, 64))
    assert model.output_shape == (None, 1280, 2, 2)
    assert ek.feature_layer_names(model)[8] == model.layers[[l.name for l in model.layers].index("block3b_add")].name


def test_feature_endpoints():
    model = ek.EfficientNetB0(weights=None, include_top=False, input_shape=(224, 224, 3))
    names = ek.feature_layer_names(model)
    assert names == {2: "block1a_project_bn", 4: "block2b_add", 8: "block3b_add", 16: "block5c_add",
                     32: "top_activation"}
    features = ek.feature_extractor(model)
    out = features(random_images(1, 224))
    assert {k: tuple(v.shape[1:3]) for k, v in out.items()} == {
        "P1": (112, 112), "P2": (56, 56), "P3": (28, 28), "P4": (14, 14), "P5": (7, 7)}
    v2 = ek.feature_extractor(tiny(include_top=False, input_shape=(64, 64, 3)), strides=(8, 32))
    assert [tuple(t.shape[1:3]) for t in v2.outputs] == [(8, 8), (2, 2)]
    with pytest.raises(ValueError, match="not an EfficientNet"):
        ek.feature_layer_names(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]))


def test_feature_endpoints_of_keras_applications_model():
    model = keras.applications.EfficientNetV2B0(weights=None, include_top=False, input_shape=(64, 64, 3))
    assert ek.feature_layer_names(model)[16] == "block5e_add"


def test_stochastic_depth_rates_rise_linearly():
    model = ek.EfficientNetB0(weights=None, drop_connect_rate=0.2)
    drops = [l for l in model.layers if isinstance(l, ek.StochasticDepth)]
    fractions = [l.depth_fraction for l in drops]
    assert fractions == sorted(fractions) and 0 < fractions[0] and fractions[-1] < 1
    assert all(abs(l.rate - 0.2 * l.depth_fraction) < 1e-9 for l in drops)
    assert ek.get_regularization(model) == pytest.approx({"dropout": 0.2, "stochastic_depth": 0.2})


def _losses(model, x, y, n=2):
    return [float(model.train_on_batch(x, y)) for _ in range(n)]


def test_set_regularization_takes_effect_inside_compiled_training():
    """Observed, not read back: the compiled train step's loss changes exactly when the rates change."""
    model = tiny(classes=3, classifier_activation=None, dropout_rate=0.0, drop_connect_rate=0.0)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = random_images(8, 64), np.arange(8) % 3
    clean = _losses(model, x, y)
    assert clean[0] == pytest.approx(clean[1], abs=1e-6)  # lr 0, no noise: the step is deterministic

    ek.set_regularization(model, dropout=0.9)
    noisy = _losses(model, x, y)
    assert noisy[0] != pytest.approx(noisy[1], abs=1e-6) and noisy[0] != pytest.approx(clean[0], abs=1e-6)

    ek.set_regularization(model, dropout=0.0, stochastic_depth=0.9)
    deep = _losses(model, x, y)
    assert deep[0] != pytest.approx(deep[1], abs=1e-6)
    assert ek.get_regularization(model) == pytest.approx({"dropout": 0.0, "stochastic_depth": 0.9})

    ek.set_regularization(model, stochastic_depth=0.0)
    assert _losses(model, x, y) == pytest.approx(clean, abs=1e-5)
    # Inference never drops anything.
    ek.set_regularization(model, dropout=0.5, stochastic_depth=0.5)
    a, b = model.predict(x, verbose=0), model.predict(x, verbose=0)
    np.testing.assert_array_equal(a, b)


def test_changing_rates_does_not_retrace_the_train_step():
    """On TensorFlow, rates live in run-time variables after the first change: later changes (progressive stage
    switches) are assignments that the already-traced step obeys, not re-traces (~20 s each for V2-B0 on CPU)."""
    model = tiny(classes=3, classifier_activation=None, dropout_rate=0.0, drop_connect_rate=0.0)
    weights = len(model.weights)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    traces = count_traces(model)
    x, y = random_images(8, 64), np.arange(8) % 3

    ek.set_regularization(model, dropout=0.0, stochastic_depth=0.0)
    clean = _losses(model, x, y)
    ek.set_regularization(model, dropout=0.9)
    noisy = _losses(model, x, y)
    ek.set_regularization(model, dropout=0.0, stochastic_depth=0.9)
    deep = _losses(model, x, y)
    ek.set_regularization(model, dropout=0.0, stochastic_depth=0.0)
    again = _losses(model, x, y)

    assert len(traces) == 1
    assert noisy[0] != pytest.approx(clean[0], abs=1e-4) and noisy[0] != pytest.approx(noisy[1], abs=1e-6)
    assert deep[0] != pytest.approx(clean[0], abs=1e-4) and deep[0] != pytest.approx(deep[1], abs=1e-6)
    assert again == pytest.approx(clean, abs=1e-6)  # rate 0 from a variable is the exact identity
    assert len(model.weights) == weights  # the rate variables are not weights: weight files are unchanged


def test_set_regularization_on_a_keras_dropout_top():
    """keras.applications models end in ``keras.layers.Dropout(name="top_dropout")``: its rate changes too."""
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Dropout(0.2, name="top_dropout")(inputs)))
    ek.set_regularization(model, dropout=0.5)
    assert ek.get_regularization(model)["dropout"] == 0.5


def test_set_regularization_inside_fit_from_a_callback():
    model = tiny(classes=3, classifier_activation=None, dropout_rate=0.0, drop_connect_rate=0.0)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = random_images(8, 64), np.arange(8) % 3

    class Switch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            ek.set_regularization(self.model, dropout=0.0 if epoch < 2 else 0.95)

    history = model.fit(x, y, batch_size=8, epochs=4, shuffle=False, verbose=0, callbacks=[Switch()])
    loss = history.history["loss"]
    assert loss[0] == pytest.approx(loss[1], abs=1e-6)
    assert loss[2] != pytest.approx(loss[0], abs=1e-4) and loss[3] != pytest.approx(loss[2], abs=1e-6)


def test_set_regularization_errors():
    model = tiny(include_top=False)
    with pytest.raises(ValueError, match="no 'top_dropout' layer"):
        ek.set_regularization(model, dropout=0.1)
    with pytest.raises(ValueError, match=r"stochastic_depth must be in \[0, 1\)"):
        ek.set_regularization(model, stochastic_depth=1.0)


def test_serialization_round_trip(tmp_path):
    model = tiny(classes=5)
    path = str(tmp_path / "tiny.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    x = random_images(2, 64)
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    assert any(isinstance(l, ek.StochasticDepth) for l in restored.layers)


def test_logits_stay_float32_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = tiny(classes=3)
        assert model.get_layer("stem_conv").compute_dtype == "float16"
        assert model.get_layer("predictions").compute_dtype == "float32"
        assert model(random_images(1, 64)).dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("family", [V1, V2])  # MBConv and Fused-MBConv stages
def test_a_noskip_stage_builds_without_residual_adds(family):
    """``noskip`` removes the identity shortcut of every block of its stage (and only there): the same weights
    give other outputs than the network with the shortcut."""
    blocks = ["r2_k3_s1_e1_i16_o16_c1_noskip", "r2_k3_s1_e4_i16_o16_se0.25"]
    strings = [blocks[0] if family is V2 else blocks[0].replace("_c1", ""), blocks[1]]
    kwargs = dict(family=family, default_size=32, input_shape=(32, 32, 3), classes=3, classifier_activation=None)
    noskip = ek.build_efficientnet(strings, **kwargs)
    skip = ek.build_efficientnet([strings[0].replace("_noskip", ""), strings[1]], **kwargs)
    adds = [layer.name for layer in noskip.layers if isinstance(layer, keras.layers.Add)]
    assert adds == ["block2a_add", "block2b_add"]  # stage 1 (noskip) has none; stage 2 keeps its shortcuts
    assert "block1b_add" in [layer.name for layer in skip.layers]
    skip.set_weights(noskip.get_weights())
    images = random_images(2, 32)
    a, b = noskip.predict(images, verbose=0), skip.predict(images, verbose=0)
    assert np.all(np.isfinite(a)) and np.abs(a - b).max() > 1e-3
