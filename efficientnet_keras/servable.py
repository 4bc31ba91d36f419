"""What export needs to know about a model: :class:`Servable` (the model, its serving size, class names and
evaluation transform) and :func:`load_servable` from a zoo variant, a ``.keras`` file or a training run."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass

import keras

from efficientnet_keras.transforms import LEGACY_V1, Preprocessing, saved_eval_transform

TRAINED_MODEL_FILE = "model.keras"  # what train() writes into its model_dir


@dataclass
class Servable:
    """A model plus what serving needs to know about it."""

    model: keras.Model
    image_size: int
    class_names: list[str]
    crop_fraction: float | None = None  # None: the preprocessing's official crop at image_size
    preprocessing: Preprocessing = LEGACY_V1  # the variant's (models.Variant.preprocessing)

    def __post_init__(self):
        classes = self.model.output_shape[-1]
        if len(self.class_names) != classes:
            raise ValueError(f"{len(self.class_names)} class names for a model with {classes} classes.")
        if self.crop_fraction is not None and not 0 < self.crop_fraction <= 1:
            raise ValueError(f"crop_fraction must be in (0, 1], got {self.crop_fraction}.")

    @property
    def outputs_probabilities(self) -> bool:
        """Whether the classifier ends in softmax (zoo models) or returns logits (trained with from_logits)."""
        activation = getattr(self.model.layers[-1], "activation", None)
        return getattr(activation, "__name__", "") == "softmax"


def default_class_names(classes: int) -> list[str]:
    from efficientnet_keras.imagenet import IMAGENET_21K_CLASSES, class_names

    if classes in (1000, IMAGENET_21K_CLASSES):  # ImageNet-1k, or the official ImageNet-21k heads
        return class_names(classes)
    return [str(i) for i in range(classes)]


def is_variant(name: str) -> bool:
    from efficientnet_keras.models import get_variant

    try:
        get_variant(name)
    except ValueError:
        return False
    return True


def load_servable(model: str | keras.Model, weights: str | None = "default", image_size: int | None = None,
                  crop_fraction: float | None = None, class_names: list[str] | None = None) -> Servable:
    """A zoo variant name, a ``.keras`` file, a training ``model_dir`` or a built model, ready to export.

    The image size and evaluation transform come from the variant (its resolution and official crop), the
    training run (its evaluation size and transform) or the model's static input shape; ``image_size`` /
    ``crop_fraction`` override them.
    """
    from efficientnet_keras.models import create_model, get_variant

    import tensorflow as tf

    run: dict = {}
    if isinstance(model, keras.Model):
        net = model
    elif isinstance(model, str) and not model.endswith(".keras") and tf.io.gfile.isdir(model):
        path = f"{model.rstrip('/')}/{TRAINED_MODEL_FILE}"
        if not tf.io.gfile.exists(path):
            raise ValueError(f"{model!r} is a folder without {TRAINED_MODEL_FILE}: not a finished training run "
                             "(python -m efficientnet_keras.train writes it at the end).")
        results = f"{model.rstrip('/')}/results.json"
        if tf.io.gfile.exists(results):
            with tf.io.gfile.GFile(results) as f:
                run = json.load(f)
        net = _load_keras(path)
    elif isinstance(model, str) and model.endswith(".keras"):
        if not tf.io.gfile.exists(model):
            raise ValueError(f"Model file not found: {model}")
        net = _load_keras(model)
        beside = f"{os.path.dirname(model) or '.'}/results.json"  # a run's model.keras: the run's size and classes
        if os.path.basename(model) == TRAINED_MODEL_FILE and tf.io.gfile.exists(beside):
            with tf.io.gfile.GFile(beside) as f:
                run = json.load(f)
    elif isinstance(model, str) and is_variant(model):
        net = create_model(model, weights=weights)
        variant = get_variant(model)
        run = {"eval_size": variant.resolution, "preprocessing": dataclasses.asdict(variant.preprocessing)}
    else:
        raise ValueError(f"Unknown model or checkpoint {model!r}: expected a variant name (e.g. EfficientNetLite0), "
                         "a .keras file, or a training model_dir holding model.keras.")
    size = image_size or run.get("eval_size") or net.input_shape[1]
    if not size:
        raise ValueError(f"{net.name} takes images of any size; pass image_size (the size to serve at).")
    classes = net.output_shape[-1]
    names = class_names or run.get("class_names") or default_class_names(classes)
    saved_crop, preprocessing = saved_eval_transform(run)
    return Servable(net, int(size), list(names), crop_fraction or saved_crop, preprocessing)


def _load_keras(path: str) -> keras.Model:
    try:
        return keras.saving.load_model(path, compile=False)
    except (TypeError, ValueError) as e:
        if "Could not locate" in str(e) or "Unknown" in str(e):
            raise ValueError(f"{path} holds a class Keras cannot find ({e}). A model trained by an older version "
                             "of efficientnet_keras saved its optimizer; re-save it with efficientnet_keras.train "
                             "imported.") from None
        raise


def prepare_output(path: str, overwrite: bool) -> None:
    """Refuse to replace a non-empty output without ``overwrite`` (local or remote storage, through gfile)."""
    import tensorflow as tf

    gfile = tf.io.gfile
    if gfile.exists(path) and (not gfile.isdir(path) or gfile.listdir(path)):
        if not overwrite:
            raise ValueError(f"{path} already exists and is not empty; pass overwrite=True (--overwrite) to replace "
                             "it, or choose another version.")
        if gfile.isdir(path):
            gfile.rmtree(path)
        else:
            gfile.remove(path)


def require_tensorflow_backend() -> None:
    if keras.backend.backend() != "tensorflow":
        raise ValueError(f"SavedModel and TFLite export need KERAS_BACKEND=tensorflow (now "
                         f"{keras.backend.backend()!r}); a .keras file saved on any backend loads there.")
