"""Equivalence with keras.applications: same layer names and weight shapes, same numbers with the same weights."""

import re

import keras
import numpy as np
import pytest

import efficientnet_keras as ek
from efficientnet_keras.layers import BatchNormalization
from conftest import random_images

# Variant -> keras.applications constructor (every variant keras.applications has).
KERAS_APPS = {
    "EfficientNetB0": keras.applications.EfficientNetB0,
    "EfficientNetB1": keras.applications.EfficientNetB1,
    "EfficientNetB2": keras.applications.EfficientNetB2,
    "EfficientNetB3": keras.applications.EfficientNetB3,
    "EfficientNetB4": keras.applications.EfficientNetB4,
    "EfficientNetB5": keras.applications.EfficientNetB5,
    "EfficientNetB6": keras.applications.EfficientNetB6,
    "EfficientNetB7": keras.applications.EfficientNetB7,
    "EfficientNetV2B0": keras.applications.EfficientNetV2B0,
    "EfficientNetV2B1": keras.applications.EfficientNetV2B1,
    "EfficientNetV2B2": keras.applications.EfficientNetV2B2,
    "EfficientNetV2B3": keras.applications.EfficientNetV2B3,
    "EfficientNetV2S": keras.applications.EfficientNetV2S,
    "EfficientNetV2M": keras.applications.EfficientNetV2M,
    "EfficientNetV2L": keras.applications.EfficientNetV2L,
}
FAST = {"EfficientNetB0", "EfficientNetV2B0"}
# keras.applications leaves these unnamed, so Keras numbers them per session (normalization_3 ...).
AUTO_NAMED = re.compile(r"^(input_layer|rescaling|normalization)(_\d+)?$")


def _run(model, x):
    """Eager inference: tracing a tf.function for each of these large graphs would cost more than the math."""
    return keras.ops.convert_to_numpy(model(x, training=False))


def _params():
    return [pytest.param(n, marks=() if n in FAST else pytest.mark.slow) for n in KERAS_APPS]


def _named(model):
    return [(l.name, [tuple(w.shape) for w in l.weights]) for l in model.layers if not AUTO_NAMED.match(l.name)]


def _assert_same_structure(ours, ref):
    assert _named(ours) == _named(ref)
    assert [tuple(w.shape) for w in ours.weights] == [tuple(w.shape) for w in ref.weights]
    assert [type(l).__name__ for l in ours.layers if l.weights] == [type(l).__name__ for l in ref.layers if l.weights]


def _finalize_normalization(model):
    """keras.applications' V1 input Normalization keeps the numbers it was built with through ``set_weights``
    (Keras computes them from the weights when it builds or loads the layer): make it use the weights set."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.Normalization):
            layer.finalize_state()


@pytest.mark.parametrize("variant", _params())
def test_matches_keras_applications_with_top(variant, tmp_path):
    # The default input size for the small variants; 128 px for the rest (the numbers do not depend on size).
    size = ek.VARIANTS[variant].resolution if variant in FAST else 128
    kwargs = dict(weights=None, classifier_activation=None, input_shape=(size, size, 3))
    ref = KERAS_APPS[variant](**kwargs)
    ours = getattr(ek, variant)(**kwargs)
    _assert_same_structure(ours, ref)
    assert ours.count_params() == ref.count_params()
    rng = np.random.default_rng(1)
    ref.set_weights([w + rng.normal(0, 0.01, w.shape).astype(w.dtype) for w in ref.get_weights()])
    _finalize_normalization(ref)
    ours.set_weights(ref.get_weights())  # ours uses the input Normalization's new numbers itself
    x = random_images(2, ref.input_shape[1])
    expected = _run(ref, x)
    np.testing.assert_allclose(_run(ours, x), expected, atol=1e-4, rtol=0)

    # A .weights.h5 file saved by the keras.applications model loads unchanged through weights=<path> (the same
    # loader for every variant: checked up to the mid-size ones, where a third build of the model stays cheap).
    if ref.count_params() > 25_000_000:
        return
    path = str(tmp_path / "ref.weights.h5")
    ref.save_weights(path)
    loaded = getattr(ek, variant)(**{**kwargs, "weights": path})
    np.testing.assert_allclose(_run(loaded, x), expected, atol=1e-4, rtol=0)


# Without top is the same graph minus the classifier (the test above covers every variant's numbers): checked on
# one V1 and three V2 shapes, with the Keras 2 .h5 format keras.applications downloads.
NOTOP = ["EfficientNetB0", "EfficientNetV2B0", "EfficientNetB3", "EfficientNetV2S"]


@pytest.mark.parametrize("variant", [p for p in _params() if p.values[0] in NOTOP])
def test_matches_keras_applications_without_top(variant, tmp_path):
    ref = KERAS_APPS[variant](weights=None, include_top=False, pooling="avg", input_shape=(96, 96, 3))
    ours = getattr(ek, variant)(weights=None, include_top=False, pooling="avg", input_shape=(96, 96, 3))
    _assert_same_structure(ours, ref)
    rng = np.random.default_rng(2)
    ref.set_weights([w + rng.normal(0, 0.01, w.shape).astype(w.dtype) for w in ref.get_weights()])
    _finalize_normalization(ref)
    x = random_images(2, 96, seed=3)
    expected = _run(ref, x)

    # Keras 2 / keras.applications-style .h5 (what keras.applications downloads) loads through weights=<path>.
    from keras.src.legacy.saving import legacy_h5_format
    import h5py

    path = str(tmp_path / "ref_notop.h5")
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, ref)
    ours = getattr(ek, variant)(weights=path, include_top=False, pooling="avg", input_shape=(96, 96, 3))
    np.testing.assert_allclose(_run(ours, x), expected, atol=1e-4, rtol=0)


def test_v1_imagenet_preprocessing_matches_keras_applications():
    """V1's ImageNet files store std as 'variance'; both libraries add the same extra Rescaling for them."""
    ours = ek.EfficientNetB0(weights=None, include_top=False, input_shape=(64, 64, 3))
    names = [l.name for l in ours.layers[:4]]
    assert names[:3] == ["input_layer", "rescaling", "normalization"] or names[1:3] == ["rescaling", "normalization"]
    assert "rescaling_1" not in [l.name for l in ours.layers]


