"""Image transforms shared by evaluation, prediction and serving: decoding to RGB and the central crop.

Kept apart from the training pipeline so that ``predict`` and ``export`` use exactly the evaluation transform
without importing training code. TensorFlow is imported where an op runs: the variant table (``models``) reads
``Preprocessing`` on every backend.
"""

from __future__ import annotations

import dataclasses

__all__ = ["DEFAULT_CROP_FRACTION", "IMAGE_EXTENSIONS", "MAX_PIXELS", "header_size", "check_pixels", "Preprocessing", "OFFICIAL_V2", "LEGACY_V1", "TIMM_COATNET",
           "decode_rgb", "jpeg_scale", "JPEG_SCALE_MARGIN", "resize", "RESIZE_METHODS",
           "to_rgb_float", "decode_whole", "central_window", "central_region", "decode_jpeg_window", "center_crop",
           "eval_crop_fraction", "eval_transform", "saved_eval_transform"]

DEFAULT_CROP_FRACTION = 0.875  # 224 / 256, the official evaluation crop
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")  # what decode_rgb reads


# The most pixels an image may have to be decoded: a 40-megapixel photo (7300x5475) is larger than any camera's
# JPEG we know of a 2020s phone to write; its decode takes 120 MB. A header claiming more is refused before
# anything is allocated (a 1.1 MB PNG can claim 20000x20000 pixels: 1.2 GB decoded, 4.8 GB as float32).
MAX_PIXELS = 40_000_000


def header_size(encoded) -> tuple["tf.Tensor", "tf.Tensor"]:
    """(height, width), int64, that an encoded image's header claims, read without decoding: JPEG from its frame
    header (``extract_jpeg_shape``), PNG from IHDR, GIF from the logical screen, BMP from BITMAPINFOHEADER (a
    negative height is a top-down image). (0, 0) for any other bytes: the decoder refuses those itself."""
    import tensorflow as tf

    head = tf.io.decode_raw(tf.strings.substr(encoded, 0, 26), tf.uint8)
    b = tf.cast(tf.pad(head, [[0, 26 - tf.shape(head)[0]]]), tf.int64)

    def big_endian(i):  # PNG's 4-byte fields
        return b[i] * 16777216 + b[i + 1] * 65536 + b[i + 2] * 256 + b[i + 3]

    def little_endian(i, n):
        return sum(b[i + k] * 256 ** k for k in range(n))

    def bmp_height():
        height = little_endian(22, 4)
        return tf.where(height >= 2 ** 31, 2 ** 32 - height, height)

    png = tf.reduce_all(tf.equal(b[:4], [0x89, 0x50, 0x4E, 0x47]))
    gif = tf.reduce_all(tf.equal(b[:4], [0x47, 0x49, 0x46, 0x38]))
    bmp = tf.reduce_all(tf.equal(b[:2], [0x42, 0x4D]))
    zero = tf.constant(0, tf.int64)
    return tf.case([
        (tf.io.is_jpeg(encoded), lambda: tuple(tf.unstack(tf.cast(tf.image.extract_jpeg_shape(encoded)[:2],
                                                                  tf.int64)))),
        (png, lambda: (big_endian(20), big_endian(16))),
        (gif, lambda: (little_endian(8, 2), little_endian(6, 2))),
        (bmp, lambda: (bmp_height(), little_endian(18, 4))),
    ], default=lambda: (zero, zero), exclusive=False)


def check_pixels(encoded, max_pixels: int | None = MAX_PIXELS) -> "tf.Operation | None":
    """An op that fails with INVALID_ARGUMENT, naming the size and the limit, when the header of ``encoded``
    claims more than ``max_pixels`` pixels (None: no limit; the op is then None)."""
    import tensorflow as tf

    if max_pixels is None:
        return None
    height, width = header_size(encoded)
    message = tf.strings.format(
        "The image is {}x{} pixels (width x height, from its header): above the limit of {} pixels. Send it "
        "downscaled (the model sees a few hundred pixels a side), or raise the limit (max_pixels / --max_pixels).",
        (width, height, max_pixels))
    return tf.debugging.Assert(height * width <= max_pixels, [message])


