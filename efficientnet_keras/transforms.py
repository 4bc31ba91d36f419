"""Image transforms shared by evaluation, prediction and serving: decoding to RGB and the central crop.

Kept apart from the training pipeline so that ``predict`` and ``export`` use exactly the evaluation transform
without importing training code.
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["DEFAULT_CROP_FRACTION", "IMAGE_EXTENSIONS", "decode_rgb", "to_rgb_float", "center_crop"]

DEFAULT_CROP_FRACTION = 0.875  # 224 / 256, the official evaluation crop
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")  # what decode_rgb reads


def decode_rgb(encoded) -> tf.Tensor:
    """Encoded JPEG/PNG/GIF/BMP bytes to uint8 RGB [H, W, 3]: grayscale is replicated, alpha dropped, CMYK JPEG
    converted (libjpeg), a GIF's first frame taken."""
    return tf.ensure_shape(tf.io.decode_image(encoded, channels=3, expand_animations=False), [None, None, 3])


def to_rgb_float(image) -> tf.Tensor:
    """A decoded image ([H, W], [H, W, 1] or [H, W, 3], any numeric dtype) as float32 RGB."""
    image = tf.convert_to_tensor(image)
    if image.shape.rank == 2:
        image = image[..., None]
    if image.shape[-1] == 1:
        image = tf.image.grayscale_to_rgb(image)
    return tf.cast(image, tf.float32)


def center_crop(image, size: int, crop_fraction: float = DEFAULT_CROP_FRACTION) -> tf.Tensor:
    """Central ``crop_fraction`` of the shorter side, resized to ``size`` (the evaluation transform); float32 RGB
    in [0, 255]. ``image`` is a decoded image or encoded bytes (tf.string)."""
    if not 0 < crop_fraction <= 1:
        raise ValueError(f"crop_fraction must be in (0, 1], got {crop_fraction}.")
    image = tf.convert_to_tensor(image)
    image = to_rgb_float(decode_rgb(image) if image.dtype == tf.string else image)
    shape = tf.shape(image)
    h, w = shape[0], shape[1]
    side = tf.cast(tf.round(tf.cast(tf.minimum(h, w), tf.float32) * crop_fraction), tf.int32)
    side = tf.maximum(side, 1)
    top, left = (h - side) // 2, (w - side) // 2
    image = tf.image.crop_to_bounding_box(image, top, left, side, side)
    image = tf.image.resize(image, [size, size], method="bicubic")
    return tf.ensure_shape(tf.clip_by_value(image, 0.0, 255.0), [None, None, 3])
