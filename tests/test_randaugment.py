"""RandAugment against the official op formulas (google/automl efficientnetv2/autoaugment.py), measured on test
patterns at two magnitudes; per-image op choice; reproducibility; the public op table."""

import numpy as np
import pytest
import tensorflow as tf

from efficientnet_keras.training import randaugment as ra


def _bar(size=64):
    """A white horizontal bar through the centre of a black image."""
    image = np.zeros((size, size, 3), np.uint8)
    image[size // 2 - 1: size // 2 + 1, 4:-4] = 255
    return image


def _angle(image) -> float:
    """Orientation in degrees of the white pixels' principal axis (image y axis down)."""
    ys, xs = np.nonzero(image[:, :, 0] > 200)
    cov = np.cov(np.stack([xs - xs.mean(), ys - ys.mean()]))
    vx, vy = np.linalg.eigh(cov)[1][:, -1]
    angle = np.degrees(np.arctan2(vy, vx))
    return (angle + 90) % 180 - 90


@pytest.mark.parametrize("magnitude", [5, 10])
def test_rotate_turns_a_pattern_by_3m_degrees(magnitude):
    for sign in (1.0, -1.0):
        out = ra.apply_op(_bar(), "Rotate", magnitude, sign=sign).numpy()
        assert abs(abs(_angle(out)) - 3 * magnitude) < 1.0
        assert np.sign(_angle(out)) == -sign  # positive: counterclockwise on screen (tfa rotate, the official op)
    corner = ra.apply_op(_bar(), "Rotate", magnitude).numpy()[0, 0]
    assert list(corner) == [128, 128, 128]  # pixels from outside the image are the official fill


@pytest.mark.parametrize("magnitude", [2, 5])
def test_translate_moves_a_marker_by_ten_m_pixels(magnitude):
    image = np.zeros((128, 128, 3), np.uint8)
    image[64, 100] = 255
    pixels = 10 * magnitude  # translate_const 100 at level 10
    for op, axis in (("TranslateX", 1), ("TranslateY", 0)):
        marker = image if axis == 1 else np.transpose(image, (1, 0, 2)).copy()  # TranslateY: at row 100
        out = ra.apply_op(marker, op, magnitude, sign=1.0).numpy()
        ys, xs = np.nonzero(out[:, :, 0] == 255)
        moved = (xs[0] if axis == 1 else ys[0])
        assert moved == 100 - pixels  # the official op moves the content by -pixels
        out = ra.apply_op(marker, op, magnitude, sign=-1.0).numpy()
        edge = out[:, :pixels] if axis == 1 else out[:pixels]
        assert (edge == 128).all()  # uncovered pixels are filled with 128


@pytest.mark.parametrize("magnitude", [5, 10])
def test_shear_moves_row_y_by_level_times_y(magnitude):
    image = np.zeros((100, 100, 3), np.uint8)
    image[80, 50] = 255
    level = 0.03 * magnitude
    out = ra.apply_op(image, "ShearX", magnitude, sign=1.0).numpy()
    ys, xs = np.nonzero(out[:, :, 0] == 255)
    assert ys[0] == 80 and abs(xs[0] - (50 - level * 80)) <= 1  # output (x, y) reads input (x + level y, y)
    out = ra.apply_op(np.transpose(image, (1, 0, 2)).copy(), "ShearY", magnitude, sign=1.0).numpy()
    ys, xs = np.nonzero(out[:, :, 0] == 255)
    assert xs[0] == 80 and abs(ys[0] - (50 - level * 80)) <= 1


@pytest.mark.parametrize("magnitude", [5, 10])
def test_cutout_square_of_half_side_4m(magnitude):
    image = np.full((120, 120, 3), 7, np.uint8)
    out = ra.apply_op(image, "Cutout", magnitude, center=(60, 50)).numpy()
    ys, xs = np.nonzero(out[:, :, 0] == 128)
    half = int(magnitude / 10 * 40)
    assert (ys.min(), ys.max() + 1, xs.min(), xs.max() + 1) == (60 - half, 60 + half, 50 - half, 50 + half)


def test_color_ops_follow_the_official_formulas():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (16, 20, 3), dtype=np.uint8)
    x = image.astype(np.float32)
    for magnitude in (5, 15):
        factor = magnitude / 10 * 1.8 + 0.1
        brightness = ra.apply_op(image, "Brightness", magnitude).numpy()
        np.testing.assert_array_equal(brightness, np.clip(x * factor, 0, 255).astype(np.uint8))
        bits = int(magnitude / 10 * 4)
        posterized = ra.apply_op(image, "Posterize", magnitude).numpy()
        np.testing.assert_array_equal(posterized, (image >> (8 - bits)) << (8 - bits))
        add = int(magnitude / 10 * 110)
        np.testing.assert_array_equal(ra.apply_op(image, "SolarizeAdd", magnitude).numpy(),
                                      np.where(image < 128, np.clip(image.astype(int) + add, 0, 255), image))
        gray = tf.image.rgb_to_grayscale(image).numpy().astype(np.float32)
        mean = np.float32(min(image.shape[0] * image.shape[1] / 256, 255)).astype(np.uint8)  # the official quirk
        np.testing.assert_array_equal(ra.apply_op(image, "Contrast", magnitude).numpy(),
                                      np.clip(mean + factor * (x - mean), 0, 255).astype(np.uint8))
        np.testing.assert_array_equal(ra.apply_op(image, "Color", magnitude).numpy(),
                                      np.clip(gray + factor * (x - gray), 0, 255).astype(np.uint8))
    # Solarize: threshold int(M / 10 * 256) as a uint8, as the official op compares it: 128 at 5, 0 (all
    # inverted) at 10, 128 again at 15.
    for magnitude, threshold in ((5, 128), (10, 0), (15, 128)):
        np.testing.assert_array_equal(ra.apply_op(image, "Solarize", magnitude).numpy(),
                                      np.where(image < threshold, image, 255 - image))
    np.testing.assert_array_equal(ra.apply_op(image, "Invert", 5).numpy(), 255 - image)
    lo, hi = x.min(axis=(0, 1)), x.max(axis=(0, 1))
    np.testing.assert_array_equal(ra.apply_op(image, "AutoContrast", 5).numpy(),
                                  np.clip((x - lo) * (255 / (hi - lo)), 0, 255).astype(np.uint8))