# Scaled JPEG decoding (libjpeg's DCT scaling, ``decode_jpeg(ratio=2|4|8)``) keeps at least this many decoded
# pixels per model input pixel across the evaluation crop, so the final resize still downsamples by 2x or more.
JPEG_SCALE_MARGIN = 2
_JPEG_RATIOS = (1, 2, 4, 8)


def jpeg_scale(height, width, size: int, crop_fraction: float | None) -> "tf.Tensor":
    """The largest libjpeg ratio (1, 2, 4 or 8) at which the central ``crop_fraction`` (None: the whole image) of
    a ``height`` x ``width`` JPEG still has ``JPEG_SCALE_MARGIN * size`` pixels a side; int32."""
    import tensorflow as tf

    side = tf.cast(tf.minimum(height, width), tf.float32) * (crop_fraction or 1.0)
    ratio = tf.constant(1, tf.int32)
    for r in _JPEG_RATIOS[1:]:
        ratio = tf.where(side / r >= JPEG_SCALE_MARGIN * size, r, ratio)
    return ratio


def decode_rgb(encoded, max_pixels: int | None = MAX_PIXELS, scale_for: tuple[int, float | None] | None = None,
               ) -> "tf.Tensor":
    """Encoded JPEG/PNG/GIF/BMP bytes to uint8 RGB [H, W, 3]: grayscale is replicated, alpha dropped, CMYK JPEG
    converted (libjpeg), a GIF's first frame taken. An image whose header claims more than ``max_pixels`` pixels
    is refused before it is decoded (``check_pixels``). ``scale_for=(size, crop_fraction)``: a JPEG much larger
    than that evaluation crop needs is decoded at 1/2, 1/4 or 1/8 scale (``jpeg_scale``), which is several times
    faster and allocates a fraction of the memory; other formats are decoded whole."""
    import tensorflow as tf

    check = check_pixels(encoded, max_pixels)
    with tf.control_dependencies([check] if check is not None else []):
        if scale_for is None:
            image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
        else:
            image = tf.cond(tf.io.is_jpeg(encoded), lambda: _scaled_jpeg(encoded, *scale_for),
                            lambda: tf.io.decode_image(encoded, channels=3, expand_animations=False))
    return tf.ensure_shape(image, [None, None, 3])


def _scaled_jpeg(encoded, size: int, crop_fraction: float | None) -> "tf.Tensor":
    import tensorflow as tf

    height, width = tf.unstack(tf.image.extract_jpeg_shape(encoded)[:2])
    ratio = jpeg_scale(height, width, size, crop_fraction)
    # decode_jpeg's ratio is an attribute, not a tensor: one branch per ratio.
    branches = [lambda r=r: tf.io.decode_jpeg(encoded, channels=3, ratio=r) for r in _JPEG_RATIOS]
    index = tf.argmax(tf.cast(tf.equal(list(_JPEG_RATIOS), ratio), tf.int32), output_type=tf.int32)
    return tf.ensure_shape(tf.switch_case(index, branches), [None, None, 3])


