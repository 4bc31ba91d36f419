"""RandAugment and AutoAugment as the official EfficientNetV2 code runs them (google/automl
``efficientnetv2/autoaugment.py``). AutoAugment (``autoaugment``) applies the paper's ImageNet policy v0 with the
same ops; the rest of this docstring describes RandAugment.

Per image: ``num_layers`` ops, each drawn uniformly from the 16 official ops and always applied, all at one
magnitude M on the official level scale (level / 10 scales each op's range; above 10 extrapolates). The image is
quantized to uint8 as the official ``preprocess_for_train`` does (clip, truncating cast), the ops compute on uint8
exactly as the official ones, and the result comes back as float32 in [0, 255].

Geometric ops use TensorFlow's ``ImageProjectiveTransformV3`` (what tensorflow_addons' ``rotate`` / ``translate``
/ ``transform`` call) with nearest sampling and fill 128, which is what the official wrap/unwrap trick computes.
Color ops use ``tf.image`` for grayscale; AutoContrast, Equalize, Contrast, Sharpness, Posterize, Solarize and
Cutout are written here because no Keras or ``tf.image`` op computes them as the official code does (Keras'
layers work in float without the uint8 truncations, and its RandAugment has another op set and scale).

Official quirks kept on purpose, because they are what the published models were trained with:
Contrast blends towards (pixel count / 256), not the mean intensity; Solarize's threshold int(M / 10 * 256) is
compared as a uint8, so it wraps to 0 at magnitude 10 (and again every 10) and every pixel is inverted there;
Posterize keeps int(M / 10 * 4) bits, so it weakens as M grows; translation
is in pixels, not relative to the image size.
"""

from __future__ import annotations

import math

import tensorflow as tf

__all__ = ["OPS", "MAX_LEVEL", "MAX_MAGNITUDE", "POLICY_V0", "op_arguments", "describe", "randaugment", "autoaugment",
           "check_magnitude"]

MAX_LEVEL = 10.0  # autoaugment.py _MAX_LEVEL: magnitude 10 is each op's reference strength
MAX_MAGNITUDE = 30.0  # the RandAugment paper's largest magnitude (M in 5..30)
OPS = ("AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "Color", "Contrast", "Brightness",
       "Sharpness", "ShearX", "ShearY", "TranslateX", "TranslateY", "Cutout", "SolarizeAdd")
SIGNED = ("Rotate", "ShearX", "ShearY", "TranslateX", "TranslateY")  # sign drawn per image, 50% negative
TRANSLATE_CONST = 100  # distort_image_with_randaugment: translate_const (pixels at level 10)
CUTOUT_CONST = 40  # ... and cutout_const (half the square's side at level 10)
FILL = 128  # replace_value of the official geometric ops and Cutout


def check_magnitude(magnitude: float) -> None:
    if not 0 <= magnitude <= MAX_MAGNITUDE:
        raise ValueError(f"RandAugment magnitude must be in [0, {MAX_MAGNITUDE:g}] (the official level scale: 10 is "
                         f"each op's reference strength); got {magnitude:g}.")


def op_arguments(magnitude: float, translate_const: int = TRANSLATE_CONST,
                 cutout_const: int = CUTOUT_CONST) -> dict[str, float]:
    """Each op's argument at ``magnitude`` (``level_to_arg`` of the official code); signed ops' magnitude before
    the random sign. Ops without an argument map to 0. The constants are RandAugment's; AutoAugment passes its own."""
    m = magnitude / MAX_LEVEL
    enhance = m * 1.8 + 0.1
    return {
        "AutoContrast": 0, "Equalize": 0, "Invert": 0,
        "Rotate": m * 30.0,  # degrees
        "Posterize": int(m * 4),  # bits kept
        # The official op compares uint8 pixels with this Python int, which TensorFlow converts to uint8 (mod 256):
        # at magnitude 10 the threshold is 0 (every pixel inverted), at 15 it is 128.
        "Solarize": int(m * 256) % 256,  # threshold
        "Color": enhance, "Contrast": enhance, "Brightness": enhance, "Sharpness": enhance,  # blend factor
        "ShearX": m * 0.3, "ShearY": m * 0.3,  # shear coefficient
        "TranslateX": m * translate_const, "TranslateY": m * translate_const,  # pixels
        "Cutout": int(m * cutout_const),  # half side of the square, pixels
        "SolarizeAdd": int(m * 110),  # added below threshold 128
    }


