"""The official crops and resizes: the V1 code's TF1 bicubic and its central-crop fallback."""

import numpy as np
import pytest
import tensorflow as tf

from efficientnet_keras.training import data
from efficientnet_keras.transforms import LEGACY_V1, OFFICIAL_V2, center_crop, eval_transform, resize
from conftest import jpeg_claiming, oversized_png, real_photos
from efficientnet_keras import transforms


def _official_legacy_eval(photo, size):
    """preprocess_legacy._decode_and_center_crop on a decoded photo: size/(size+32) of the shorter side, offsets
    rounded up, TF1 resize_bicubic, no clip."""
    h, w = photo.shape[:2]
    side = int(tf.cast(size / (size + 32) * tf.cast(min(h, w), tf.float32), tf.int32))
    top, left = (h - side + 1) // 2, (w - side + 1) // 2
    crop = tf.cast(photo[None, top:top + side, left:left + side], tf.float32)
    return tf.compat.v1.image.resize_bicubic(crop, [size, size])[0].numpy()


@pytest.mark.parametrize("index", range(4))
def test_legacy_evaluation_equals_the_official_tf1_resize_on_real_photos(index):
    photo = real_photos()[index]
    ours = eval_transform(photo, 224, LEGACY_V1).numpy()
    np.testing.assert_array_equal(ours, _official_legacy_eval(photo, 224))
    # tf.image.resize's bicubic (half-pixel centres, Keys' -0.5) is not it: measured 1.1-5.0 levels apart on average
    # on these photos, up to 124 at edges.
    other = center_crop(photo, 224, 224 / 256, "bicubic", round_offset_up=True).numpy()
    assert np.abs(other - ours).mean() > 0.5


def test_legacy_evaluation_keeps_bicubic_overshoot_as_the_official_does():
    photo = real_photos()[1]  # the espresso: sharp edges that bicubic overshoots
    ours = eval_transform(photo, 224, LEGACY_V1).numpy()
    assert ours.min() < 0 or ours.max() > 255
    assert 0 <= eval_transform(photo, 224, OFFICIAL_V2).numpy().min()  # bilinear: no overshoot, clipped anyway


def test_resize_refuses_an_unknown_method():
    with pytest.raises(ValueError, match="resize method must be one of bilinear, bicubic, bicubic_tf1; got 'area'"):
        resize(tf.zeros([4, 4, 3]), 2, "area")


@pytest.mark.parametrize("encode", [None, tf.io.encode_jpeg, tf.io.encode_png])
def test_legacy_crop_falls_back_to_the_centre_crop_when_no_box_fits(encode):
    """preprocess_legacy: a sampled box equal to the whole image (no proposal of area >= 0.9 with aspect 3/4..4/3
    fits a 10x200 image) becomes the central size/(size+32) crop; the V2 preprocessing keeps the whole image."""
    image = np.random.default_rng(0).integers(0, 256, (10, 200, 3), dtype=np.uint8)
    source = image if encode is None else encode(image)
    seed = tf.constant([1, 2], tf.int64)
    crop = data.decode_and_random_crop(source, seed, (0.9, 1.0), LEGACY_V1, size=224).numpy()
    side = int(224 / 256 * 10)
    assert crop.shape == (side, side, 3)
    if encode is not tf.io.encode_jpeg:  # JPEG is lossy: compare the window only
        np.testing.assert_array_equal(crop, image[1:1 + side, 96:96 + side])
    whole = data.decode_and_random_crop(source, seed, (0.9, 1.0), OFFICIAL_V2, size=224)
    assert whole.shape == (10, 200, 3)


def test_legacy_crop_keeps_a_proposal_that_fits():
    photo = real_photos()[0]
    seed = tf.constant([5, 6], tf.int64)
    crop = data.decode_and_random_crop(photo, seed, (0.08, 0.5), LEGACY_V1, size=224)
    assert crop.shape[0] * crop.shape[1] <= 0.5 * photo.shape[0] * photo.shape[1]


# ------------------------------------------------------------------------------------------- bounded decoding


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "BMP"])
def test_the_header_gives_the_size_without_decoding(fmt):
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(real_photos()[0][:23, :37]).save(buffer, format=fmt)
    assert [int(v) for v in transforms.header_size(tf.constant(buffer.getvalue()))] == [23, 37]
    assert transforms.decode_rgb(buffer.getvalue()).shape == (23, 37, 3)


def test_a_bottom_up_and_a_top_down_bmp_have_the_same_size():
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(real_photos()[0][:23, :37]).save(buffer, format="BMP")
    data = bytearray(buffer.getvalue())
    data[22:26] = (-23).to_bytes(4, "little", signed=True)  # a negative height: rows stored top-down
    assert [int(v) for v in transforms.header_size(tf.constant(bytes(data)))] == [23, 37]


@pytest.mark.parametrize("encoded, size", [(oversized_png(), "20000x20000"), (jpeg_claiming(), "30000x30000")],
                         ids=["png", "jpeg"])
def test_an_image_above_the_pixel_limit_is_refused_before_decoding(encoded, size):
    with pytest.raises(tf.errors.InvalidArgumentError, match=rf"The image is {size} pixels \(width x height, from its "
                                                             r"header\): above the limit of 40000000 pixels"):
        transforms.decode_rgb(encoded)
    with pytest.raises(tf.errors.InvalidArgumentError, match="above the limit of 1000 pixels"):
        transforms.eval_transform(tf.io.encode_png(real_photos()[0][:40, :40]), 32, max_pixels=1000)
    assert transforms.eval_transform(tf.io.encode_png(real_photos()[0][:40, :40]), 32, max_pixels=1600).shape == \
        (32, 32, 3)


def test_bytes_that_are_no_image_still_fail_in_the_decoder():
    assert [int(v) for v in transforms.header_size(tf.constant(b"not an image"))] == [0, 0]
    with pytest.raises(tf.errors.InvalidArgumentError, match="Unknown image file format"):
        transforms.decode_rgb(b"not an image")
    with pytest.raises(tf.errors.InvalidArgumentError):  # a JPEG cut inside its header: no size to read
        transforms.decode_rgb(jpeg_claiming(16, 16)[:40])
