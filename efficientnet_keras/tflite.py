"""TFLite export (float32, float16 weights, full-integer int8), its interpreter, and int8 calibration images."""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np

from efficientnet_keras.servable import Servable, prepare_output, require_tensorflow_backend
from efficientnet_keras.transforms import IMAGE_EXTENSIONS, LEGACY_V1, Preprocessing

IMAGES_INPUT = "images"


def export_tflite(servable: Servable, path: str, quantize: str | None = None,
                  representative_images: Iterable[np.ndarray] | np.ndarray | None = None,
                  overwrite: bool = False) -> str:
    """Write a TFLite model taking one float32 [1, size, size, 3] image in [0, 255] (``quantize=None``; with
    ``quantize="float16"`` its weights are stored as float16: half the file, float32 inputs and outputs, fp16
    arithmetic on GPU delegates), or a full-integer one (``quantize="int8"``: int8 weights and activations, uint8 pixels in, uint8 probabilities out),
    calibrated on ``representative_images`` (arrays [size, size, 3] or [n, size, size, 3], RGB in [0, 255]).
    Uses Keras' LiteRT exporter (SavedModel → TFLiteConverter)."""
    import tensorflow as tf

    require_tensorflow_backend()
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
    prepare_output(path, overwrite)
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
