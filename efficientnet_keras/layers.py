"""Layers the EfficientNet builder needs beyond ``keras.layers``: stochastic depth, rate control, and a
BatchNormalization that trains with the fused TensorFlow kernel.

Rates are plain Python floats (like ``keras.layers.Dropout``), so they add no weights and weight files stay
identical to keras.applications'. ``set_regularization`` changes them on a built model so the new rates take
effect in the next step of a running ``fit`` too: on the TensorFlow backend the first change moves the rates into
untracked variables that the traced step reads at run time (later changes are assignments: no re-trace, which
costs ~20 s per progressive-learning stage switch for V2-B0 on a 2-core CPU); on JAX and PyTorch, whose compiled
steps would bake such a variable in as a constant, the compiled functions are re-traced instead.
"""

from __future__ import annotations

import keras
from keras import ops

from efficientnet_keras import _keras_private as private

__all__ = ["AdjustableDropout", "StochasticDepth", "BatchNormalization", "FoldedBatchNorm", "SamePadding2D", "reseed",
           "set_layer_weights",
           "set_regularization", "get_regularization", "TOP_DROPOUT_NAME"]

TOP_DROPOUT_NAME = "top_dropout"


@keras.saving.register_keras_serializable(package="efficientnet_keras")
class AdjustableDropout(keras.layers.Layer):
    """Dropout whose rate may start at 0 and be changed after the model is built.

    ``keras.layers.Dropout`` creates its random state only when built with a rate > 0, so a rate-0 layer could
    never be turned on; this one always has it. Same math: ``keras.random.dropout``.
    """

    def __init__(self, rate: float = 0.0, noise_shape=None, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.rate = _check_rate(f"{type(self).__name__} '{self.name}': rate", rate)
        self.noise_shape = noise_shape
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._runtime_rate: _RuntimeRate | None = None
        self.supports_masking = True
        self.built = True

    def _noise_shape(self, inputs):
        return self.noise_shape

    def call(self, inputs, training=False):
        if not training:
            return inputs
        if self._runtime_rate is not None:
            return _dropout(inputs, self._runtime_rate.variable, self._noise_shape(inputs), self.seed_generator)
        if self.rate <= 0:
            return inputs
        return keras.random.dropout(inputs, self.rate, noise_shape=self._noise_shape(inputs), seed=self.seed_generator)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(rate=self.rate, noise_shape=self.noise_shape, seed=self.seed)
        return config


@keras.saving.register_keras_serializable(package="efficientnet_keras")
class StochasticDepth(AdjustableDropout):
    """Drops a residual branch for whole samples in training (Huang et al., 2016; "drop connect").

    The survivors are scaled by ``1 / (1 - rate)`` as in keras.applications and the official code, so inference
    is the identity. ``depth_fraction`` is the block's position in the network (b / num_blocks): the rate is
    ``max_rate * depth_fraction``, rising linearly with depth as in the EfficientNet papers.
    """

    def __init__(self, rate: float = 0.0, depth_fraction: float = 0.0, seed: int | None = None, **kwargs):
        kwargs.pop("noise_shape", None)
        super().__init__(rate, seed=seed, **kwargs)
        self.depth_fraction = float(depth_fraction)

    def _noise_shape(self, inputs):
        return (ops.shape(inputs)[0],) + (1,) * (len(inputs.shape) - 1)

    def get_config(self):
        config = super().get_config()
        config.pop("noise_shape")
        config.update(depth_fraction=self.depth_fraction)
        return config


def set_layer_weights(layer: keras.layers.Layer, values) -> None:
    """``layer.set_weights(values)``, and for ``keras.layers.Normalization`` (V1's input normalization) the state
    it derives from them: it keeps mean and variance as tensors computed when built or loaded, so assigning its
    weights alone leaves the old numbers in use (``load_weights`` calls ``finalize_state``; ``set_weights`` does
    not)."""
    layer.set_weights(values)
    if isinstance(layer, keras.layers.Normalization):
        layer.finalize_state()


@keras.saving.register_keras_serializable(package="efficientnet_keras")
class SamePadding2D(keras.layers.Layer):
    """TensorFlow's 'same' padding for a strided convolution, made explicit and computed from each input's size.

    keras.applications V1 pads with a ``ZeroPadding2D`` fixed when the model is built (``correct_pad``), which
    is right only for the size it was built for: with an unknown size (``input_shape=(None, None, 3)``, the
    default without a top, and how the trainer builds) it always pads as for even sizes, so at 240 px (15 px at
    stride 16) Lite1's features differ from the official network's. This layer gives the official padding for
    every size: total ``max((ceil(n / s) - 1) * s + k - n, 0)``, the smaller half before. No weights, so weight
    files are unchanged."""

    def __init__(self, kernel_size: int, stride: int = 2, data_format: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.kernel_size, self.stride = int(kernel_size), int(stride)  # not "strides": it strides nothing
        self.data_format = data_format or keras.config.image_data_format()

    def _total(self, n):
        """The padding a side of ``n`` pixels needs (a Python int for a static size, a tensor for a dynamic one)."""
        need = (-(-n // self.stride) - 1) * self.stride + self.kernel_size - n
        return max(need, 0) if isinstance(need, int) else ops.maximum(need, 0)

    def _pads(self, n):
        total = self._total(n)
        return [total // 2, total - total // 2]

    def call(self, inputs):
        shape = ops.shape(inputs)
        h, w = (shape[1], shape[2]) if self.data_format == "channels_last" else (shape[2], shape[3])
        spatial = [self._pads(h), self._pads(w)]
        pads = [[0, 0], *spatial, [0, 0]] if self.data_format == "channels_last" else [[0, 0], [0, 0], *spatial]
        return ops.pad(inputs, pads)

    def compute_output_shape(self, input_shape):
        axes = (1, 2) if self.data_format == "channels_last" else (2, 3)
        out = list(input_shape)
        for axis in axes:
            if input_shape[axis] is not None:
                out[axis] = input_shape[axis] + self._total(input_shape[axis])
        return tuple(out)

    def get_config(self):
        config = super().get_config()
        config.update(kernel_size=self.kernel_size, stride=self.stride, data_format=self.data_format)
        return config


@keras.saving.register_keras_serializable(package="efficientnet_keras")
class BatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` that trains with TensorFlow's fused kernel.

    Keras 3 composes training-mode BatchNorm from about twenty elementwise ops (``moments``, the normalization,
    their gradients, ``Tile``s); TensorFlow's ``FusedBatchNormV3`` and its gradient are one op each. Same
    variables, the same moving-statistics update (Keras' biased batch variance), the same outputs and gradients
    within float rounding (``tests/test_layers.py`` compares against the Keras layer). Written by hand because
    Keras 3 has no fused path; every case it does not cover (other backends, inference, masks, renorm,
    synchronized statistics, non-4D inputs) is the parent's code unchanged.
    """

    def _fusable(self, inputs, training, mask) -> bool:
        return (
            bool(training)
            and self.trainable
            and keras.backend.backend() == "tensorflow"
            and mask is None
            and not self.renorm
            and not self.synchronized
            and self.scale
            and self.center
            and len(inputs.shape) == 4
            and self.axis in (1, 3)
            and keras.backend.standardize_dtype(inputs.dtype) in ("float16", "bfloat16", "float32")
        )

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        x = tf.cast(inputs, "float32")  # Keras computes BatchNorm in float32 under mixed precision too.
        y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            x,
            tf.cast(self.gamma, "float32"),
            tf.cast(self.beta, "float32"),
            epsilon=self.epsilon,
            data_format="NHWC" if self.axis == 3 else "NCHW",
            is_training=True,
        )
        # The fused kernel returns the unbiased (n / (n - 1)) batch variance; Keras averages the biased one.
        shape = tf.shape(x)
        n = tf.cast(tf.reduce_prod(shape) // shape[self.axis], "float32")
        variance = variance * ((n - 1.0) / tf.maximum(n, 1.0))
        momentum = self.momentum
        self.moving_mean.assign(self.moving_mean * momentum + tf.cast(mean, self.moving_mean.dtype) * (1.0 - momentum))
        self.moving_variance.assign(
            self.moving_variance * momentum + tf.cast(variance, self.moving_variance.dtype) * (1.0 - momentum))
        return tf.cast(y, self.compute_dtype)


@keras.saving.register_keras_serializable(package="efficientnet_keras")
class FoldedBatchNorm(keras.layers.Layer):
    """Identity left where a BatchNorm was folded into the convolution before it (``export.fold_batchnorm``).

    Keeps the BatchNorm's name and call signature, so the rest of the graph is unchanged."""

    def call(self, inputs, training=None, mask=None):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape


class _RuntimeRate:
    """A layer's rate in a float32 variable that a traced step reads at run time.

    Held by this plain object, not set on the layer, so Keras does not track the variable: the layer keeps the
    weights (and weight files) of keras.applications, and saved models keep the Python ``rate`` of their config.
    Created under the model's distribution strategy, so every replica (and a TPU) reads its own mirrored copy.
    """

    def __init__(self, rate: float, strategy):
        with strategy.scope():
            self.variable = keras.Variable(rate, dtype="float32", trainable=False, name="rate")


def _dropout(inputs, rate, noise_shape, seed_generator):
    """``keras.random.dropout`` with a tensor rate (Keras' own branches on the rate in Python).

    Same random draw and formula as TensorFlow's ``stateless_dropout`` behind ``keras.random.dropout``, so a layer
    gives the same masks before and after its rate became a variable; rate 0 is the exact identity.
    """
    rate = ops.cast(rate, inputs.dtype)
    shape = ops.shape(inputs) if noise_shape is None else noise_shape
    keep = keras.random.uniform(shape, dtype=inputs.dtype, seed=seed_generator) >= rate
    return inputs * (1 / (1 - rate)) * ops.cast(keep, inputs.dtype)


def _check_rate(what: str, rate: float) -> float:
    rate = float(rate)
    if not 0 <= rate < 1:
        raise ValueError(f"{what} must be in [0, 1), got {rate}.")
    return rate


def set_regularization(
    model: keras.Model,
    dropout: float | None = None,
    stochastic_depth: float | None = None,
) -> None:
    """Change the top dropout rate and/or the maximum stochastic-depth rate of a built model, in place.

    ``stochastic_depth`` is the rate of the last block (the "drop connect rate"); earlier blocks get
    ``rate * b / num_blocks``. The change is effective in the very next step, including from a callback inside
    ``fit``: see the module docstring for how (run-time variables on TensorFlow, re-tracing elsewhere).
    """
    retrace = False
    if dropout is not None:
        dropout = _check_rate("dropout", dropout)
        layer = _find_top_dropout(model)
        if layer is None:
            raise ValueError(
                f"Model '{model.name}' has no '{TOP_DROPOUT_NAME}' layer (built with include_top=False?); "
                "top dropout exists only in front of the classifier."
            )
        retrace |= _set_rate(model, layer, dropout)
    if stochastic_depth is not None:
        stochastic_depth = _check_rate("stochastic_depth", stochastic_depth)
        layers = [layer for layer in private.flatten_layers(model) if isinstance(layer, StochasticDepth)]
        if not layers:
            raise ValueError(f"Model '{model.name}' has no StochasticDepth layers to change.")
        for layer in layers:
            if layer.depth_fraction > 0:  # the first block's rate is 0 whatever the maximum
                retrace |= _set_rate(model, layer, stochastic_depth * layer.depth_fraction)
    if retrace:
        _retrace(model)


def get_regularization(model: keras.Model) -> dict[str, float]:
    """The model's current top dropout and stochastic-depth rate of the last block (the maximum)."""
    top = _find_top_dropout(model)
    depth = [layer for layer in private.flatten_layers(model) if isinstance(layer, StochasticDepth)]
    max_rate = 0.0
    for layer in depth:
        if layer.depth_fraction > 0:
            max_rate = max(max_rate, layer.rate / layer.depth_fraction)
    return {"dropout": top.rate if top is not None else 0.0, "stochastic_depth": max_rate}


def _set_rate(model: keras.Model, layer: keras.layers.Layer, rate: float) -> bool:
    """Set ``layer``'s rate; True when traced functions must be re-traced for it to take effect."""
    changed = rate != layer.rate
    layer.rate = rate
    runtime = getattr(layer, "_runtime_rate", None)
    if runtime is not None:  # TensorFlow, after the first call: an assignment, no re-trace
        runtime.variable.assign(rate)
        return False
    if isinstance(layer, AdjustableDropout) and keras.backend.backend() == "tensorflow":
        layer._runtime_rate = _RuntimeRate(rate, model.distribute_strategy)
        return True
    return changed  # other backends, or a keras.layers.Dropout (keras.applications' top)


def _find_top_dropout(model: keras.Model):
    for layer in private.flatten_layers(model):
        if layer.name == TOP_DROPOUT_NAME and isinstance(layer, (AdjustableDropout, keras.layers.Dropout)):
            return layer
    return None


def _retrace(model: keras.Model) -> None:
    """Drop traced functions that baked in the old rates; fit() reads ``model.train_function`` every step."""
    if getattr(model, "train_function", None) is not None:
        model.make_train_function(force=True)
    if hasattr(model, "test_function"):
        model.test_function = None
    if hasattr(model, "predict_function"):
        model.predict_function = None


def reseed(layers, seed: int, epoch: int) -> None:
    """Restart the random streams of ``layers`` (and their sublayers) from (seed, epoch).

    Keras does not save SeedGenerator states in checkpoints, so a run resumed at epoch k would draw other dropout
    masks and augmentations than an uninterrupted one; reseeding every epoch makes both identical.
    """
    k = 0
    for layer in layers:
        for sub in private.flatten_layers(layer):
            for value in vars(sub).values():
                if isinstance(value, keras.random.SeedGenerator):
                    k += 1
                    state = [seed * 1_000_003 + epoch * 1009 + k, 0]
                    value.state.assign(ops.cast(state, value.state.dtype))