def to_rgb_float(image) -> "tf.Tensor":
    """A decoded image ([H, W], [H, W, 1] or [H, W, 3], any numeric dtype) as float32 RGB."""
    import tensorflow as tf

    image = tf.convert_to_tensor(image)
    if image.shape.rank == 2:
        image = image[..., None]
    if image.shape[-1] == 1:
        image = tf.image.grayscale_to_rgb(image)
    return tf.cast(image, tf.float32)


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """How a variant's official code crops and resizes images, for training and evaluation (a column of the
    variant table; the trainer, ``predict`` and ``export`` all read it)."""

    name: str
    train_area: tuple[float, float]  # random crop's area range (fraction of the image)
    min_object_covered: float  # sample_distorted_bounding_box's, against the whole-image box
    max_attempts: int  # crop proposals tried before the whole image is used
    resize: str  # resize method, training and evaluation
    eval_padding: int = 32  # evaluation crop: size / (size + padding) of the shorter side
    eval_full_image_from: int | None = None  # from this size on, no crop: the whole image resized
    round_offset_up: bool = False  # the crop's offset (h - side + 1) // 2 instead of (h - side) // 2
    eval_crop: float | None = None  # a fixed evaluation crop fraction (timm's crop_pct), instead of the padding
    # sample_distorted_bounding_box's aspect ratios: preprocess_legacy passes (3/4, 4/3); the V2 preprocessing.py
    # leaves the op's default, [0.75, 1.33].
    aspect_ratio_range: tuple[float, float] = (3 / 4, 4 / 3)
    # preprocess_legacy: when the sampled crop is the whole image (no proposal fit in max_attempts), the central
    # evaluation crop is taken instead (_at_least_x_are_equal(original shape, crop shape, 3)).
    center_crop_fallback: bool = False
    # A JPEG's crop, in training and evaluation: only its window decoded (decode_and_crop_jpeg, as the V1 code and
    # preprocess_legacy), or the whole image decoded, then cropped (V2's preprocessing.py; timm's PIL). The two
    # differ in a few pixels along the window's edges (libjpeg's chroma upsampling sees no pixels beyond it).
    decode_window: bool = False

    @classmethod
    def from_record(cls, record: dict | None) -> "Preprocessing":
        """From a run's results.json entry or a saved model's config (``dataclasses.asdict``); runs saved before
        this column: LEGACY_V1. A field the record predates takes the value of the preset it names."""
        if not record:
            return LEGACY_V1
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in record.items() if k in fields}
        preset = _PRESETS.get(values.get("name", "").removesuffix("_whole"))
        return dataclasses.replace(preset, **values) if preset else cls(**values)

    def whole_image(self) -> "Preprocessing":
        """The official fine-tuning transform (``preprocess_for_finetune``): the whole image resized with
        ``tf.image.resize``'s default, bilinear, in training and evaluation alike (no crop)."""
        return dataclasses.replace(self, name=f"{self.name}_whole", resize="bilinear", eval_full_image_from=0)

    def crop_fraction(self, size: int) -> float | None:
        """The evaluation crop at ``size`` (None: the whole image, resized without keeping its aspect)."""
        if self.eval_full_image_from is not None and size >= self.eval_full_image_from:
            return None
        return self.eval_crop or size / (size + self.eval_padding)


# efficientnetv2/preprocessing.py: crop area 0.05-1 with min_object_covered=0 (100 attempts and aspect ratios
# [0.75, 1.33], the op's defaults), bilinear; evaluation crops size/(size+32) below 320 px and resizes the whole
# image from 320 px (V2-S/M/L/XL).
OFFICIAL_V2 = Preprocessing("official_v2", (0.05, 1.0), 0.0, 100, "bilinear", 32, 320, aspect_ratio_range=(0.75, 1.33))
# efficientnet (V1, Lite) preprocessing.py and efficientnetv2/preprocess_legacy.py (V2-B0..B3, 'effnetv1_*'):
# crop area 0.08-1, min_object_covered=0.1, 10 attempts, the central crop when no proposal fits; TF1
# resize_bicubic; evaluation always crops size/(size+32).
LEGACY_V1 = Preprocessing("legacy_v1", (0.08, 1.0), 0.1, 10, "bicubic_tf1", 32, None, round_offset_up=True,
                          center_crop_fallback=True, decode_window=True)
# timm's CoAtNet configs (no official code exists): RandomResizedCrop's area 0.08-1 (10 attempts), bicubic;
# evaluation crops crop_pct = 0.95 of the shorter side (coatnet_nano_rw_224: 0.9).
TIMM_COATNET = Preprocessing("timm_coatnet", (0.08, 1.0), 0.0, 10, "bicubic", eval_crop=0.95)
_PRESETS = {p.name: p for p in (OFFICIAL_V2, LEGACY_V1, TIMM_COATNET)}