_UNITS = {"Rotate": "±{:g} degrees", "Posterize": "keep {:d} bits",
          "Solarize": "invert pixels >= {:d}",
          "Color": "blend factor {:.2f}", "Contrast": "blend factor {:.2f}", "Brightness": "blend factor {:.2f}",
          "Sharpness": "blend factor {:.2f}", "ShearX": "±{:.3f}", "ShearY": "±{:.3f}",
          "TranslateX": "±{:g} px", "TranslateY": "±{:g} px", "Cutout": "{:d}-px half side, fill 128",
          "SolarizeAdd": "+{:d} below 128"}


def describe(magnitude: float) -> list[tuple[str, str]]:
    """(op, what it does at ``magnitude``), the official op table, e.g. for docs/training.md or ``--help``."""
    args = op_arguments(magnitude)
    return [(op, _UNITS[op].format(args[op]) if op in _UNITS else "no argument") for op in OPS]


# ---------------------------------------------------------------------------------------------- ops (uint8)


def _blend(image1, image2, factor: float):
    """Official ``blend``: image1 + factor * (image2 - image1), clipped, truncated to uint8 (interpolation stays
    in range, so one clip serves both of its branches)."""
    a, b = tf.cast(image1, tf.float32), tf.cast(image2, tf.float32)
    return tf.cast(tf.clip_by_value(a + factor * (b - a), 0.0, 255.0), tf.uint8)


def _transform(image, matrix):
    """Projective transform (output pixel (x, y) reads input (a0 x + a1 y + a2, b0 x + b1 y + b2)), nearest
    sampling, outside pixels 128: tensorflow_addons' ``transform`` on the wrapped image, then ``unwrap``."""
    shape = tf.shape(image)[:2]
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None], transforms=tf.reshape(tf.cast(tf.stack(matrix), tf.float32), [1, 8]),
        output_shape=shape, fill_value=float(FILL), interpolation="NEAREST", fill_mode="CONSTANT")
    return out[0]


def rotate(image, degrees):
    """tensorflow_addons ``rotate`` about the image centre (``angles_to_projective_transforms``)."""
    radians = degrees * math.pi / 180.0
    h, w = [tf.cast(d, tf.float32) for d in tf.unstack(tf.shape(image)[:2])]
    cos, sin = tf.cos(radians), tf.sin(radians)
    x_offset = ((w - 1) - (cos * (w - 1) - sin * (h - 1))) / 2.0
    y_offset = ((h - 1) - (sin * (w - 1) + cos * (h - 1))) / 2.0
    return _transform(image, [cos, -sin, x_offset, sin, cos, y_offset, 0.0, 0.0])


def translate_x(image, pixels):
    return _transform(image, [1.0, 0.0, pixels, 0.0, 1.0, 0.0, 0.0, 0.0])


def translate_y(image, pixels):
    return _transform(image, [1.0, 0.0, 0.0, 0.0, 1.0, pixels, 0.0, 0.0])


def shear_x(image, level):
    return _transform(image, [1.0, level, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0])


def shear_y(image, level):
    return _transform(image, [1.0, 0.0, 0.0, level, 1.0, 0.0, 0.0, 0.0])


def autocontrast(image):
    """Each channel stretched to [0, 255] (unchanged where it is flat); truncated to uint8."""
    x = tf.cast(image, tf.float32)
    lo = tf.reduce_min(x, axis=[0, 1])
    hi = tf.reduce_max(x, axis=[0, 1])
    scale = 255.0 / tf.maximum(hi - lo, 1e-8)
    stretched = tf.cast(tf.clip_by_value((x - lo) * scale, 0.0, 255.0), tf.uint8)
    return tf.where(hi > lo, stretched, image)


