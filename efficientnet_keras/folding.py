"""BatchNorm folding: an inference copy of a model with each BatchNorm folded into the convolution before it."""

from __future__ import annotations

import keras
import numpy as np

from efficientnet_keras import _keras_private as private
from efficientnet_keras.layers import FoldedBatchNorm, set_layer_weights


def foldable_pairs(model: keras.Model) -> dict[str, str]:
    """``{batchnorm name: conv name}`` for each BatchNorm fed by a Conv2D/DepthwiseConv2D it alone consumes."""
    consumers: dict[str, int] = {}
    for layer in model.layers:
        for node in private.inbound_nodes(layer):
            for t in keras.tree.flatten(node.arguments.keras_tensors):
                consumers[private.producer(t).name] = consumers.get(private.producer(t).name, 0) + 1
    outputs = {private.producer(t).name for t in keras.tree.flatten(model.outputs)}
    pairs = {}
    for layer in model.layers:
        if not isinstance(layer, keras.layers.BatchNormalization) or len(private.inbound_nodes(layer)) != 1:
            continue
        conv = private.producer(layer.input)
        if (isinstance(conv, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)) and conv.activation is
                keras.activations.linear and consumers.get(conv.name) == 1 and conv.name not in outputs
                and len(private.inbound_nodes(conv)) == 1):
            pairs[layer.name] = conv.name
    return pairs


def fold_batchnorm(model: keras.Model) -> keras.Model:
    """An inference-only copy of ``model`` with each BatchNorm folded into the convolution before it.

    ``conv(x) * s + (b - mean) * s + beta`` with ``s = gamma / sqrt(var + eps)``: the kernel is scaled per output
    channel and gains a bias; the BatchNorm layer becomes a ``FoldedBatchNorm`` identity (same name, so the graph and every other
    layer are unchanged). Done in float64 so the folded model matches the original within float32 rounding.
    """
    pairs = foldable_pairs(model)
    convs = set(pairs.values())

    def clone(layer):
        config = layer.get_config()
        if layer.name in pairs:
            return FoldedBatchNorm(name=layer.name, dtype=layer.dtype_policy.name)
        if layer.name in convs:
            config["use_bias"] = True
        return layer.__class__.from_config(config)

    inputs = keras.tree.map_structure(
        lambda t: keras.Input(batch_shape=t.shape, dtype=t.dtype, name=private.producer(t).name), model.input)
    folded = keras.models.clone_model(model, input_tensors=inputs, clone_function=clone)
    if getattr(model, "preprocessing", None) is not None:  # clone_model passes the layer graph alone
        folded.preprocessing = model.preprocessing
    for layer in model.layers:
        if layer.name in pairs or layer.name in convs or not layer.weights:
            continue
        set_layer_weights(folded.get_layer(layer.name), layer.get_weights())
    for bn_name, conv_name in pairs.items():
        bn, conv = model.get_layer(bn_name), model.get_layer(conv_name)
        gamma, beta, mean, var = (np.asarray(w, np.float64) for w in _bn_params(bn))
        scale = gamma / np.sqrt(var + bn.epsilon)
        weights = [np.asarray(w, np.float64) for w in conv.get_weights()]
        kernel = weights[0]
        bias = weights[1] if conv.use_bias else np.zeros(scale.shape)
        if isinstance(conv, keras.layers.DepthwiseConv2D):  # kernel [kh, kw, in, multiplier]; out = in * mult + m
            kernel = kernel * scale.reshape(kernel.shape[2], kernel.shape[3])
        else:  # kernel [kh, kw, in, out]
            kernel = kernel * scale
        dtype = conv.kernel.dtype
        folded.get_layer(conv_name).set_weights([kernel.astype(dtype), ((bias - mean) * scale + beta).astype(dtype)])
    return folded


def _bn_params(bn):
    ones, zeros = np.ones(bn.moving_mean.shape), np.zeros(bn.moving_mean.shape)
    gamma = bn.gamma.numpy() if bn.scale else ones
    beta = bn.beta.numpy() if bn.center else zeros
    return gamma, beta, bn.moving_mean.numpy(), bn.moving_variance.numpy()