def saved_eval_transform(record: dict) -> tuple[float | None, Preprocessing]:
    """(crop_fraction, Preprocessing) that a results.json / serving record names: its preprocessing and crop;
    records from before the preprocessing column carry only a crop fraction; none: the official V1 crop."""
    return record.get("crop_fraction"), Preprocessing.from_record(record.get("preprocessing"))


RESIZE_METHODS = ("bilinear", "bicubic", "bicubic_tf1")


def resize(image, size, method: str = "bilinear") -> "tf.Tensor":
    """``image`` [H, W, C] resized to [size, size, C], float32. ``bicubic_tf1`` is TF1's ``resize_bicubic``, which
    the official V1 code calls (``preprocess_legacy._resize_image``): no half-pixel centres and cubic coefficient
    -0.75; ``tf.image.resize(method="bicubic")`` samples at half-pixel centres with Keys' -0.5, which moves pixels
    by up to half a source pixel. The TF1 kernel is still TensorFlow's ``ResizeBicubic`` op, called here with the
    TF1 arguments (``tf.compat.v1.image.resize_bicubic`` does the same)."""
    import tensorflow as tf

    if method == "bicubic_tf1":
        resized = tf.raw_ops.ResizeBicubic(images=tf.cast(image, tf.float32)[None], size=tf.stack([size, size]),
                                           align_corners=False, half_pixel_centers=False)
        return resized[0]
    if method not in RESIZE_METHODS:
        raise ValueError(f"resize method must be one of {', '.join(RESIZE_METHODS)}; got {method!r}.")
    return tf.image.resize(tf.cast(image, tf.float32), tf.stack([size, size]), method=method)


def central_window(height, width, crop_fraction, round_offset_up: bool = False) -> tuple:
    """(top, left, side) of the central ``crop_fraction`` of the shorter side, truncated to whole pixels (at least
    one), as the official crops compute it; ``round_offset_up``: offsets (h - side + 1) // 2 (the V1 code's)."""
    import tensorflow as tf

    side = tf.maximum(tf.cast(tf.cast(tf.minimum(height, width), tf.float32) * crop_fraction, tf.int32), 1)
    up = 1 if round_offset_up else 0
    return (height - side + up) // 2, (width - side + up) // 2, side


def central_region(image, crop_fraction: float | None, round_offset_up: bool = False,
                   max_pixels: int | None = MAX_PIXELS, decode_window: bool = False,
                   jpeg_scaling_for: int | None = None) -> "tf.Tensor":
    """The central ``crop_fraction`` of the shorter side (``central_window``; None: the whole image) of a decoded
    image (float32 RGB out) or of encoded bytes (uint8 RGB out; decoded within ``max_pixels``). ``decode_window``:
    a JPEG decoded at full scale has only that window decoded (``decode_and_crop_jpeg``). ``jpeg_scaling_for``
    (the model's input size): a large JPEG is decoded at a reduced scale first (``decode_rgb``'s ``scale_for``)."""
    import tensorflow as tf

    if crop_fraction is not None and not 0 < crop_fraction <= 1:
        raise ValueError(f"crop_fraction must be in (0, 1], got {crop_fraction}.")

    def crop(decoded):
        if crop_fraction is None:
            return decoded
        shape = tf.shape(decoded)
        top, left, side = central_window(shape[0], shape[1], crop_fraction, round_offset_up)
        return tf.image.crop_to_bounding_box(decoded, top, left, side, side)

    image = tf.convert_to_tensor(image)
    if image.dtype != tf.string:
        return crop(to_rgb_float(image))
    scale_for = (jpeg_scaling_for, crop_fraction) if jpeg_scaling_for else None
    if not decode_window or crop_fraction is None:
        return crop(decode_rgb(image, max_pixels, scale_for))

    def window(shape):
        top, left, side = central_window(shape[0], shape[1], crop_fraction, round_offset_up)
        return tf.stack([top, left, side, side])

    check = check_pixels(image, max_pixels)
    with tf.control_dependencies([check] if check is not None else []):
        full_scale = tf.io.is_jpeg(image)
        if scale_for is not None:
            height, width = header_size(image)
            full_scale = tf.logical_and(full_scale, tf.equal(jpeg_scale(height, width, *scale_for), 1))
        region = tf.cond(full_scale, lambda: decode_jpeg_window(image, window, None),
                         lambda: crop(decode_rgb(image, None, scale_for)))
    return tf.ensure_shape(region, [None, None, 3])


