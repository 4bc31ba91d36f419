"""The official crops and resizes: the V1 code's TF1 bicubic and its central-crop fallback."""

import numpy as np
import pytest
import tensorflow as tf

from efficientnet_keras.training import data
from efficientnet_keras.transforms import LEGACY_V1, OFFICIAL_V2, center_crop, eval_transform, resize
from conftest import enlarged, enlarged_jpeg, jpeg_claiming, oversized_png, real_photos
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


# ------------------------------------------------------------------------------------------------ JPEG windows
# libjpeg's chroma upsampling inside a window sees no pixels beyond it, so decoding a JPEG's window alone differs from
# cropping the whole decode in a few pixels along the window's edges: each preprocessing decodes as its code does.


def _portrait_rocket():
    """A 4:2:0 JPEG whose central window, decoded alone, differs from the whole decode's crop (497 of 254043
    values, by up to 11 levels)."""
    return tf.io.encode_jpeg(enlarged(real_photos()[3], 517, 333), quality=90).numpy()


def _official_legacy_eval_of_bytes(encoded, size):
    """preprocess_legacy._decode_and_center_crop, as written there: the window from extract_jpeg_shape, offsets
    rounded up, decode_and_crop_jpeg, TF1 resize_bicubic."""
    height, width = (int(v) for v in tf.image.extract_jpeg_shape(encoded)[:2])
    side = int(tf.cast(size / (size + 32) * tf.cast(min(height, width), tf.float32), tf.int32))
    window = tf.stack([(height - side + 1) // 2, (width - side + 1) // 2, side, side])
    crop = tf.image.decode_and_crop_jpeg(encoded, window, channels=3)
    return tf.compat.v1.image.resize_bicubic(tf.cast(crop, tf.float32)[None], [size, size])[0].numpy()


@pytest.mark.parametrize("jpeg_scaling", [False, True])  # too small to scale: the served transform is the same
def test_legacy_evaluation_of_a_jpeg_decodes_only_its_window_as_the_official_does(jpeg_scaling):
    encoded = _portrait_rocket()
    ours = eval_transform(encoded, 224, LEGACY_V1, jpeg_scaling=jpeg_scaling).numpy()
    np.testing.assert_array_equal(ours, _official_legacy_eval_of_bytes(encoded, 224))
    whole = eval_transform(tf.io.decode_jpeg(encoded, channels=3), 224, LEGACY_V1).numpy()
    assert not np.array_equal(ours, whole)  # the two decodes differ on this photo


def test_v2_evaluation_of_a_jpeg_decodes_it_whole_as_the_official_does():
    """efficientnetv2/preprocessing.py: decode_image, then crop_to_bounding_box (offsets rounded down) and
    tf.image.resize's bilinear."""
    encoded = _portrait_rocket()
    decoded = tf.io.decode_image(encoded, channels=3)
    side = int(tf.cast(224 / 256 * 333, tf.int32))
    official = tf.image.resize(tf.image.crop_to_bounding_box(decoded, (517 - side) // 2, (333 - side) // 2, side, side), [224, 224])
    np.testing.assert_array_equal(eval_transform(encoded, 224, OFFICIAL_V2).numpy(), official.numpy())


@pytest.mark.parametrize("preprocessing", [LEGACY_V1, OFFICIAL_V2], ids=lambda p: p.name)
def test_the_training_crop_of_a_jpeg_is_decoded_as_the_official_code_decodes_it(preprocessing):
    """The same sampled window in both: decode_and_crop_jpeg of it (V1, preprocess_legacy) or a slice of the
    whole decode (V2)."""
    encoded = _portrait_rocket()
    decoded = tf.io.decode_jpeg(encoded, channels=3)
    differing = 0
    for seed in range(8):
        seed = tf.constant([seed, 1], tf.int64)
        crop = data.decode_and_random_crop(encoded, seed, None, preprocessing, size=224).numpy()
        sliced = data.decode_and_random_crop(decoded, seed, None, preprocessing, size=224).numpy()
        begin, size = data._crop_window(tf.shape(decoded), seed, preprocessing.train_area, preprocessing, 224)
        window = tf.stack([begin[0], begin[1], size[0], size[1]])
        windowed = tf.image.decode_and_crop_jpeg(encoded, window, channels=3).numpy()
        np.testing.assert_array_equal(crop, windowed if preprocessing.decode_window else sliced)
        differing += not np.array_equal(windowed, sliced)
    assert differing > 0  # some of the sampled windows decode differently alone


@pytest.mark.parametrize("preset", [LEGACY_V1, OFFICIAL_V2, LEGACY_V1.whole_image()], ids=lambda p: p.name)
def test_a_record_written_before_decode_window_takes_its_presets(preset):
    import dataclasses

    record = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(preset).items()}
    del record["decode_window"]
    assert transforms.Preprocessing.from_record(record) == preset
    custom = transforms.Preprocessing.from_record({**record, "name": "mine"})  # no preset: the column's default
    assert custom.decode_window is False and custom == dataclasses.replace(preset, name="mine", decode_window=False)


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


# ------------------------------------------------------------------------------------------- scaled JPEG decoding


@pytest.mark.parametrize("height, width, size, crop, ratio", [
    (375, 500, 224, 0.875, 1),    # a typical ImageNet photo: decoded whole
    (1023, 1200, 224, 0.875, 1),  # the 0.875 crop of 1023 px is 895 px: under 2 x 224 at half scale
    (1024, 1200, 224, 0.875, 2),  # 896 px crop: exactly 2 x 224 at half scale
    (3000, 4000, 224, 0.875, 4),  # a 12-megapixel phone photo
    (3000, 4000, 224, None, 4),   # whole-image evaluation: the shorter side counts
    (6000, 8000, 224, 0.875, 8),
    (3000, 4000, 480, None, 2),   # a larger model input keeps more pixels
])
def test_the_jpeg_scale_keeps_twice_the_model_input_across_the_crop(height, width, size, crop, ratio):
    assert int(transforms.jpeg_scale(height, width, size, crop)) == ratio


def test_a_jpeg_too_small_to_scale_decodes_exactly_as_the_whole_decode():
    encoded = tf.io.encode_jpeg(real_photos()[0]).numpy()
    np.testing.assert_array_equal(transforms.decode_rgb(encoded, scale_for=(224, 0.875)).numpy(),
                                  transforms.decode_rgb(encoded).numpy())


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "GIF"])
def test_other_formats_are_decoded_whole_even_when_large(fmt):
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (1000, 1200)).save(buffer, fmt)
    encoded = buffer.getvalue()
    assert transforms.decode_rgb(encoded, scale_for=(224, 0.875)).shape == (1200, 1000, 3)


