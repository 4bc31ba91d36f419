"""The model class every builder returns: a Functional ``keras.Model`` that knows how its input must be prepared.

``get_preprocessing(model)`` answers what users of a pretrained model ask first: which normalization, input size,
crop and resize its weights were trained and evaluated with. The answer is part of the model's config, so a
``.keras`` file loaded in another process answers too.
"""

from __future__ import annotations

import dataclasses

import keras

from efficientnet_keras.normalization import Normalization
from efficientnet_keras.transforms import LEGACY_V1, Preprocessing

__all__ = ["PreprocessingConfig", "EfficientNetModel", "get_preprocessing"]


@dataclasses.dataclass(frozen=True)
class PreprocessingConfig:
    """How to prepare images for a model.

    ``normalization``: what its weights were trained with; the model applies it itself when ``in_model`` (it then
    takes [0, 255] RGB), else the caller must. ``input_size``: the evaluation size. ``crop_fraction``: the central
    crop at that size (None: the whole image, resized). ``interpolation``: the resize method. ``transform``: the
    official training and evaluation transform in full. ``weights``: what the weights were loaded from."""

    normalization: Normalization
    in_model: bool
    input_size: int
    crop_fraction: float | None
    interpolation: str
    transform: Preprocessing = LEGACY_V1
    weights: str | None = None

    @classmethod
    def make(cls, normalization: Normalization, in_model: bool, input_size: int,
             transform: Preprocessing = LEGACY_V1, weights: str | None = None) -> "PreprocessingConfig":
        return cls(normalization, in_model, input_size, transform.crop_fraction(input_size), transform.resize,
                   transform, weights)

    def to_dict(self) -> dict:
        record = dataclasses.asdict(self)
        record["normalization"] = self.normalization.to_dict()
        return record

    @classmethod
    def from_dict(cls, record: dict) -> "PreprocessingConfig":
        values = dict(record)
        values["normalization"] = Normalization.from_dict(values["normalization"])
        values["transform"] = Preprocessing.from_record(values["transform"])
        return cls(**values)


@keras.saving.register_keras_serializable(package="efficientnet_keras")
class EfficientNetModel(keras.Model):
    """A Functional model (the builder's layer graph) with its ``preprocessing`` config."""

    def __init__(self, *args, preprocessing: PreprocessingConfig | dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if isinstance(preprocessing, dict):
            preprocessing = PreprocessingConfig.from_dict(preprocessing)
        self._preprocessing = preprocessing

    @property
    def preprocessing(self) -> PreprocessingConfig | None:
        return self._preprocessing

    @preprocessing.setter
    def preprocessing(self, value: PreprocessingConfig) -> None:
        self._preprocessing = value

    def set_weights(self, weights) -> None:
        """``keras.Model.set_weights``, and V1's input ``Normalization`` then uses the mean and variance just set
        (Keras computes them from its weights only when it builds or loads the layer)."""
        super().set_weights(weights)
        for layer in self.layers:
            if isinstance(layer, keras.layers.Normalization):
                layer.finalize_state()

    def get_config(self):
        config = super().get_config()
        if self._preprocessing is not None:
            config["preprocessing"] = self._preprocessing.to_dict()
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        preprocessing = config.pop("preprocessing", None)
        model = super().from_config(config, custom_objects=custom_objects)  # Keras revives the layer graph
        model.preprocessing = PreprocessingConfig.from_dict(preprocessing) if preprocessing else None
        return model


def get_preprocessing(model: keras.Model) -> PreprocessingConfig:
    """The normalization, input size, crop and resize ``model``'s weights expect (see ``PreprocessingConfig``)."""
    config = getattr(model, "preprocessing", None)
    if not isinstance(config, PreprocessingConfig):
        raise ValueError(f"Model '{model.name}' carries no preprocessing config: it was not built by efficientnet_keras "
                         "(or saved by efficientnet_keras 0.1.0 or earlier). Rebuild it with its constructor and load its "
                         "weights, or take the numbers from docs/weights.md.")
    return config
