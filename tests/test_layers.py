"""The layers against their references: fused-kernel BatchNormalization vs keras.layers.BatchNormalization, and
run-time dropout rates vs keras.random.dropout."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from efficientnet_keras.layers import AdjustableDropout, BatchNormalization, StochasticDepth, _RuntimeRate


def _pair(axis, **kwargs):
    return BatchNormalization(axis=axis, **kwargs), keras.layers.BatchNormalization(axis=axis, **kwargs)


def _step(layer, x, training, jit=False):
    """Output, gradients (input, gamma, beta) of a weighted sum, and the moving statistics after the call."""
    weights = tf.constant(np.random.default_rng(1).normal(size=x.shape), tf.float32)

    def run(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=training)
            loss = tf.reduce_sum(tf.cast(y, tf.float32) * weights)
        return (y, *tape.gradient(loss, [x, layer.gamma, layer.beta]))

    outputs = tf.function(run, jit_compile=True)(x) if jit else run(x)
    return [np.asarray(o, "float32") for o in outputs] + [layer.moving_mean.numpy(), layer.moving_variance.numpy()]


@pytest.mark.parametrize("axis,shape,jit", [(3, (4, 6, 5, 8), False), (1, (3, 8, 7, 5), False),
                                            (3, (2, 1, 1, 16), False), (3, (4, 6, 5, 8), True)])
@pytest.mark.parametrize("training", [True, False])
def test_matches_keras_batchnorm(axis, shape, jit, training):
    x = tf.constant(np.random.default_rng(0).normal(2.0, 3.0, shape), tf.float32)
    ours, ref = _pair(axis, momentum=0.9, epsilon=1e-3)
    ours.build(shape), ref.build(shape)
    rng = np.random.default_rng(2)
    ref.set_weights([w + rng.uniform(0.1, 1.0, w.shape).astype("float32") for w in ref.get_weights()])
    ours.set_weights(ref.get_weights())
    before = ours.moving_variance.numpy()
    for a, b in zip(_step(ours, x, training, jit), _step(ref, x, training, jit), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * float(np.abs(b).max()))
    # Training moves the statistics towards the batch's (so the comparison above covers the update); inference not.
    assert np.allclose(ours.moving_variance.numpy(), before) != training


def test_mixed_precision_matches_keras_batchnorm():
    x = tf.constant(np.random.default_rng(0).normal(size=(4, 5, 5, 8)), tf.float16)
    ours, ref = _pair(3, dtype="mixed_float16")
    ours.build(x.shape), ref.build(x.shape)
    y_ours, y_ref = ours(x, training=True), ref(x, training=True)
    assert y_ours.dtype == y_ref.dtype == tf.float16
    np.testing.assert_allclose(y_ours.numpy(), y_ref.numpy(), atol=2e-3)
    np.testing.assert_allclose(ours.moving_variance.numpy(), ref.moving_variance.numpy(), rtol=1e-3)


def test_falls_back_to_keras_where_it_cannot_fuse():
    """A 2D input (BatchNorm after Dense) is the parent's code; a frozen layer normalizes with moving statistics."""
    x = tf.constant(np.random.default_rng(0).normal(size=(6, 4)), tf.float32)
    ours, ref = _pair(-1)
    np.testing.assert_allclose(ours(x, training=True).numpy(), ref(x, training=True).numpy(), atol=1e-5)
    frozen = BatchNormalization()
    frozen.build((2, 3, 3, 4))
    frozen.trainable = False
    images = tf.constant(np.random.default_rng(1).normal(size=(2, 3, 3, 4)), tf.float32)
    np.testing.assert_allclose(frozen(images, training=True).numpy(), images.numpy() / np.sqrt(1 + 1e-3), rtol=1e-5)


def test_saves_and_loads(tmp_path):
    inputs = keras.Input((4, 4, 3))
    model = keras.Model(inputs, BatchNormalization(name="bn")(inputs))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert type(loaded.get_layer("bn")) is BatchNormalization


@pytest.mark.parametrize("layer_class", [AdjustableDropout, StochasticDepth])
def test_rate_from_a_variable_draws_the_same_masks(layer_class):
    """After ``set_regularization`` moves a rate into a variable, the layer drops exactly what it dropped before."""
    x = np.random.default_rng(0).random((16, 5, 5, 3)).astype("float32")
    kwargs = {"depth_fraction": 1.0} if layer_class is StochasticDepth else {}
    static, runtime = layer_class(0.3, seed=7, **kwargs), layer_class(0.3, seed=7, **kwargs)
    runtime._runtime_rate = _RuntimeRate(0.3, tf.distribute.get_strategy())
    for _ in range(2):
        expected, got = static(x, training=True), runtime(x, training=True)
        np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))
    assert 0 < np.mean(np.asarray(got) == 0) < 1


@pytest.mark.parametrize("size", [15, 16, 17, 30])
@pytest.mark.parametrize("kernel", [3, 5])
def test_same_padding_matches_tensorflow_same_at_every_size(size, kernel):
    """One model built for unknown sizes pads each input as a 'same' strided convolution would."""
    from efficientnet_keras.layers import SamePadding2D

    x = keras.Input((None, None, 2))
    conv = keras.layers.Conv2D(3, kernel, strides=2, padding="valid", use_bias=False)
    explicit = keras.Model(x, conv(SamePadding2D(kernel, 2)(x)))
    same = keras.layers.Conv2D(3, kernel, strides=2, padding="same", use_bias=False)
    same.build((None, size, size, 2))
    same.set_weights(conv.get_weights())
    images = np.random.default_rng(size).normal(size=(2, size, size, 2)).astype(np.float32)
    np.testing.assert_allclose(explicit.predict(images, verbose=0), keras.ops.convert_to_numpy(same(images)),
                               atol=1e-5)
