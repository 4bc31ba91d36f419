"""Input normalization as numbers: what a weight set was trained with, what a model applies, what a user asks for.

One ``Normalization`` is a mean and a standard deviation per channel of [0, 255] RGB (``x -> (x - mean) / std``).
The pretrained configs (``weights/registry.py``) name one per weight set, each family has a default, and the
builder turns the numbers into layers (``builder.input_normalization``); no module decides it from a name.
"""

from __future__ import annotations

import dataclasses

__all__ = ["Normalization", "IMAGENET", "UNIT", "INCEPTION", "LITE", "NORMALIZATIONS", "get_normalization"]


@dataclasses.dataclass(frozen=True)
class Normalization:
    """``(x - mean) / std`` per RGB channel of [0, 255] input."""

    name: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @property
    def uniform(self) -> bool:
        """The same numbers for every channel: one affine ``Rescaling`` applies it (and to any channel count)."""
        return len(set(self.mean)) == 1 and len(set(self.std)) == 1

    def describe(self) -> str:
        if self.uniform:
            return f"(x − {self.mean[0]:g}) / {self.std[0]:g}"
        return f"{'ImageNet' if self.name == 'imagenet' else self.name} mean/std"

    def to_dict(self) -> dict:
        return {"name": self.name, "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, record: dict) -> "Normalization":
        return cls(record["name"], tuple(record["mean"]), tuple(record["std"]))


# ImageNet mean/std: tensorflow/tpu efficientnet MEAN_RGB / STDDEV_RGB, automl preprocess_legacy.py, keras.applications.
IMAGENET = Normalization("imagenet", (0.485 * 255, 0.456 * 255, 0.406 * 255), (0.229 * 255, 0.224 * 255, 0.225 * 255))
# automl efficientnetv2 preprocessing.py: (image - 128) / 128.
UNIT = Normalization("unit", (128.0,) * 3, (128.0,) * 3)
# x / 127.5 - 1: AdvProp (the ports of timm and lukemelas, which match the released accuracy) and timm's CoAtNets.
INCEPTION = Normalization("inception", (127.5,) * 3, (127.5,) * 3)
# tensorflow/tpu efficientnet/lite: MEAN_RGB = 127, STDDEV_RGB = 128.
LITE = Normalization("lite", (127.0,) * 3, (128.0,) * 3)

NORMALIZATIONS: dict[str, Normalization] = {n.name: n for n in (IMAGENET, UNIT, INCEPTION, LITE)}


def get_normalization(value: str | Normalization) -> Normalization:
    """A Normalization from itself or its name (the CLIs' and ``create_model(normalization=)``'s spelling)."""
    if isinstance(value, Normalization):
        return value
    if value not in NORMALIZATIONS:
        raise ValueError(f"Unknown normalization {value!r}; expected one of {', '.join(NORMALIZATIONS)}, or a "
                         "Normalization(name, mean, std) of [0, 255] RGB.")
    return NORMALIZATIONS[value]
