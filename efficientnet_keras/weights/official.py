"""The official TensorFlow checkpoints (google/automl ``efficientnetv2``, tensorflow/tpu ``efficientnet`` and its
``lite``) converted into our models by the official variable names.

The released archives hold name-based checkpoints (``model.ckpt.index`` / ``.data-*``) whose variables are named
by the official Keras layers: ``<model>/stem/conv2d``, ``<model>/blocks_<k>/conv2d[_n]``, ``depthwise_conv2d``,
``se/conv2d[_1]``, ``tpu_batch_normalization[_n]``, ``<model>/head/conv2d``, ``head/tpu_batch_normalization`` and
``head/dense``. Within a block the official code names convolutions and normalizations by creation order
(``effnetv2_model.py`` ``get_conv_name`` / ``get_norm_name``), which is our layers' order too, so the n-th official
convolution of block k is our block k's n-th (non-depthwise, non-squeeze-excite) convolution.

Each variable is read from its ``/ExponentialMovingAverage`` shadow when the checkpoint has one (the official
evaluation restores the averages, BatchNorm statistics included); optimizer slots and ``global_step`` are skipped.
"""

from __future__ import annotations

import os
import re
from typing import Mapping

import keras
import numpy as np

from efficientnet_keras.weights.convert import assign_layers, block_layer_roles, block_prefixes

__all__ = ["read_checkpoint", "official_to_keras", "official_model_name", "checkpoint_model_name",
           "checkpoint_classes", "load_checkpoint_into"]

EMA_SUFFIX = "/ExponentialMovingAverage"
_SKIPPED = re.compile(r"(/RMSProp(_\d+)?|/Momentum|/Adam(_\d+)?)$|^global_step$")  # optimizer state


def official_model_name(keras_name: str) -> str:
    """The official code's model name: keras.applications' ``efficientnetb0`` is the official ``efficientnet-b0``."""
    m = re.fullmatch(r"efficientnetb(\d)", keras_name)
    return f"efficientnet-b{m.group(1)}" if m else keras_name


def _checkpoint_prefix(path: str) -> str:
    """A checkpoint prefix from a prefix, a folder holding one checkpoint (as a released archive extracts), or a
    folder with a ``checkpoint`` state file."""
    import tensorflow as tf

    path = os.fspath(path)
    if tf.io.gfile.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest:
            return latest
        indexes = sorted(tf.io.gfile.glob(os.path.join(path, "*.index")))
        if len(indexes) != 1:
            raise ValueError(f"{path} holds {len(indexes)} checkpoints (*.index files); expected one. Pass the "
                             "checkpoint prefix, e.g. <folder>/model.ckpt.")
        return indexes[0][: -len(".index")]
    if not tf.io.gfile.exists(path + ".index"):
        raise ValueError(f"{path} is neither a folder nor a checkpoint prefix ({path}.index does not exist).")
    return path


def read_checkpoint(path: str) -> dict[str, np.ndarray]:
    """The model variables of an official name-based checkpoint, each from its EMA shadow where there is one."""
    import tensorflow as tf

    prefix = _checkpoint_prefix(path)
    try:
        reader = tf.train.load_checkpoint(prefix)
        names = reader.get_variable_to_shape_map()
    except (tf.errors.OpError, ValueError) as e:
        raise ValueError(f"Cannot read the checkpoint {prefix}: {str(e).splitlines()[0]} (a truncated or partial "
                         "download? Extract the archive again).") from None
    values = {}
    bases = sorted({n[: -len(EMA_SUFFIX)] if n.endswith(EMA_SUFFIX) else n for n in names})
    for name in bases:
        if _SKIPPED.search(name):
            continue
        shadow = name + EMA_SUFFIX
        try:
            values[name] = reader.get_tensor(shadow if shadow in names else name)
        except (tf.errors.OpError, IndexError) as e:  # IndexError: "Read less bytes than requested"
            raise ValueError(f"Cannot read variable '{name}' of {prefix}: {str(e).splitlines()[0]} (a truncated "
                             "download? Extract the archive again).") from None
    return values


