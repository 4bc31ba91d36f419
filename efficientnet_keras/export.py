"""Deployment: SavedModel for TF Serving (image bytes in, top-k classes out), BatchNorm folding, TFLite.

    python -m efficientnet_keras.export --model=EfficientNetLite0 --export_dir=exports/lite0
    python -m efficientnet_keras.export --model=runs/digits --export_dir=exports/digits --fold_batchnorm
    python -m efficientnet_keras.export --model=EfficientNetLite0 --format=tflite_int8 --output=lite0_int8.tflite

``--model`` is a zoo variant (with ``--weights``), a ``.keras`` file, or a training run's ``model_dir``.
The SavedModel goes to ``<export_dir>/<version>/`` as TF Serving expects. Its signatures:

- ``serving_default``: ``image_bytes`` (string [batch], encoded JPEG/PNG/GIF/BMP, what TF Serving's REST API
  sends as ``{"b64": ...}``) → ``class_ids`` (int32 [batch, k]), ``class_names`` (string [batch, k]),
  ``probabilities`` (float32 [batch, k]). Decoding, central crop and resize run in the graph and are the
  training pipeline's evaluation transform (``transforms.eval_transform``), so served and evaluated numbers agree.
- ``serving_images``: ``images`` (float32 [batch, size, size, 3], RGB in [0, 255], already cropped) → the same.

Export is TensorFlow-only (SavedModel and TFLite are TensorFlow formats); build or load the model on the
TensorFlow backend.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import keras
import numpy as np

from efficientnet_keras import _keras_private as private
from efficientnet_keras.layers import FoldedBatchNorm, set_layer_weights
from efficientnet_keras.transforms import IMAGE_EXTENSIONS, LEGACY_V1, MAX_PIXELS, Preprocessing, saved_eval_transform

SERVING_DEFAULT = "serving_default"
SERVING_IMAGES = "serving_images"
BYTES_INPUT = "image_bytes"
IMAGES_INPUT = "images"
OUTPUTS = ("class_ids", "class_names", "probabilities")
DEFAULT_TOP_K = 5  # classes per image unless asked; a model with fewer classes returns all of them
TRAINED_MODEL_FILE = "model.keras"  # what train() writes into its model_dir


@dataclass
class Servable:
    """A model plus what serving needs to know about it."""

    model: keras.Model
    image_size: int
    class_names: list[str]
    crop_fraction: float | None = None  # None: the preprocessing's official crop at image_size
    preprocessing: Preprocessing = LEGACY_V1  # the variant's (models.Variant.preprocessing)

    def __post_init__(self):
        classes = self.model.output_shape[-1]
        if len(self.class_names) != classes:
            raise ValueError(f"{len(self.class_names)} class names for a model with {classes} classes.")
        if self.crop_fraction is not None and not 0 < self.crop_fraction <= 1:
            raise ValueError(f"crop_fraction must be in (0, 1], got {self.crop_fraction}.")

    @property
    def outputs_probabilities(self) -> bool:
        """Whether the classifier ends in softmax (zoo models) or returns logits (trained with from_logits)."""
        activation = getattr(self.model.layers[-1], "activation", None)
        return getattr(activation, "__name__", "") == "softmax"


def _default_class_names(classes: int) -> list[str]:
    from efficientnet_keras.imagenet import IMAGENET_21K_CLASSES, class_names

    if classes in (1000, IMAGENET_21K_CLASSES):  # ImageNet-1k, or the official ImageNet-21k heads
        return class_names(classes)
    return [str(i) for i in range(classes)]


def is_variant(name: str) -> bool:
    from efficientnet_keras.models import get_variant

    try:
        get_variant(name)
    except ValueError:
        return False
    return True


def load_servable(model: str | keras.Model, weights: str | None = "default", image_size: int | None = None,
                  crop_fraction: float | None = None, class_names: list[str] | None = None) -> Servable:
    """A zoo variant name, a ``.keras`` file, a training ``model_dir`` or a built model, ready to export.

    The image size and evaluation transform come from the variant (its resolution and official crop), the
    training run (its evaluation size and transform) or the model's static input shape; ``image_size`` /
    ``crop_fraction`` override them.
    """
    from efficientnet_keras.models import create_model, get_variant

    import tensorflow as tf

    run: dict = {}
    if isinstance(model, keras.Model):
        net = model
    elif isinstance(model, str) and not model.endswith(".keras") and tf.io.gfile.isdir(model):
        path = f"{model.rstrip('/')}/{TRAINED_MODEL_FILE}"
        if not tf.io.gfile.exists(path):
            raise ValueError(f"{model!r} is a folder without {TRAINED_MODEL_FILE}: not a finished training run "
                             "(python -m efficientnet_keras.train writes it at the end).")
        results = f"{model.rstrip('/')}/results.json"
        if tf.io.gfile.exists(results):
            with tf.io.gfile.GFile(results) as f:
                run = json.load(f)
        net = _load_keras(path)
    elif isinstance(model, str) and model.endswith(".keras"):
        if not tf.io.gfile.exists(model):
            raise ValueError(f"Model file not found: {model}")
        net = _load_keras(model)
        beside = f"{os.path.dirname(model) or '.'}/results.json"  # a run's model.keras: the run's size and classes
        if os.path.basename(model) == TRAINED_MODEL_FILE and tf.io.gfile.exists(beside):
            with tf.io.gfile.GFile(beside) as f:
                run = json.load(f)
    elif isinstance(model, str) and is_variant(model):
        net = create_model(model, weights=weights)
        variant = get_variant(model)
        run = {"eval_size": variant.resolution, "preprocessing": dataclasses.asdict(variant.preprocessing)}
    else:
        raise ValueError(f"Unknown model or checkpoint {model!r}: expected a variant name (e.g. EfficientNetLite0), "
                         "a .keras file, or a training model_dir holding model.keras.")
    size = image_size or run.get("eval_size") or net.input_shape[1]
    if not size:
        raise ValueError(f"{net.name} takes images of any size; pass image_size (the size to serve at).")
    classes = net.output_shape[-1]
    names = class_names or run.get("class_names") or _default_class_names(classes)
    saved_crop, preprocessing = saved_eval_transform(run)
    return Servable(net, int(size), list(names), crop_fraction or saved_crop, preprocessing)


def _load_keras(path: str) -> keras.Model:
    try:
        return keras.saving.load_model(path, compile=False)
    except (TypeError, ValueError) as e:
        if "Could not locate" in str(e) or "Unknown" in str(e):
            raise ValueError(f"{path} holds a class Keras cannot find ({e}). A model trained by an older version "
                             "of efficientnet_keras saved its optimizer; re-save it with efficientnet_keras.train "
                             "imported.") from None
        raise


# ------------------------------------------------------------------------------------------- BatchNorm folding


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


# ------------------------------------------------------------------------------------------- SavedModel


def next_version(export_dir: str) -> int:
    """One more than the largest numeric version folder (TF Serving serves the largest), or 1."""
    import tensorflow as tf

    if not tf.io.gfile.isdir(export_dir):
        return 1
    versions = [int(d.rstrip("/")) for d in tf.io.gfile.listdir(export_dir) if re.fullmatch(r"\d+/?", d)]
    return max(versions, default=0) + 1


def _prepare_output(path: str, overwrite: bool) -> None:
    """Refuse to replace a non-empty output without ``overwrite`` (local or remote storage, through gfile)."""
    import tensorflow as tf

    gfile = tf.io.gfile
    if gfile.exists(path) and (not gfile.isdir(path) or gfile.listdir(path)):
        if not overwrite:
            raise ValueError(f"{path} already exists and is not empty; pass overwrite=True (--overwrite) to replace "
                             "it, or choose another version.")
        if gfile.isdir(path):
            gfile.rmtree(path)
        else:
            gfile.remove(path)


def serving_functions(servable: Servable, top_k: int | None = None,
                      max_pixels: int | None = MAX_PIXELS) -> dict[str, tuple[Callable, list]]:
    """``{signature name: (function, input signature)}`` of the exported SavedModel (TensorFlow ops); ``top_k``
    classes per image, by default min(5, classes). An image whose header claims more than ``max_pixels`` pixels
    is answered INVALID_ARGUMENT before it is decoded (``transforms.check_pixels``): the server's memory stays
    flat."""
    import tensorflow as tf

    from efficientnet_keras.transforms import decode_rgb, eval_transform

    if max_pixels is not None and max_pixels < 1:
        raise ValueError(f"max_pixels must be a positive number of pixels (or None: no limit), got {max_pixels}.")

    classes = len(servable.class_names)
    top_k = min(DEFAULT_TOP_K, classes) if top_k is None else top_k
    if not 1 <= top_k <= classes:
        raise ValueError(f"top_k={top_k} is outside 1..{classes}, the number of classes of {servable.model.name}.")
    size, model = servable.image_size, servable.model
    names = tf.constant(servable.class_names)
    softmax = not servable.outputs_probabilities

    def classify(images):
        outputs = tf.cast(model(images, training=False), tf.float32)
        probs = tf.nn.softmax(outputs) if softmax else outputs
        top = tf.math.top_k(probs, k=top_k)
        return {"class_ids": top.indices, "class_names": tf.gather(names, top.indices), "probabilities": top.values}

    def decode(image_bytes):
        return eval_transform(decode_rgb(image_bytes, max_pixels), size, servable.preprocessing,
                              servable.crop_fraction)

    def serve_bytes(image_bytes):
        images = tf.map_fn(decode, image_bytes, fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32))
        return classify(images)

    def serve_images(images):
        return classify(images)

    return {
        SERVING_DEFAULT: (serve_bytes, [tf.TensorSpec([None], tf.string, name=BYTES_INPUT)]),
        SERVING_IMAGES: (serve_images, [tf.TensorSpec([None, size, size, 3], tf.float32, name=IMAGES_INPUT)]),
    }


def export_saved_model(servable: Servable, export_dir: str, version: int | None = None, top_k: int | None = None,
                       overwrite: bool = False, max_pixels: int | None = MAX_PIXELS) -> str:
    """Write ``<export_dir>/<version>/`` (a SavedModel with the two signatures above); return its path."""
    _require_tensorflow_backend()
    version = next_version(export_dir) if version is None else version
    if version < 0:
        raise ValueError(f"version must be a non-negative integer, got {version}.")
    path = f"{export_dir.rstrip('/')}/{version}"
    top_k = min(DEFAULT_TOP_K, len(servable.class_names)) if top_k is None else top_k
    functions = serving_functions(servable, top_k, max_pixels)  # validates its arguments before anything is written
    _prepare_output(path, overwrite)
    archive = keras.export.ExportArchive()
    archive.track(servable.model)
    for name, (fn, signature) in functions.items():
        archive.add_endpoint(name, fn, input_signature=signature)
    archive.write_out(path, verbose=False)
    import tensorflow as tf

    with tf.io.gfile.GFile(f"{path}/assets.extra.json", "w") as f:  # what a client wants to know, beside the model
        json.dump({"model": servable.model.name, "image_size": servable.image_size,
                   "crop_fraction": servable.crop_fraction or servable.preprocessing.crop_fraction(servable.image_size),
                   "preprocessing": dataclasses.asdict(servable.preprocessing), "top_k": top_k,
                   "signatures": {SERVING_DEFAULT: BYTES_INPUT, SERVING_IMAGES: IMAGES_INPUT}}, f, indent=2)
    return path


# ------------------------------------------------------------------------------------------- TFLite


def export_tflite(servable: Servable, path: str, quantize: str | None = None,
                  representative_images: Iterable[np.ndarray] | np.ndarray | None = None,
                  overwrite: bool = False) -> str:
    """Write a TFLite model taking one float32 [1, size, size, 3] image in [0, 255] (``quantize=None``; with
    ``quantize="float16"`` its weights are stored as float16: half the file, float32 inputs and outputs, fp16
    arithmetic on GPU delegates), or a full-integer one (``quantize="int8"``: int8 weights and activations, uint8 pixels in, uint8 probabilities out),
    calibrated on ``representative_images`` (arrays [size, size, 3] or [n, size, size, 3], RGB in [0, 255]).
    Uses Keras' LiteRT exporter (SavedModel → TFLiteConverter)."""
    import tensorflow as tf

    _require_tensorflow_backend()
    if not path.endswith(".tflite"):
        raise ValueError(f"The TFLite file name must end with .tflite, got {path!r}.")
    if quantize not in (None, "float16", "int8"):
        raise ValueError(f"quantize must be None (float32), 'float16' or 'int8', got {quantize!r}.")
    size = servable.image_size
    options: dict = {}
    if quantize == "float16":  # TFLiteConverter's float16 post-training quantization
        options = dict(optimizations=[tf.lite.Optimize.DEFAULT], target_spec={"supported_types": [tf.float16]})
    if quantize == "int8":
        calibration = _check_representative(representative_images, size)

        def representative_dataset():
            for image in calibration:
                yield [image[None]]

        options = dict(optimizations=[tf.lite.Optimize.DEFAULT], representative_dataset=representative_dataset,
                       target_spec={"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]},
                       inference_input_type=tf.uint8, inference_output_type=tf.uint8)
    _prepare_output(path, overwrite)
    if "://" not in path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    servable.model.export(path, format="litert", verbose=False,
                          input_signature=[tf.TensorSpec([1, size, size, 3], tf.float32, name=IMAGES_INPUT)],
                          **options)
    return path


def _check_representative(images, size: int) -> list[np.ndarray]:
    if images is None:
        raise ValueError("int8 quantization needs representative_images: real images [size, size, 3] in [0, 255] "
                         "like those the model will see (a few hundred for a good calibration).")
    batch = [np.asarray(images, np.float32)] if isinstance(images, np.ndarray) and images.ndim == 4 else None
    arrays = list(batch[0]) if batch else [np.asarray(x, np.float32) for x in images]
    if not arrays:
        raise ValueError("representative_images is empty.")
    for i, image in enumerate(arrays):
        if image.shape != (size, size, 3):
            raise ValueError(f"representative image {i} has shape {image.shape}; the model takes ({size}, {size}, 3) "
                             "RGB images (crop/resize them like the evaluation pipeline, transforms.eval_transform).")
        if image.min() < 0 or image.max() > 255:
            raise ValueError(f"representative image {i} has values in [{image.min()}, {image.max()}]; pixels must "
                             "be RGB in [0, 255] (the model does its own preprocessing).")
    return arrays


def run_tflite(path: str, images: np.ndarray) -> np.ndarray:
    """Run a TFLite model from :func:`export_tflite` on float images [n, size, size, 3]; probabilities [n, classes]."""
    try:  # LiteRT's own interpreter; tf.lite.Interpreter is deprecated
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    interpreter = Interpreter(model_path=path)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    results = []
    for image in np.asarray(images, np.float32):
        x = image[None]
        if inp["dtype"] != np.float32:
            scale, zero = inp["quantization"]
            info = np.iinfo(inp["dtype"])
            x = np.clip(np.round(x / scale + zero), info.min, info.max).astype(inp["dtype"])
        interpreter.set_tensor(inp["index"], x)
        interpreter.invoke()
        y = interpreter.get_tensor(out["index"])[0]
        if out["dtype"] != np.float32:
            scale, zero = out["quantization"]
            y = (y.astype(np.float32) - zero) * scale
        results.append(y)
    return np.stack(results)


def calibration_images(source: str, image_size: int, limit: int = 200, crop_fraction: float | None = None,
                       preprocessing: Preprocessing = LEGACY_V1) -> np.ndarray:
    """Up to ``limit`` images [n, size, size, 3] for int8 calibration, through the evaluation crop: from a folder
    (all JPEG/PNG/BMP/GIF files below it, sorted) or from a dataset name's training split (``training.sources.load_source``)."""
    import tensorflow as tf

    from efficientnet_keras.transforms import eval_transform

    if tf.io.gfile.isdir(source):
        files = sorted(f"{d.rstrip('/')}/{f}" for d, _, fs in tf.io.gfile.walk(source) for f in fs
                       if f.lower().endswith(IMAGE_EXTENSIONS))[:limit]
        if not files:
            raise ValueError(f"No JPEG/PNG/BMP/GIF images below {source!r} to calibrate with.")
        images = np.stack([eval_transform(tf.io.read_file(f), image_size, preprocessing, crop_fraction).numpy()
                           for f in files])
    else:
        # A dataset name: read as the trainer reads it (tfds and the embedded sets are optional here, so imported
        # only when named), through the evaluation transform that dataset calls for; an undecodable image is left out.
        from efficientnet_keras.training import sources
        from efficientnet_keras.transforms import decode_whole

        train, _, info = sources.load_source(source)
        crop_fraction, preprocessing = sources.eval_settings(info, preprocessing, crop_fraction)
        ds = sources.in_storage_order(sources.limit(train, limit)).map(
            lambda image, _: eval_transform(decode_whole(image), image_size, preprocessing, crop_fraction))
        images = np.stack(list(ds.ignore_errors().as_numpy_iterator()))
    # The TFLite model takes RGB images in [0, 255]: the V1 transform's bicubic overshoot is clipped to that range.
    return np.clip(images, 0.0, 255.0)


def _require_tensorflow_backend() -> None:
    if keras.backend.backend() != "tensorflow":
        raise ValueError(f"SavedModel and TFLite export need KERAS_BACKEND=tensorflow (now "
                         f"{keras.backend.backend()!r}); a .keras file saved on any backend loads there.")


# ------------------------------------------------------------------------------------------- CLI


def _define_flags():
    from absl import flags

    flags.DEFINE_string("model", None, "Variant name (EfficientNetLite0), a .keras file, or a training model_dir.",
                        required=True)
    flags.DEFINE_string("weights", "default", 'For a variant name: "default" (its constructor\'s: "imagenet", or a '
                        'CoAtNet\'s timm weights), a weight set, "timm:<name>", a weights file, or "none".')
    flags.DEFINE_enum("format", "saved_model", ["saved_model", "tflite", "tflite_fp16", "tflite_int8"],
                      "What to write.")
    flags.DEFINE_string("export_dir", None, "SavedModel base folder; the model goes to <export_dir>/<version>/.")
    flags.DEFINE_integer("version", None, "SavedModel version folder (default: one more than the largest there).",
                         lower_bound=0)
    flags.DEFINE_string("output", None, "TFLite file to write (ends with .tflite).")
    flags.DEFINE_integer("top_k", None, f"Classes returned per image by the serving signatures (default: "
                         f"min({DEFAULT_TOP_K}, classes)).", lower_bound=1)
    flags.DEFINE_integer("image_size", None, "Serving size (default: the variant's / run's evaluation size).")
    flags.DEFINE_float("crop_fraction", None, "Central crop (default: the run's, else the variant's official one).")
    flags.DEFINE_bool("fold_batchnorm", False, "Fold BatchNorm into the convolutions (faster inference, same outputs).")
    flags.DEFINE_string("calibration_data", None, "For tflite_int8: a folder of images or a dataset name.")
    flags.DEFINE_integer("calibration_examples", 200, "How many calibration images to use.", lower_bound=1)
    flags.DEFINE_bool("overwrite", False, "Replace an existing, non-empty version folder or TFLite file.")
    flags.DEFINE_integer("max_pixels", MAX_PIXELS, "The SavedModel answers INVALID_ARGUMENT, before decoding, for an "
                         "image whose header claims more pixels than this.", lower_bound=1)


def main(argv: list[str]) -> None:
    from absl import app, flags, logging

    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    f = flags.FLAGS
    logging.set_verbosity(logging.WARNING)  # quiet: no absl INFO lines (tfds' "Load dataset info ...")
    try:
        servable = load_servable(f.model, None if f.weights == "none" else f.weights, f.image_size, f.crop_fraction)
        if f.fold_batchnorm:
            servable.model = fold_batchnorm(servable.model)
        if f.format == "saved_model":
            if not f.export_dir:
                raise ValueError("--format=saved_model needs --export_dir.")
            path = export_saved_model(servable, f.export_dir, f.version, f.top_k, f.overwrite, f.max_pixels)
        else:
            if not f.output:
                raise ValueError(f"--format={f.format} needs --output=FILE.tflite.")
            calibration = None
            if f.format == "tflite_int8":
                if not f.calibration_data:
                    raise ValueError("--format=tflite_int8 needs --calibration_data (a folder of images or a dataset "
                                     "name) to calibrate the int8 ranges.")
                calibration = calibration_images(f.calibration_data, servable.image_size, f.calibration_examples,
                                                 servable.crop_fraction, servable.preprocessing)
            quantize = {"tflite_int8": "int8", "tflite_fp16": "float16"}.get(f.format)
            path = export_tflite(servable, f.output, quantize, calibration, f.overwrite)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    print(f"Wrote {path}")


def run() -> None:
    from efficientnet_keras._cli import run_app

    _define_flags()
    run_app(main, "efficientnet_keras.export", __doc__)


if __name__ == "__main__":
    run()
