"""The content check for weights whose source publishes no digest: the model must classify the two sample
photos that ship with the package (a cat and an espresso, from scikit-image's ``chelsea`` and ``coffee``, CC0)
into the right classes before the converted weights are cached.

Random or misassigned weights pass with a chance of about (5/1000)^2 for a 1000-class head."""

from __future__ import annotations

import os

import keras
import numpy as np

__all__ = ["SAMPLES", "sample_files", "sample_photos", "check_classifies_samples"]

_DIR = os.path.join(os.path.dirname(__file__), "samples")
# photo -> the wordnet ids it may be classified as (ImageNet-1k and -21k ids; the cat is a tabby).
_CATS = {"n02123045", "n02123159", "n02124075", "n02123394", "n02123597",  # 1k: tabby, tiger, Egyptian, Persian, Siamese
         "n02121808", "n02121620", "n02122878", "n02122948", "n02122725"}  # 21k: cat, domestic cat, tabby queen, kitten, tom
SAMPLES = {"cat.jpg": _CATS, "espresso.jpg": {"n07920052"}}
TOP = 5  # the right class must be among the top 5


def sample_files() -> dict[str, bytes]:
    """The shipped photos as their JPEG files' bytes."""
    files = {}
    for name in SAMPLES:
        with open(os.path.join(_DIR, name), "rb") as f:
            files[name] = f.read()
    return files


def sample_photos() -> dict[str, np.ndarray]:
    """The shipped photos, decoded to uint8 RGB arrays."""
    import tensorflow as tf

    return {name: tf.io.decode_jpeg(encoded, channels=3).numpy() for name, encoded in sample_files().items()}


def check_classifies_samples(model: keras.Model, preprocessing, what: str) -> None:
    """Raise ValueError unless ``model`` (with a 1000- or 21843-class top, [0, 255] input) puts each sample
    photo's class among its top 5, after the variant's evaluation transform (``preprocessing``)."""
    from efficientnet_keras.imagenet import class_index
    from efficientnet_keras.transforms import eval_transform

    size = model.input_shape[1]
    photos = sample_files()  # their bytes, through the transform as evaluation and serving take them
    batch = np.stack([eval_transform(image, size, preprocessing).numpy() for image in photos.values()])
    scores = keras.ops.convert_to_numpy(model(batch, training=False))
    index = class_index(scores.shape[1])
    for (name, image), row in zip(photos.items(), scores):
        top = [index[i] for i in np.argsort(row)[::-1][:TOP]]
        if not SAMPLES[name] & {wnid for wnid, _ in top}:
            raise ValueError(
                f"{what} failed the content check and was not cached: the sample photo {name} is classified as "
                f"{', '.join(n for _, n in top)} (top {TOP}), none of them right. The archive is corrupt or not "
                "the weights it is named for; delete it and retry."
            )
