"""Classify images with a pretrained EfficientNet and print the top-k ImageNet classes.

    python -m efficientnet_keras.predict                        # the sample photos, EfficientNet-Lite0
    python -m efficientnet_keras.predict --model=EfficientNetLite2 --images=a.jpg,b.png --top=3

With no ``--images`` it classifies the two sample photos that ship with the package (scikit-image's
``chelsea``: a cat, ``coffee``: an espresso), so it runs offline out of the box.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from efficientnet_keras.transforms import DEFAULT_CROP_FRACTION, LEGACY_V1, MAX_PIXELS, Preprocessing  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "EfficientNetLite0", "A variant (EfficientNetLite0, EfficientNetV2S, ...: ImageNet "
                    "classes), a training run folder or its .keras file (the run's classes and evaluation "
                    "transform), or an exported SavedModel folder.")
flags.DEFINE_list("images", [], "Image files (JPEG/PNG/BMP/GIF). Default: the shipped cat and espresso photos.")
flags.DEFINE_string("weights", "default", '"default" (the constructor\'s: "imagenet", or a CoAtNet\'s timm weights), '
                    'a weight set ("imagenet", "imagenet21k-ft1k", "imagenet21k", "noisy-student", "advprop"), '
                    '"timm:<name>", an official checkpoint or a weights file.')
flags.DEFINE_integer("top", 5, "How many classes to print per image.", lower_bound=1, upper_bound=21843)
flags.DEFINE_integer("max_pixels", MAX_PIXELS, "Refuse an image whose header claims more pixels than this, before "
                     "decoding it.", lower_bound=1)
flags.DEFINE_float("crop_fraction", None, "Central crop kept before resizing (default: the variant's official "
                   "evaluation crop, size/(size+32); V2-S/M/L/XL at 320 px and up: the whole image).")



def sample_images() -> dict[str, bytes]:
    """The two photos that ship with the package (scikit-image's CC0 ``chelsea`` and ``coffee``), no download: their
    JPEG bytes, which ``classify`` and a SavedModel take as they take any image file."""
    from efficientnet_keras.weights.check import sample_files

    files = sample_files()
    return {"chelsea (cat)": files["cat.jpg"], "coffee (espresso)": files["espresso.jpg"]}


def read_image(path: str, max_pixels: int | None = MAX_PIXELS) -> bytes:
    """An image file's bytes, checked as ``load_image`` checks it (found, within ``max_pixels``, decodable). Bytes
    go through the evaluation transform exactly as in evaluation and serving (a V1 JPEG's window decoded alone)."""
    load_image(path, max_pixels)
    with open(path, "rb") as f:
        return f.read()


def load_image(path: str, max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
    """An image file as uint8 RGB; one whose header claims more than ``max_pixels`` pixels is refused unread."""
    import tensorflow as tf

    from efficientnet_keras.transforms import decode_rgb, header_size

    if not os.path.isfile(path):
        raise SystemExit(f"error: image file not found: {path}")
    encoded = tf.io.read_file(path)
    try:
        height, width = (int(v) for v in header_size(encoded))
        if max_pixels is not None and height * width > max_pixels:
            raise SystemExit(f"error: {path} is {width}x{height} pixels (from its header): above the limit of "
                             f"{max_pixels} pixels, so it was not decoded. Downscale it, or raise --max_pixels.")
        return decode_rgb(encoded, max_pixels=None).numpy()
    except tf.errors.InvalidArgumentError as e:
        raise SystemExit(f"error: {path} is not a JPEG/PNG/BMP/GIF image: {e.message}") from None


def center_crop_resize(image: np.ndarray, size: int, crop_fraction: float = DEFAULT_CROP_FRACTION) -> np.ndarray:
    """The evaluation transform (``transforms.center_crop``) on one image, as a float32 array in [0, 255]."""
    from efficientnet_keras.transforms import center_crop

    return center_crop(image, size, crop_fraction).numpy()


def classify(model, images: dict[str, bytes | np.ndarray], top: int, crop_fraction: float | None = None,
             preprocessing: Preprocessing = LEGACY_V1, max_pixels: int | None = MAX_PIXELS):
    """``{name: [(wordnet id, class, probability), ...]}`` for each image (encoded bytes, decoded within
    ``max_pixels``, or a decoded array), through the evaluation transform of ``preprocessing`` (the variant's) or a
    fixed ``crop_fraction``."""
    from efficientnet_keras import decode_predictions
    from efficientnet_keras.transforms import eval_transform

    size = model.input_shape[1]
    batch = np.stack([eval_transform(img, size, preprocessing, crop_fraction, max_pixels).numpy()
                      for img in images.values()])
    probs = model.predict(batch, verbose=0)
    return dict(zip(images, decode_predictions(probs, top=top)))


def classify_servable(servable, images: dict[str, bytes | np.ndarray], top: int,
                      max_pixels: int | None = MAX_PIXELS) -> dict[str, list[tuple[str, float]]]:
    """``{name: [(class name, probability), ...]}`` of a trained model (``export.load_servable``: a run folder or
    a .keras file), through the run's own evaluation transform and with its class names."""
    from efficientnet_keras.transforms import eval_transform

    batch = np.stack([eval_transform(img, servable.image_size, servable.preprocessing, servable.crop_fraction,
                                     max_pixels).numpy() for img in images.values()])
    outputs = servable.model.predict(batch, verbose=0)
    if not servable.outputs_probabilities:  # runs saved before model.keras returned probabilities
        outputs = np.exp(outputs - outputs.max(axis=1, keepdims=True))
        outputs /= outputs.sum(axis=1, keepdims=True)
    top = min(top, outputs.shape[1])
    return {name: [(servable.class_names[i], float(row[i])) for i in np.argsort(-row)[:top]]
            for name, row in zip(images, outputs, strict=True)}


def classify_saved_model(path: str, encoded: dict[str, bytes], top: int) -> dict[str, list[tuple[str, float]]]:
    """``{name: [(class name, probability), ...]}`` from an exported SavedModel's ``serving_default`` (image bytes
    in, its top-k classes out), as a TF Serving client would get them; at most ``top`` (and the export's k)."""
    import tensorflow as tf

    serve = tf.saved_model.load(path).signatures["serving_default"]
    out = serve(image_bytes=tf.constant(list(encoded.values())))
    names, probs = out["class_names"].numpy(), out["probabilities"].numpy()
    return {name: [(n.decode(), float(p)) for n, p in zip(names[i], probs[i], strict=True)][:top]
            for i, name in enumerate(encoded)}


def _served(path: str, images: dict[str, bytes], top: int) -> dict[str, list[tuple[str, float]]]:
    """``classify_saved_model``, with the SavedModel's refusal of an image (above the pixel limit it was exported
    with) as a clear error instead of a graph traceback."""
    import re

    import tensorflow as tf

    try:
        return classify_saved_model(path, images, top)
    except tf.errors.InvalidArgumentError as e:
        found = re.search(r"assertion failed: \[(.*?)\]\n", e.message, re.S)
        detail = found.group(1) if found else e.message.strip().splitlines()[-1]
        raise SystemExit(f"error: the SavedModel {path} refused the images: {detail} (the SavedModel's limit is "
                         "the one it was exported with: efficientnet_keras.export --max_pixels)") from None


def _is_trained_model(path: str) -> bool:
    import tensorflow as tf

    return path.endswith(".keras") or os.path.isdir(path) or ("://" in path and tf.io.gfile.isdir(path))


def _is_saved_model(path: str) -> bool:
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, "saved_model.pb"))


def _print(results: dict) -> None:
    for name, predictions in results.items():
        print(f"{name}:")
        for rank, prediction in enumerate(predictions, 1):
            *wnid, label, prob = prediction
            print(f"  {rank}. {label:<24} {prob:7.2%}" + (f"  ({wnid[0]})" if wnid else ""))


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    from efficientnet_keras import create_model, export, get_preprocessing

    images = {p: read_image(p, FLAGS.max_pixels) for p in FLAGS.images} if FLAGS.images else sample_images()
    try:
        if _is_saved_model(FLAGS.model):
            _print(_served(FLAGS.model, images, FLAGS.top))
            return
        if _is_trained_model(FLAGS.model):  # a training run or a .keras file: its classes and transform
            _print(classify_servable(export.load_servable(FLAGS.model, image_size=None,
                                                          crop_fraction=FLAGS.crop_fraction), images, FLAGS.top,
                                    FLAGS.max_pixels))
            return
        model = create_model(FLAGS.model, weights=FLAGS.weights)
    except ValueError as e:  # bad model name, missing weights: the message says what to do
        raise SystemExit(f"error: {e}") from None
    _print(classify(model, images, FLAGS.top, FLAGS.crop_fraction, get_preprocessing(model).transform,
                    FLAGS.max_pixels))


def run() -> None:
    from efficientnet_keras._cli import run_app

    run_app(main, "efficientnet_keras.predict", __doc__)


if __name__ == "__main__":
    run()
