"""The official optimizer pieces against hand computations: one step with L2 vs decoupled weight decay, the EMA of
weights and BatchNorm statistics, and the schedule counted from step 0."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from efficientnet_keras.training.optimizers import AdamWEMA, RMSpropEMA, SwapEMA, WarmupExponentialDecay

X = np.array([[1.0, -2.0, 0.5], [0.3, 0.2, -1.0]], np.float32)
Y = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
W0 = np.array([[0.5, -0.2], [0.1, 0.3], [-0.4, 0.2]], np.float32)
B0 = np.array([0.1, -0.1], np.float32)


def _step(optimizer):
    """One train step of a Dense layer; returns (gradients at W0, B0), (new kernel, new bias)."""
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="fc")])
    model.set_weights([W0, B0])
    with tf.GradientTape() as tape:
        loss = keras.losses.MeanSquaredError()(Y, model(X))
    grads = [g.numpy() for g in tape.gradient(loss, model.trainable_variables)]
    model.compile(optimizer, keras.losses.MeanSquaredError())
    model.train_on_batch(X, Y)
    return grads, model.get_weights()


def test_l2_decay_is_added_to_the_gradient_before_rmsprop():
    lr, wd, rho = 0.1, 0.01, 0.9
    (g_w, g_b), (w, b) = _step(RMSpropEMA(learning_rate=lr, rho=rho, momentum=0.9, epsilon=1e-3, l2=wd))
    g = g_w + wd * W0  # the gradient of wd * sum(W^2) / 2: bias untouched (hparams.py weight_decay_exclude)
    # TF1 RMSProp's first step: mean square (1 - rho) g^2 on top of its initial 1 (rho^1 after the step).
    expected_w = W0 - lr * g / np.sqrt((1 - rho) * g ** 2 + rho + 1e-3)
    expected_b = B0 - lr * g_b / np.sqrt((1 - rho) * g_b ** 2 + rho + 1e-3)
    np.testing.assert_allclose(w, expected_w, rtol=1e-5)
    np.testing.assert_allclose(b, expected_b, rtol=1e-5)


def test_decoupled_decay_shrinks_the_weight_outside_adam():
    lr, wd = 0.1, 0.01
    optimizer = AdamWEMA(learning_rate=lr, weight_decay=wd)
    optimizer.exclude_from_weight_decay(var_names=["bias"])
    (g_w, g_b), (w, b) = _step(optimizer)
    step = lr * np.sqrt(1 - 0.999) / (1 - 0.9)  # Keras Adam's bias-corrected rate at step 1

    def adam(g):
        return step * (0.1 * g) / (np.sqrt(0.001 * g ** 2) + 1e-7)

    np.testing.assert_allclose(w, W0 * (1 - lr * wd) - adam(g_w), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b, B0 - adam(g_b), rtol=1e-5, atol=1e-6)


class _Record(keras.callbacks.Callback):
    def __init__(self, variables):
        super().__init__()
        self.variables, self.values = variables, []

    def on_train_batch_end(self, batch, logs=None):
        self.values.append([v.numpy().copy() for v in self.variables])


def test_ema_of_weights_and_batchnorm_statistics():
    """After N steps the averages are the official EMA (start at the built values, decay min(d, (1+n)/(10+n)))
    of what the weights and moving statistics were after each step; fit ends with them in the model."""
    rng = np.random.default_rng(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="fc"),
                              keras.layers.BatchNormalization(momentum=0.5, name="bn")])
    kernel, bn = model.get_layer("fc").kernel, model.get_layer("bn")
    variables = [kernel, bn.moving_mean, bn.moving_variance]
    initial = [v.numpy().copy() for v in variables]
    optimizer = RMSpropEMA(learning_rate=0.01, use_ema=True, ema_momentum=0.9)
    model.compile(optimizer, "mse")
    optimizer.average_statistics(model)
    record = _Record(variables)
    x, y = rng.normal(size=(40, 4)).astype("float32") * 3 + 1, rng.normal(size=(40, 3)).astype("float32")
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, callbacks=[record], verbose=0)
    expected = initial
    for n, values in enumerate(record.values, start=1):
        d = min(0.9, (1 + n) / (10 + n))
        expected = [d * a + (1 - d) * v for a, v in zip(expected, values, strict=True)]
    assert len(record.values) == 5
    for variable, value, raw in zip(variables, expected, record.values[-1], strict=True):
        np.testing.assert_allclose(variable.numpy(), value, rtol=1e-5, atol=1e-6)
        assert not np.allclose(value, raw)  # the averages are not the last raw values


def test_swap_evaluates_on_the_averages_and_trains_on_the_raw_values():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, name="fc"),
                              keras.layers.BatchNormalization(name="bn")])
    optimizer = RMSpropEMA(learning_rate=0.1, use_ema=True, ema_momentum=0.5)
    optimizer.defer_finalize = True
    model.compile(optimizer, "mse")
    optimizer.average_statistics(model)
    x, y = np.ones((8, 2), "float32"), np.full((8, 1), 3.0, "float32")
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    raw = [v.numpy().copy() for v, _ in optimizer.averaged_pairs()]
    averages = [a.numpy().copy() for _, a in optimizer.averaged_pairs()]
    seen = []
    probe = keras.callbacks.LambdaCallback(on_test_batch_end=lambda batch, logs: seen.append(
        [v.numpy().copy() for v, _ in optimizer.averaged_pairs()]))
    model.evaluate(x, y, callbacks=[SwapEMA(), probe], verbose=0)
    for during, average in zip(seen[0], averages, strict=True):
        np.testing.assert_array_equal(during, average)
    for after, before in zip([v.numpy() for v, _ in optimizer.averaged_pairs()], raw, strict=True):
        np.testing.assert_array_equal(after, before)
    assert len(optimizer.averaged_pairs()) == 6  # kernel, bias, gamma, beta, moving mean, moving variance


@pytest.mark.parametrize("decay, expected", [
    ("exponential", [0.0, 0.5, 0.25, 0.25, 0.125]),  # 0.5^floor(step / 4.8) from step 0: 10 -> 2 decays
    ("constant", [0.0, 0.5, 1.0, 1.0, 1.0]),
    ("cosine", [0.0, 0.5] + [0.5 * (1 + np.cos(np.pi * s / 20)) for s in (10, 14, 15)]),
])
def test_schedule_counts_decay_from_step_zero(decay, expected):
    schedule = WarmupExponentialDecay(1.0, warmup_steps=10, decay_steps=4.8, decay_rate=0.5, decay=decay,
                                      total_steps=20)
    np.testing.assert_allclose([float(schedule(s)) for s in (0, 5, 10, 14, 15)], expected, rtol=1e-6)