def checkpoint_model_name(variables: Mapping[str, np.ndarray]) -> str:
    """The official model name the variables are scoped under (``efficientnetv2-s``, ``efficientnet-b0`` ...)."""
    roots = {name.split("/")[0] for name in variables if "/" in name}
    if len(roots) != 1:
        raise ValueError(f"Expected the variables of one official EfficientNet, found the scopes {sorted(roots)[:5]}.")
    return roots.pop()


def _target(rest: str, blocks: list[str], roles) -> str | None:
    """Our layer for an official layer path below the model scope, or None when there is no such layer."""
    top = {"stem/conv2d": "stem_conv", "stem/tpu_batch_normalization": "stem_bn", "head/conv2d": "top_conv",
           "head/tpu_batch_normalization": "top_bn", "head/dense": "predictions"}
    if rest in top:
        return top[rest]
    m = re.fullmatch(r"blocks_(\d+)/(se/)?(conv2d|depthwise_conv2d|tpu_batch_normalization)(?:_(\d+))?", rest)
    if not m or int(m.group(1)) >= len(blocks):
        return None
    prefix, se, kind, n = blocks[int(m.group(1))], m.group(2), m.group(3), int(m.group(4) or 0)
    if se:
        return prefix + ("se_reduce", "se_expand")[n] if kind == "conv2d" and n < 2 else None
    names = roles[prefix]["conv" if kind == "conv2d" else "depthwise" if kind == "depthwise_conv2d" else "bn"]
    return names[n] if n < len(names) else None


def official_to_keras(model: keras.Model, variables: Mapping[str, np.ndarray], source: str = "checkpoint",
                      expected_name: str | None = None, allow_unused: bool = False) -> list[str]:
    """Copy an official checkpoint's variables into ``model`` in place, checking every one is used exactly once.

    The classifier is skipped when the model has no top. A V1 model's input normalization (weights the
    checkpoints do not carry) stays as the builder set it, the weight set's.
    Raises ValueError naming the checkpoint's model when it is not ``expected_name``, the first variable that
    has no layer (unless ``allow_unused``: those are returned, for the caller to report once the loaded model
    passed its content check), the first model variable left unfilled, or the first shape that differs."""
    found = checkpoint_model_name(variables)
    if expected_name and found != expected_name:
        raise ValueError(f"{source} is a checkpoint of '{found}', not of '{expected_name}'; use the {found} "
                         f"constructor or the checkpoint of {expected_name}.")
    layers = {layer.name for layer in model.layers}
    blocks, roles = block_prefixes(model), block_layer_roles(model)
    assigned: dict[str, dict[str, np.ndarray]] = {}
    unused = []
    for name, value in variables.items():
        rest, _, var = name[len(found) + 1:].rpartition("/")
        target = _target(rest, blocks, roles)
        if target == "predictions" and target not in layers:
            continue  # include_top=False: the classifier is not used
        if (target is None or target not in layers) and allow_unused:
            unused.append(name)
            continue
        if target is None or target not in layers:
            raise ValueError(f"{source}: variable '{name}' has no matching layer in model '{model.name}' "
                             f"({len(blocks)} blocks): the checkpoint is of another network.")
        short = "kernel" if var == "depthwise_kernel" else var
        assigned.setdefault(target, {})[short] = value
    assign_layers(model, assigned, source)
    return unused


def describe_unused(names: list[str]) -> str:
    """Unused checkpoint variables as name patterns (numbers as ``<n>``) with their counts, most frequent first."""
    patterns: dict[str, int] = {}
    for name in names:
        key = re.sub(r"\d+", "<n>", name.split("/", 1)[-1])
        patterns[key] = patterns.get(key, 0) + 1
    return ", ".join(f"{p} (x{n})" for p, n in sorted(patterns.items(), key=lambda item: -item[1]))


def checkpoint_classes(variables: Mapping[str, np.ndarray]) -> int | None:
    """The classifier size of a checkpoint's variables (None: it has no classifier)."""
    return next((v.shape[-1] for k, v in variables.items() if k.endswith("head/dense/kernel")), None)


def load_checkpoint_into(model: keras.Model, path: str, expected_name: str | None = None) -> None:
    official_to_keras(model, read_checkpoint(path), source=os.fspath(path), expected_name=expected_name)