def _equalize_channel(channel):
    im = tf.cast(channel, tf.int32)
    histo = tf.histogram_fixed_width(im, [0, 255], nbins=256)
    nonzero = tf.boolean_mask(histo, histo != 0)
    step = (tf.reduce_sum(nonzero) - nonzero[-1]) // 255

    def lut():
        table = (tf.cumsum(histo) + step // 2) // tf.maximum(step, 1)
        return tf.gather(tf.clip_by_value(tf.concat([[0], table[:-1]], 0), 0, 255), im)

    return tf.cast(tf.cond(step == 0, lambda: im, lut), tf.uint8)


def equalize(image):
    """PIL's Equalize per channel (the official histogram / lookup-table port)."""
    return tf.stack([_equalize_channel(image[:, :, c]) for c in range(3)], axis=2)


def invert(image):
    return 255 - image


def posterize(image, bits: int):
    """Keep the top ``bits`` bits. As in the official op, the shift 8 - bits becomes a uint8 (a negative one wraps)
    and TensorFlow clamps shifts to 7: 0 bits keeps 1, and more than 8 bits (magnitude >= 22.5) keeps 1."""
    shift = tf.constant((8 - bits) % 256, tf.uint8)
    return tf.bitwise.left_shift(tf.bitwise.right_shift(image, shift), shift)


def solarize(image, threshold: int):
    return tf.where(tf.cast(image, tf.int32) < threshold, image, 255 - image)


def solarize_add(image, addition: int, threshold: int = 128):
    added = tf.cast(tf.clip_by_value(tf.cast(image, tf.int32) + addition, 0, 255), tf.uint8)
    return tf.where(image < threshold, added, image)


def color(image, factor: float):
    return _blend(tf.image.grayscale_to_rgb(tf.image.rgb_to_grayscale(image)), image, factor)


def contrast(image, factor: float):
    """Official ``contrast``: its "mean" is the histogram's total count / 256 (pixel count / 256), a known quirk
    of the original TPU code that the published models were trained with; kept."""
    gray = tf.cast(tf.image.rgb_to_grayscale(image), tf.int32)
    hist = tf.histogram_fixed_width(gray, [0, 255], nbins=256)
    mean = tf.minimum(tf.reduce_sum(tf.cast(hist, tf.float32)) / 256.0, 255.0)
    degenerate = tf.cast(tf.fill(tf.shape(image), tf.cast(mean, tf.uint8)), tf.uint8)
    return _blend(degenerate, image, factor)


def brightness(image, factor: float):
    return _blend(tf.zeros_like(image), image, factor)


def sharpness(image, factor: float):
    """Blend with PIL's SMOOTH-filtered image (borders kept from the original)."""
    x = tf.cast(image, tf.float32)[None]
    kernel = tf.tile(tf.constant([[1, 1, 1], [1, 5, 1], [1, 1, 1]], tf.float32, [3, 3, 1, 1]) / 13.0, [1, 1, 3, 1])
    smooth = tf.nn.depthwise_conv2d(x, kernel, [1, 1, 1, 1], padding="VALID")
    smooth = tf.cast(tf.clip_by_value(smooth, 0.0, 255.0), tf.uint8)[0]
    inner = tf.pad(tf.ones_like(smooth), [[1, 1], [1, 1], [0, 0]])
    degenerate = tf.where(inner == 1, tf.pad(smooth, [[1, 1], [1, 1], [0, 0]]), image)
    return _blend(degenerate, image, factor)


def cutout(image, pad_size: int, center, replace=FILL):
    """A (2 pad_size)-sided square around ``center`` ((y, x), int32) set to ``replace``, clipped at the borders."""
    h, w = tf.shape(image)[0], tf.shape(image)[1]
    cy, cx = center[0], center[1]
    ys, xs = tf.range(h)[:, None, None], tf.range(w)[None, :, None]
    inside = ((ys >= tf.maximum(0, cy - pad_size)) & (ys < tf.minimum(h, cy + pad_size))
              & (xs >= tf.maximum(0, cx - pad_size)) & (xs < tf.minimum(w, cx + pad_size)))
    return tf.where(inside, tf.cast(replace, image.dtype) * tf.ones_like(image), image)


# ---------------------------------------------------------------------------------------------- the policy


def _branches(image, magnitude: float, sign, center, consts=(TRANSLATE_CONST, CUTOUT_CONST)):
    """One function per op, in OPS order, applying it at ``magnitude`` (signed ops take ``sign``: +1 or -1)."""
    a = op_arguments(magnitude, *consts)
    return [
        lambda: autocontrast(image),
        lambda: equalize(image),
        lambda: invert(image),
        lambda: rotate(image, sign * a["Rotate"]),
        lambda: posterize(image, a["Posterize"]),
        lambda: solarize(image, a["Solarize"]),
        lambda: color(image, a["Color"]),
        lambda: contrast(image, a["Contrast"]),
        lambda: brightness(image, a["Brightness"]),
        lambda: sharpness(image, a["Sharpness"]),
        lambda: shear_x(image, sign * a["ShearX"]),
        lambda: shear_y(image, sign * a["ShearY"]),
        # translate_x(image, pixels) moves the content by -pixels, as the official op (tfa translate by -pixels).
        lambda: translate_x(image, sign * a["TranslateX"]),
        lambda: translate_y(image, sign * a["TranslateY"]),
        lambda: cutout(image, a["Cutout"], center),
        lambda: solarize_add(image, a["SolarizeAdd"]),
    ]


def apply_op(image, name: str, magnitude: float, sign: float = 1.0, center=None,
             consts=(TRANSLATE_CONST, CUTOUT_CONST)):
    """One official op on a uint8 image [H, W, 3] (AutoAugment's sub-policies and the tests use it)."""
    center = tf.constant([0, 0], tf.int32) if center is None else tf.cast(center, tf.int32)
    return _branches(tf.convert_to_tensor(image, tf.uint8), magnitude, sign, center, consts)[OPS.index(name)]()


NUM_LAYERS = 2  # hparams.py data.ra_num_layers


def randaugment(image, magnitude: float, seed, num_layers: int = NUM_LAYERS) -> tf.Tensor:
    """``num_layers`` official ops drawn for this image from ``seed`` ([2] int), at ``magnitude``.

    ``image``: float RGB [H, W, 3] in [0, 255]; returns float32, each op's uint8 result (official quantization)."""
    check_magnitude(magnitude)
    x = tf.cast(tf.clip_by_value(tf.cast(image, tf.float32), 0.0, 255.0), tf.uint8)
    draws = tf.random.stateless_uniform([num_layers, 4], seed=seed)
    size = tf.cast(tf.shape(x)[:2], tf.float32)
    for layer in range(num_layers):
        op = tf.minimum(tf.cast(draws[layer, 0] * len(OPS), tf.int32), len(OPS) - 1)
        sign = tf.where(draws[layer, 1] < 0.5, -1.0, 1.0)  # official: negate when floor(u + 0.5) == 0
        center = tf.cast(tf.floor(draws[layer, 2:] * size), tf.int32)
        x = tf.ensure_shape(tf.switch_case(op, _branches(x, magnitude, sign, center)), [None, None, 3])
    return tf.cast(x, tf.float32)


# autoaugment.py policy_v0: the AutoAugment paper's ImageNet policy, which the official code applies for
# augname 'autoaug' (EfficientNet V1 and V2-B0..B3: 'effnetv1_autoaug'). Sub-policies of (op, probability, level).
POLICY_V0 = (
    (("Equalize", 0.8, 1), ("ShearY", 0.8, 4)), (("Color", 0.4, 9), ("Equalize", 0.6, 3)),
    (("Color", 0.4, 1), ("Rotate", 0.6, 8)), (("Solarize", 0.8, 3), ("Equalize", 0.4, 7)),
    (("Solarize", 0.4, 2), ("Solarize", 0.6, 2)), (("Color", 0.2, 0), ("Equalize", 0.8, 8)),
    (("Equalize", 0.4, 8), ("SolarizeAdd", 0.8, 3)), (("ShearX", 0.2, 9), ("Rotate", 0.6, 8)),
    (("Color", 0.6, 1), ("Equalize", 1.0, 2)), (("Invert", 0.4, 9), ("Rotate", 0.6, 0)),
    (("Equalize", 1.0, 9), ("ShearY", 0.6, 3)), (("Color", 0.4, 7), ("Equalize", 0.6, 0)),
    (("Posterize", 0.4, 6), ("AutoContrast", 0.4, 7)), (("Solarize", 0.6, 8), ("Color", 0.6, 9)),
    (("Solarize", 0.2, 4), ("Rotate", 0.8, 9)), (("Rotate", 1.0, 7), ("TranslateY", 0.8, 9)),
    (("ShearX", 0.0, 0), ("Solarize", 0.8, 4)), (("ShearY", 0.8, 0), ("Color", 0.6, 4)),
    (("Color", 1.0, 0), ("Rotate", 0.6, 2)), (("Equalize", 0.8, 4), ("Equalize", 0.0, 8)),
    (("Equalize", 1.0, 4), ("AutoContrast", 0.6, 2)), (("ShearY", 0.4, 7), ("SolarizeAdd", 0.6, 7)),
    (("Posterize", 0.8, 2), ("Solarize", 0.6, 10)), (("Solarize", 0.6, 8), ("Equalize", 0.6, 1)),
    (("Color", 0.8, 6), ("Rotate", 0.4, 5)),
)
AUTOAUGMENT_CONSTS = (250, 100)  # distort_image_with_autoaugment: translate_const, cutout_const


def autoaugment(image, seed, policy=POLICY_V0) -> tf.Tensor:
    """AutoAugment as ``distort_image_with_autoaugment(image, 'v0')``: one sub-policy drawn uniformly for this
    image from ``seed`` ([2] int), each of its ops applied with its probability (``_apply_func_with_prob``) at its
    level, signed ops with a random sign. ``image`` float RGB [H, W, 3] in [0, 255]; returns float32."""
    x = tf.cast(tf.clip_by_value(tf.cast(image, tf.float32), 0.0, 255.0), tf.uint8)
    choice, draws = tf.random.stateless_uniform([1], seed=seed), tf.random.stateless_uniform(
        [max(map(len, policy)), 4], seed=tf.random.experimental.stateless_fold_in(seed, 1))
    size = tf.cast(tf.shape(x)[:2], tf.float32)
    index = tf.minimum(tf.cast(choice[0] * len(policy), tf.int32), len(policy) - 1)
    # One flat switch per op slot of the drawn sub-policy, its probability applied by selection: the same result
    # as a cond per op inside a switch per sub-policy, which tf.data runs several times slower (nested functions).
    for i in range(max(map(len, policy))):
        sign = tf.where(draws[i, 1] < 0.5, -1.0, 1.0)
        center = tf.cast(tf.floor(draws[i, 2:] * size), tf.int32)
        branches = [(lambda y=x, op=ops[i]: apply_op(y, op[0], op[2], sign, center, AUTOAUGMENT_CONSTS))
                    if i < len(ops) else (lambda y=x: y) for ops in policy]
        prob = tf.gather(tf.constant([ops[i][1] if i < len(ops) else 0.0 for ops in policy]), index)
        applied = tf.ensure_shape(tf.switch_case(index, branches), [None, None, 3])
        x = tf.where(tf.floor(draws[i, 0] + prob) > 0, applied, x)  # official: cast(floor(u + prob), bool)
    return tf.cast(x, tf.float32)
