"""ONNX export for onnxruntime and TensorRT servers, through tf2onnx (``pip install efficientnet_keras[onnx]``).

The ONNX model takes ``images`` (float32 [batch, size, size, 3], RGB in [0, 255], already cropped and resized as
the evaluation transform does: the same input as the SavedModel's ``serving_images``) and returns ``logits`` and
``probabilities`` (float32 [batch, classes]). Its operators are those of opset :data:`OPSET`.
"""

from __future__ import annotations

import logging

import keras
import numpy as np

from efficientnet_keras.servable import Servable, prepare_output, require_tensorflow_backend

OPSET = 17  # ONNX 1.12 (2022): onnxruntime >= 1.12 and TensorRT >= 8.6 run every operator of it
IMAGES_INPUT = "images"
OUTPUTS = ("logits", "probabilities")


def _import_tf2onnx():
    try:
        import tf2onnx
    except ImportError as e:
        raise ValueError(f"ONNX export needs tf2onnx ({e}): pip install 'efficientnet_keras[onnx]'.") from None
    logging.getLogger("tf2onnx").setLevel(logging.ERROR)  # it logs every conversion step at INFO
    return tf2onnx


def _erfc(ctx, node, name, args):
    """tf2onnx has no handler for TensorFlow's Erfc (exact GELU, ``0.5 x erfc(-x / sqrt 2)``; ONNX has Erf):
    ``erfc(x) = 1 - erf(x)``. Where erfc is tiny (x > 4) its absolute error is float32's epsilon, and GELU
    multiplies it by a negative x whose GELU is itself ~0."""
    from tf2onnx import utils

    dtype = utils.map_onnx_to_numpy_type(ctx.get_dtype(node.input[0]))
    erf = ctx.make_node("Erf", [node.input[0]])
    one = ctx.make_const(utils.make_name(f"{name}_one"), np.array(1, dtype))
    outputs = node.output
    ctx.remove_node(node.name)
    ctx.make_node("Sub", [one.output[0], erf.output[0]], outputs=outputs, name=name)


def _in_float32(model: keras.Model) -> keras.Model:
    """The model with every layer computing in float32. tf2onnx writes nodes mixing bfloat16 and float16 for a
    mixed-precision graph (onnxruntime refuses them); ONNX runtimes choose their own precision (TensorRT's fp16
    flag), and mixed-precision variables are float32 already, so nothing is lost."""
    if all(layer.dtype_policy.name == "float32" for layer in model.layers):
        return model

    def float32(config):
        if isinstance(config, dict):
            if config.get("class_name") in ("DTypePolicy", "FloatDTypePolicy") and "config" in config:
                return {**config, "config": {**config["config"], "name": "float32"}}
            return {key: float32(value) for key, value in config.items()}
        if isinstance(config, list):
            return [float32(value) for value in config]
        return config

    copy = model.__class__.from_config(float32(model.get_config()))
    copy.set_weights(model.get_weights())
    return copy


def _logits_and_probabilities(servable: Servable):
    """A function images -> (logits, probabilities) of the servable's model, both float32."""
    model = _in_float32(servable.model)
    head = model.layers[-1]
    if not servable.outputs_probabilities:  # a trained model returning logits
        def forward(images):
            logits = keras.ops.cast(model(images, training=False), "float32")
            return logits, keras.ops.softmax(logits)
        return forward
    if not isinstance(head, keras.layers.Dense):
        raise ValueError(f"{model.name} ends in {type(head).__name__}, not the Dense classifier whose logits the "
                         "ONNX model returns.")
    body = keras.Model(model.inputs, head.input)  # shares the layers: everything up to the classifier
    linear = keras.layers.Dense.from_config({**head.get_config(), "activation": "linear", "name": "logits"})
    linear.build(head.input.shape)
    linear.set_weights(head.get_weights())

    def forward(images):
        logits = linear(body(images, training=False))
        return keras.ops.cast(logits, "float32"), keras.ops.cast(head.activation(logits), "float32")
    return forward


def export_onnx(servable: Servable, path: str, opset: int = OPSET, overwrite: bool = False) -> str:
    """Write ``path`` (an ``.onnx`` file, local or remote storage): the model at ``servable.image_size`` with a
    dynamic batch dimension. Nothing is written when the conversion fails."""
    require_tensorflow_backend()
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    if not path.endswith(".onnx"):
        raise ValueError(f"The ONNX file name must end with .onnx, got {path!r}.")
    size = servable.image_size
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"ONNX export needs a fixed image size (the model's input is {servable.model.input_shape}); "
                         "pass image_size (--image_size).")
    tf2onnx = _import_tf2onnx()
    forward = _logits_and_probabilities(servable)
    spec = [tf.TensorSpec([None, size, size, 3], tf.float32, name=IMAGES_INPUT)]
    function = tf.function(forward, input_signature=spec).get_concrete_function()
    # Frozen here, not by tf2onnx.from_function: that one turns every captured tensor that is not a variable (the
    # Normalization layer's mean and variance) into an extra graph input the caller would have to feed.
    frozen = convert_variables_to_constants_v2(function)
    inputs, outputs = [t.name for t in frozen.inputs], [t.name for t in frozen.outputs]
    names = dict(zip(inputs + outputs, (IMAGES_INPUT, *OUTPUTS), strict=True))
    tf_logger = logging.getLogger("tensorflow")
    level = tf_logger.level
    tf_logger.setLevel(logging.ERROR)  # tf2onnx calls TF1 graph utilities, each logging a deprecation warning
    try:
        proto, _ = tf2onnx.convert.from_graph_def(
            frozen.graph.as_graph_def(), name=servable.model.name, input_names=inputs, output_names=outputs,
            opset=opset, custom_op_handlers={"Erfc": (_erfc, [])}, tensors_to_rename=names)
    finally:
        tf_logger.setLevel(level)
    for value in (*proto.graph.input, *proto.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    prepare_output(path, overwrite)
    partial = f"{path}.partial"
    with tf.io.gfile.GFile(partial, "wb") as f:
        f.write(proto.SerializeToString())
    tf.io.gfile.rename(partial, path, overwrite=True)
    return path


def run_onnx(path: str, images: np.ndarray) -> dict[str, np.ndarray]:
    """Run an ONNX model from :func:`export_onnx` with onnxruntime (CPU): ``{"logits": ..., "probabilities": ...}``."""
    try:
        import onnxruntime
    except ImportError as e:
        raise ValueError(f"Running ONNX models needs onnxruntime ({e}): pip install 'efficientnet_keras[onnx]'.") \
            from None
    if "://" in path:  # onnxruntime reads local files; remote storage goes through gfile
        import tensorflow as tf

        with tf.io.gfile.GFile(path, "rb") as f:
            path = f.read()
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    values = session.run(list(OUTPUTS), {IMAGES_INPUT: np.asarray(images, np.float32)})
    return dict(zip(OUTPUTS, values, strict=True))
