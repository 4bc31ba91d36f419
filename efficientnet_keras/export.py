"""Deployment: SavedModel for TF Serving (image bytes in, top-k classes out), BatchNorm folding, TFLite, ONNX.

    python -m efficientnet_keras.export --model=EfficientNetLite0 --export_dir=exports/lite0
    python -m efficientnet_keras.export --model=runs/digits --export_dir=exports/digits --fold_batchnorm
    python -m efficientnet_keras.export --model=EfficientNetLite0 --format=tflite_int8 --output=lite0_int8.tflite
    python -m efficientnet_keras.export --model=EfficientNetV2B0 --format=onnx --output=v2b0.onnx

``--model`` is a zoo variant (with ``--weights``), a ``.keras`` file, or a training run's ``model_dir``.
The SavedModel goes to ``<export_dir>/<version>/`` as TF Serving expects. Its signatures:

- ``serving_default``: ``image_bytes`` (string [batch], encoded JPEG/PNG/GIF/BMP, what TF Serving's REST API
  sends as ``{"b64": ...}``) → ``class_ids`` (int32 [batch, k]), ``class_names`` (string [batch, k]),
  ``probabilities`` (float32 [batch, k]). Decoding, central crop and resize run in the graph and are the
  training pipeline's evaluation transform (``transforms.eval_transform``), so served and evaluated numbers agree.
- ``serving_images``: ``images`` (float32 [batch, size, size, 3], RGB in [0, 255], already cropped) → the same.

TFLite (:mod:`efficientnet_keras.tflite`) and ONNX (:mod:`efficientnet_keras.onnx_export`) files take the
``serving_images`` input. Export is TensorFlow-only (SavedModel, TFLite and tf2onnx are TensorFlow tools); build
or load the model on the TensorFlow backend.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable

import keras

from efficientnet_keras.folding import fold_batchnorm, foldable_pairs
from efficientnet_keras.onnx_export import OPSET, export_onnx, run_onnx
from efficientnet_keras.servable import (TRAINED_MODEL_FILE, Servable, default_class_names, is_variant, load_servable, prepare_output,
                                         require_tensorflow_backend)
from efficientnet_keras.tflite import calibration_images, export_tflite, run_tflite
from efficientnet_keras.transforms import MAX_PIXELS

__all__ = ["Servable", "load_servable", "is_variant", "default_class_names", "serving_functions", "export_saved_model", "next_version",
           "fold_batchnorm", "foldable_pairs", "export_tflite", "run_tflite", "calibration_images", "export_onnx",
           "run_onnx", "OPSET", "TRAINED_MODEL_FILE"]

SERVING_DEFAULT = "serving_default"
SERVING_IMAGES = "serving_images"
BYTES_INPUT = "image_bytes"
IMAGES_INPUT = "images"
OUTPUTS = ("class_ids", "class_names", "probabilities")
DEFAULT_TOP_K = 5  # classes per image unless asked; a model with fewer classes returns all of them


# ------------------------------------------------------------------------------------------- SavedModel


def next_version(export_dir: str) -> int:
    """One more than the largest numeric version folder (TF Serving serves the largest), or 1."""
    import tensorflow as tf

    if not tf.io.gfile.isdir(export_dir):
        return 1
    versions = [int(d.rstrip("/")) for d in tf.io.gfile.listdir(export_dir) if re.fullmatch(r"\d+/?", d)]
    return max(versions, default=0) + 1


def serving_functions(servable: Servable, top_k: int | None = None, max_pixels: int | None = MAX_PIXELS,
                      jpeg_scaling: bool = True) -> dict[str, tuple[Callable, list]]:
    """``{signature name: (function, input signature)}`` of the exported SavedModel (TensorFlow ops); ``top_k``
    classes per image, by default min(5, classes). An image whose header claims more than ``max_pixels`` pixels
    is answered INVALID_ARGUMENT before it is decoded (``transforms.check_pixels``): the server's memory stays
    flat. ``jpeg_scaling``: a JPEG whose evaluation crop is at least twice the model input is decoded at 1/2,
    1/4 or 1/8 scale (``transforms.decode_rgb``); False decodes every image at full scale, as the official
    evaluation."""
    import tensorflow as tf

    from efficientnet_keras.transforms import eval_transform

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
        return eval_transform(image_bytes, size, servable.preprocessing, servable.crop_fraction, max_pixels,
                              jpeg_scaling)

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
                       overwrite: bool = False, max_pixels: int | None = MAX_PIXELS, jpeg_scaling: bool = True) -> str:
    """Write ``<export_dir>/<version>/`` (a SavedModel with the two signatures above); return its path."""
    require_tensorflow_backend()
    version = next_version(export_dir) if version is None else version
    if version < 0:
        raise ValueError(f"version must be a non-negative integer, got {version}.")
    path = f"{export_dir.rstrip('/')}/{version}"
    top_k = min(DEFAULT_TOP_K, len(servable.class_names)) if top_k is None else top_k
    functions = serving_functions(servable, top_k, max_pixels, jpeg_scaling)  # validates its arguments before anything is written
    prepare_output(path, overwrite)
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
                   "max_pixels": max_pixels, "jpeg_scaling": jpeg_scaling,
                   "signatures": {SERVING_DEFAULT: BYTES_INPUT, SERVING_IMAGES: IMAGES_INPUT}}, f, indent=2)
    return path


# ------------------------------------------------------------------------------------------- CLI


def _define_flags():
    from absl import flags

    flags.DEFINE_string("model", None, "Variant name (EfficientNetLite0), a .keras file, or a training model_dir.",
                        required=True)
    flags.DEFINE_string("weights", "default", 'For a variant name: "default" (its constructor\'s: "imagenet", or a '
                        'CoAtNet\'s timm weights), a weight set, "timm:<name>", a weights file, or "none".')
    flags.DEFINE_enum("format", "saved_model", ["saved_model", "tflite", "tflite_fp16", "tflite_int8", "onnx"],
                      "What to write.")
    flags.DEFINE_string("export_dir", None, "SavedModel base folder; the model goes to <export_dir>/<version>/.")
    flags.DEFINE_integer("version", None, "SavedModel version folder (default: one more than the largest there).",
                         lower_bound=0)
    flags.DEFINE_string("output", None, "TFLite or ONNX file to write (ends with .tflite / .onnx).")
    flags.DEFINE_integer("opset", OPSET, "For onnx: the ONNX opset of the file.", lower_bound=13)
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
    flags.DEFINE_bool("jpeg_scaling", True, "The SavedModel decodes a JPEG whose evaluation crop is at least twice "
                      "the input at 1/2, 1/4 or 1/8 scale (faster; --nojpeg_scaling: every image at full scale, as "
                      "the official evaluation).")


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
            path = export_saved_model(servable, f.export_dir, f.version, f.top_k, f.overwrite, f.max_pixels,
                                      f.jpeg_scaling)
        elif f.format == "onnx":
            if not f.output:
                raise ValueError("--format=onnx needs --output=FILE.onnx.")
            path = export_onnx(servable, f.output, f.opset, f.overwrite)
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
