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

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "EfficientNetLite0", "Variant to use, e.g. EfficientNetLite0 or EfficientNetV2S.")
flags.DEFINE_list("images", [], "Image files (JPEG/PNG/BMP/GIF). Default: the shipped cat and espresso photos.")
flags.DEFINE_string("weights", "default", '"default" (the constructor\'s: "imagenet", or a CoAtNet\'s timm weights), '
                    'a weight set ("imagenet", "imagenet21k-ft1k", "imagenet21k", "noisy-student", "advprop"), '
                    '"timm:<name>", an official checkpoint or a weights file.')
flags.DEFINE_integer("top", 5, "How many classes to print per image.", lower_bound=1, upper_bound=21843)
flags.DEFINE_float("crop_fraction", None, "Central crop kept before resizing (default: the variant's official "
                   "evaluation crop, size/(size+32); V2-S/M/L/XL at 320 px and up: the whole image).")

from efficientnet_keras.transforms import DEFAULT_CROP_FRACTION, LEGACY_V1, Preprocessing  # noqa: E402


def sample_images() -> dict[str, np.ndarray]:
    """The two photos that ship with the package (scikit-image's CC0 ``chelsea`` and ``coffee``), no download."""
    from efficientnet_keras.weights.check import sample_photos

    photos = sample_photos()
    return {"chelsea (cat)": photos["cat.jpg"], "coffee (espresso)": photos["espresso.jpg"]}


def load_image(path: str) -> np.ndarray:
    import tensorflow as tf

    if not os.path.isfile(path):
        raise SystemExit(f"Image file not found: {path}")
    try:
        return tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False).numpy()
    except tf.errors.InvalidArgumentError as e:
        raise SystemExit(f"{path} is not a JPEG/PNG/BMP/GIF image: {e.message}") from None


def center_crop_resize(image: np.ndarray, size: int, crop_fraction: float = DEFAULT_CROP_FRACTION) -> np.ndarray:
    """The evaluation transform (``data.center_crop``) on one image, as a float32 array in [0, 255]."""
    from efficientnet_keras.transforms import center_crop

    return center_crop(image, size, crop_fraction).numpy()


def classify(model, images: dict[str, np.ndarray], top: int, crop_fraction: float | None = None,
             preprocessing: Preprocessing = LEGACY_V1):
    """``{name: [(wordnet id, class, probability), ...]}`` for each image, through the evaluation transform of
    ``preprocessing`` (the variant's) or a fixed ``crop_fraction``."""
    from efficientnet_keras import decode_predictions
    from efficientnet_keras.transforms import eval_transform

    size = model.input_shape[1]
    batch = np.stack([eval_transform(img, size, preprocessing, crop_fraction).numpy() for img in images.values()])
    probs = model.predict(batch, verbose=0)
    return dict(zip(images, decode_predictions(probs, top=top)))


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    from efficientnet_keras import create_model, get_variant

    images = {p: load_image(p) for p in FLAGS.images} if FLAGS.images else sample_images()
    try:
        model = create_model(FLAGS.model, weights=FLAGS.weights)
    except ValueError as e:  # bad model name, missing weights: the message says what to do
        raise SystemExit(f"error: {e}") from None
    preprocessing = get_variant(FLAGS.model).preprocessing
    for name, predictions in classify(model, images, FLAGS.top, FLAGS.crop_fraction, preprocessing).items():
        print(f"{name}:")
        for rank, (wnid, label, prob) in enumerate(predictions, 1):
            print(f"  {rank}. {label:<24} {prob:7.2%}  ({wnid})")


def run() -> None:
    from efficientnet_keras._cli import run_app

    run_app(main, "efficientnet_keras.predict", __doc__)


if __name__ == "__main__":
    run()