def test_a_large_jpeg_is_decoded_at_a_reduced_scale():
    # The 0.875 crop of 1801 px is 1575 px: over 2 x 224 at half scale, not at quarter scale.
    encoded = enlarged_jpeg(real_photos()[0], 1801, 2000)
    assert transforms.decode_rgb(encoded, scale_for=(224, 0.875)).shape == (901, 1000, 3)  # libjpeg rounds up


@pytest.mark.parametrize("index", range(4))
def test_scaled_decoding_is_closer_to_the_antialiased_crop_than_the_whole_decode(index):
    """Both paths take the same central crop of a 1801x2000 JPEG of a real photo; the whole decode then samples its
    1575 px at 224 points without a low-pass filter, the scaled one from half the pixels (libjpeg's DCT scaling
    averages). Against the crop area-resized (antialiased) to 224, the scaled image is the closer of the two."""
    big = enlarged(real_photos()[index], 1801, 2000)
    encoded = tf.io.encode_jpeg(big, quality=90).numpy()
    whole = eval_transform(encoded, 224, LEGACY_V1).numpy()
    scaled = eval_transform(encoded, 224, LEGACY_V1, jpeg_scaling=True).numpy()
    assert scaled.shape == whole.shape == (224, 224, 3) and not np.array_equal(scaled, whole)
    side = int(1801 * 224 / 256)
    top, left = (1801 - side + 1) // 2, (2000 - side + 1) // 2
    antialiased = tf.image.resize(tf.cast(big[top:top + side, left:left + side], tf.float32), (224, 224), "area")
    errors = [float(np.abs(image - antialiased.numpy()).mean()) for image in (scaled, whole)]
    assert errors[0] < errors[1], f"mean |difference| from the antialiased crop: scaled, whole = {errors}"


def test_the_pixel_limit_holds_with_scaled_decoding():
    with pytest.raises(tf.errors.InvalidArgumentError, match="The image is 30000x30000 pixels"):
        transforms.decode_rgb(jpeg_claiming(), scale_for=(224, 0.875))


@pytest.mark.slow  # a process of its own, to measure its peak memory
def test_an_animated_gif_costs_only_its_first_frame():
    """300 frames of 2000x2000 (1.2 MB encoded, 3.6 GB as RGB frames): only the first frame is decoded, so the pixel
    limit on the header's screen size bounds a GIF's memory as any other image's."""
    import os
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import io, resource
        from PIL import Image
        import tensorflow as tf
        from efficientnet_keras.transforms import decode_rgb
        frames = [Image.new("P", (2000, 2000), i % 2) for i in range(300)]
        buffer = io.BytesIO()
        frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
        del frames
        decode_rgb(tf.io.encode_jpeg(tf.zeros([8, 8, 3], tf.uint8)))  # warm: the decoder's ops allocated once
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        image = decode_rgb(buffer.getvalue())
        print(image.shape, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    shape, grown = result.stdout.strip().rsplit(" ", 1)
    assert shape == "(2000, 2000, 3)" and float(grown) < 300, result.stdout