@pytest.mark.parametrize("variant", sorted(ek.VARIANTS))
def test_every_variant_is_one_row(variant):
    """Constructors are generated from the table and carry its data."""
    v = ek.VARIANTS[variant]
    fn = getattr(ek, variant)
    assert fn.__name__ == variant and v.name in fn.__doc__
    assert ek.get_variant(v.name) is v


def test_unknown_variant():
    with pytest.raises(ValueError, match="Unknown EfficientNet variant 'EfficientNetB9'"):
        ek.create_model("EfficientNetB9", weights=None)


def _training_step(model, x, y):
    """Logits, per-variable gradients and updated BatchNorm moving statistics of one training-mode step."""
    import tensorflow as tf

    with tf.GradientTape() as tape:
        logits = model(x, training=True)
        loss = keras.losses.categorical_crossentropy(y, logits, from_logits=True)
    grads = tape.gradient(loss, model.trainable_weights)
    moving = [w for w in model.non_trainable_weights if "moving" in w.path]
    return logits.numpy(), [g.numpy() for g in grads], [w.numpy() for w in moving]


def _keras_applications_float64(variant, kwargs, weights):
    keras.config.set_dtype_policy("float64")
    try:
        model = KERAS_APPS[variant](**kwargs)
    finally:
        keras.config.set_dtype_policy("float32")
    assert model.compute_dtype == "float64"
    model.set_weights([w.astype("float64") for w in weights])
    return model


@pytest.mark.parametrize("variant", ["EfficientNetV2S", "EfficientNetB0"])
def test_training_matches_keras_applications(variant):
    """Training mode (our fused BatchNorm; stochastic depth and dropout at rate 0): logits, every gradient and the
    moving statistics within 3e-4 (of each tensor's scale) of keras.applications computed in float64, or no farther
    from it than twice keras.applications' own float32 step; and within 5e-4 of that float32 step."""
    kwargs = dict(weights=None, classifier_activation=None, input_shape=(64, 64, 3), classes=10)
    ref = KERAS_APPS[variant](**kwargs)
    ours = getattr(ek, variant)(**kwargs, dropout_rate=0.0, drop_connect_rate=0.0)
    rng = np.random.default_rng(4)
    ref.set_weights([w + rng.normal(0, 0.01, w.shape).astype(w.dtype) for w in ref.get_weights()])
    ours.set_weights(ref.get_weights())
    exact_model = _keras_applications_float64(variant, kwargs, ref.get_weights())
    for model in (ref, exact_model):
        for layer in model.layers:
            if isinstance(layer, keras.layers.Dropout):
                layer.rate = 0.0
    for model in (ref, exact_model):
        _finalize_normalization(model)
    x = random_images(4, 64, seed=5)
    y = np.eye(10, dtype="float32")[[1, 3, 5, 7]]
    assert any(type(layer) is BatchNormalization for layer in ours.layers)

    def flat(step):
        logits, grads, moving = step
        return [("logits", logits), *[("gradient", g) for g in grads], *[("moving statistic", m) for m in moving]]

    got, ref32 = flat(_training_step(ours, x, y)), flat(_training_step(ref, x, y))
    exact = flat(_training_step(exact_model, x.astype("float64"), y.astype("float64")))
    assert len(got) == len(ref32) == len(exact) and sum(kind == "moving statistic" for kind, _ in got) > 0
    # Scales: each tensor's largest value, floored at 1e-2 of the largest gradient for gradients that are zero in
    # exact arithmetic (the beta of a project BatchNorm whose output reaches only the next block's training-mode
    # BatchNorm through a linear convolution, which cancels it): those are pure rounding noise.
    floor = 1e-2 * max(float(np.abs(t).max()) for kind, t in exact if kind == "gradient")
    for (kind, a), (_, b), (_, e) in zip(got, ref32, exact, strict=True):
        scale = max(float(np.abs(e).max()), floor)
        ours_error, keras_error = float(np.abs(a - e).max()), float(np.abs(b - e).max())
        # float32 through 60+ blocks is itself only ~1e-4 accurate, and with oneDNN the rounding varies from run to
        # run: keras.applications' own error reaches 7e-5 of the scale, ours 1.3e-4 (measured over full-suite runs).
        assert ours_error <= max(3e-4 * scale, 2 * keras_error), \
            f"{kind}: ours {ours_error:.3g}, keras.applications {keras_error:.3g}, scale {scale:.3g}"
        np.testing.assert_allclose(a, b, atol=5e-4 * scale, rtol=0, err_msg=kind)