def decode_jpeg_window(encoded, window, max_pixels: int | None = MAX_PIXELS) -> "tf.Tensor":
    """Only a window of a JPEG decoded (``decode_and_crop_jpeg``), uint8 RGB: ``window(shape)`` gives its [top,
    left, height, width] for the image's ``extract_jpeg_shape``; refused first above ``max_pixels``."""
    import tensorflow as tf

    check = check_pixels(encoded, max_pixels)
    with tf.control_dependencies([check] if check is not None else []):
        return tf.image.decode_and_crop_jpeg(encoded, window(tf.image.extract_jpeg_shape(encoded)), channels=3)


def center_crop(image, size: int, crop_fraction: float | None = DEFAULT_CROP_FRACTION, method: str = "bicubic",
                round_offset_up: bool = False, max_pixels: int | None = MAX_PIXELS,
                jpeg_scaling: bool = False, decode_window: bool = False) -> "tf.Tensor":
    """Central ``crop_fraction`` of the shorter side (truncated to whole pixels, as the official code), resized to
    ``size``: the evaluation transform; float32 RGB in [0, 255]. ``crop_fraction=None`` resizes the whole image.
    ``image`` is a decoded image or encoded bytes (see ``central_region``; ``jpeg_scaling``: a large JPEG at a
    reduced scale, ``decode_window``: a JPEG's window decoded alone)."""
    import tensorflow as tf

    image = central_region(image, crop_fraction, round_offset_up, max_pixels, decode_window,
                           size if jpeg_scaling else None)
    image = resize(to_rgb_float(image), size, method)
    # The official V1 evaluation feeds resize_bicubic's over- and undershoots to the network; elsewhere (bilinear
    # cannot overshoot, timm's PIL bicubic clamps) the image is clipped to [0, 255].
    if method != "bicubic_tf1":
        image = tf.clip_by_value(image, 0.0, 255.0)
    return tf.ensure_shape(image, [None, None, 3])


def eval_crop_fraction(size: int, preprocessing: Preprocessing, crop_fraction: float | None = None) -> float | None:
    """The evaluation crop at ``size``: ``crop_fraction`` when given, else the variant's."""
    return crop_fraction if crop_fraction is not None else preprocessing.crop_fraction(size)


def eval_transform(image, size: int, preprocessing: Preprocessing = LEGACY_V1,
                   crop_fraction: float | None = None, max_pixels: int | None = MAX_PIXELS,
                   jpeg_scaling: bool = False) -> "tf.Tensor":
    """A variant's official evaluation transform at ``size``; ``crop_fraction`` overrides its crop."""
    return center_crop(image, size, eval_crop_fraction(size, preprocessing, crop_fraction), preprocessing.resize,
                       preprocessing.round_offset_up, max_pixels, jpeg_scaling, preprocessing.decode_window)


def decode_whole(image, max_pixels: int | None = MAX_PIXELS) -> "tf.Tensor":
    """Encoded bytes or a decoded image, as the whole image in RGB (its dtype kept for a decoded one)."""
    import tensorflow as tf

    image = tf.convert_to_tensor(image)
    if image.dtype == tf.string:
        return decode_rgb(image, max_pixels)
    return tf.cast(to_rgb_float(image), image.dtype)