def test_equalize_equals_pil():
    from PIL import Image, ImageOps

    rng = np.random.default_rng(1)
    image = (rng.beta(2, 5, (40, 30, 3)) * 255).astype(np.uint8)  # a skewed histogram
    ours = ra.apply_op(image, "Equalize", 5).numpy()
    np.testing.assert_array_equal(ours, np.asarray(ImageOps.equalize(Image.fromarray(image))))


def test_sharpness_blends_with_the_smooth_filter():
    from PIL import Image, ImageFilter

    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(image).filter(ImageFilter.SMOOTH)).astype(np.float32)
    smooth[[0, -1]] = image[[0, -1]]
    smooth[:, [0, -1]] = image[:, [0, -1]]
    for magnitude in (5, 15):
        factor = magnitude / 10 * 1.8 + 0.1
        ours = ra.apply_op(image, "Sharpness", magnitude).numpy().astype(np.float32)
        expected = np.clip(smooth + factor * (image - smooth), 0, 255)
        assert np.abs(ours - expected).max() <= factor + 1  # PIL rounds the filter, the official op truncates


def test_per_image_op_choice_reproducible_and_graph_safe():
    image = tf.constant(np.asarray(_bar(48), np.float32) * 0.5 + 40.0)
    seeds = tf.data.Dataset.range(24).map(lambda i: tf.stack([tf.constant(7, tf.int64), i]))
    outputs = [x.numpy() for x in seeds.map(lambda s: ra.randaugment(image, 10, s))]
    assert all(o.dtype == np.float32 and o.min() >= 0 and o.max() <= 255 for o in outputs)
    distinct = {o.tobytes() for o in outputs}
    assert len(distinct) >= 12  # 24 images, 2 of 16 ops each: each image draws its own
    again = [x.numpy() for x in seeds.map(lambda s: ra.randaugment(image, 10, s))]
    np.testing.assert_array_equal(np.stack(outputs), np.stack(again))


def test_op_table_and_magnitude_range():
    table = dict(ra.describe(15))
    assert set(table) == set(ra.OPS) and len(ra.OPS) == 16
    assert table["Rotate"] == "±45 degrees" and table["TranslateX"] == "±150 px"
    assert table["Solarize"] == "invert pixels >= 128"
    with pytest.raises(ValueError, match=r"magnitude must be in \[0, 30\]"):
        ra.randaugment(tf.zeros([8, 8, 3]), 31, tf.constant([0, 0], tf.int64))


# ---------------------------------------------------------------------------------------------- AutoAugment v0


def _photo(size=40):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (size, size, 3)).astype(np.float32)


def test_autoaugment_policy_v0_table():
    assert len(ra.POLICY_V0) == 25 and all(len(sub) == 2 for sub in ra.POLICY_V0)  # autoaugment.py policy_v0
    assert all(op in ra.OPS and 0 <= p <= 1 and 0 <= level <= 10 for sub in ra.POLICY_V0 for op, p, level in sub)
    assert ra.POLICY_V0[15] == (("Rotate", 1.0, 7), ("TranslateY", 0.8, 9))


def test_autoaugment_applies_ops_with_their_probability():
    image, seeds = _photo(), [tf.constant([s, 1], tf.int64) for s in range(300)]
    # A certain op and a never op: exactly Invert.
    sure = ra.autoaugment(image, seeds[0], policy=((("Invert", 1.0, 5), ("Equalize", 0.0, 5)),)).numpy()
    np.testing.assert_array_equal(sure, 255 - image)
    # Probability 0.4: applied to about 40% of the images (binomial sd over 300 draws is 2.8%).
    applied = [not np.array_equal(ra.autoaugment(image, s, policy=((("Invert", 0.4, 0),),)).numpy(), image)
               for s in seeds]
    assert 0.31 < np.mean(applied) < 0.49


def test_autoaugment_translation_uses_its_own_constant():
    """distort_image_with_autoaugment passes translate_const=250 (RandAugment: 100): level 1 moves 25 px."""
    image = np.zeros((128, 128, 3), np.uint8)
    image[64, 100] = 255
    out = ra.apply_op(image, "TranslateX", 1, sign=1.0, consts=ra.AUTOAUGMENT_CONSTS).numpy()
    assert np.nonzero(out[:, :, 0] == 255)[1][0] == 75


def test_autoaugment_draws_a_sub_policy_per_image_reproducibly():
    image = tf.constant(_photo())
    seeds = tf.data.Dataset.range(40).map(lambda i: tf.stack([tf.constant(3, tf.int64), i]))
    outputs = np.stack([x.numpy() for x in seeds.map(lambda s: ra.autoaugment(image, s))])
    assert len({o.tobytes() for o in outputs}) >= 12  # 25 sub-policies, each op applied with its probability
    again = np.stack([x.numpy() for x in seeds.map(lambda s: ra.autoaugment(image, s))])
    np.testing.assert_array_equal(outputs, again)
    assert outputs.dtype == np.float32 and outputs.min() >= 0 and outputs.max() <= 255
