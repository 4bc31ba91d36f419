"""Checkpoints in the official EfficientNet layout with deterministic values (shared by the fixture script
``tests/fixtures/make_official_fixture.py``, which ran the official google/automl model on these values, and the
tests, which write the same checkpoint and load it into ours)."""

import json
import os
import zlib

import numpy as np

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "official_logits.json")


def cases() -> list[dict]:
    with open(FIXTURE) as f:
        return json.load(f)["cases"]


def value(name: str, shape, raw: bool = False) -> np.ndarray:
    """The EMA value (``raw=False``) or a different raw value of one official variable, from its name alone."""
    rng = np.random.default_rng(zlib.crc32(name.encode()) + (7 if raw else 0))
    shape, var = tuple(shape), name.rsplit("/", 1)[-1]
    if var in ("gamma", "moving_variance"):
        return rng.uniform(0.5, 1.5, shape).astype(np.float32)
    if var in ("beta", "moving_mean", "bias"):
        return (0.1 * rng.standard_normal(shape)).astype(np.float32)
    fan_in = int(np.prod(shape[:-1])) if var != "depthwise_kernel" else int(np.prod(shape[:2]))
    return (rng.standard_normal(shape) * np.sqrt(1.0 / fan_in)).astype(np.float32)


def inputs(size: int) -> np.ndarray:
    """Two normalized images, as the official model takes them."""
    return np.random.default_rng(0).uniform(-1, 1, (2, size, size, 3)).astype(np.float32)


def write(prefix: str, variables, ema: bool = True, raw: bool = True, slots: bool = True) -> str:
    """A name-based checkpoint of ``variables`` ([name, shape] pairs) as TF1 training saves it: raw values, their
    EMA shadows, RMSProp slots and global_step (each part optional)."""
    import tensorflow as tf

    tensors = {}
    for name, shape in variables:
        if raw:
            tensors[name] = value(name, shape, raw=True)
        if ema:
            tensors[name + "/ExponentialMovingAverage"] = value(name, shape)
        if slots and not name.endswith(("moving_mean", "moving_variance")):
            tensors[name + "/RMSProp"] = np.ones(shape, np.float32)
            tensors[name + "/RMSProp_1"] = np.zeros(shape, np.float32)
    if slots:
        tensors["global_step"] = np.array(1000, np.int64)
    names = sorted(tensors)
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tensors[n] for n in names])
    return prefix


def keras_to_official(model, scope: str) -> dict:
    """Our model's weights under the official variable names (the released EfficientNet / Lite layout), each
    stored as the EMA shadow the released checkpoints carry. Written independently of the converter: per block,
    convolutions and normalizations are numbered in creation order, as the official ``get_conv_name`` does."""
    import re

    out, counters = {}, {}
    top = {"stem_conv": "stem/conv2d", "stem_bn": "stem/tpu_batch_normalization", "top_conv": "head/conv2d",
           "top_bn": "head/tpu_batch_normalization", "predictions": "head/dense"}
    blocks = []
    for layer in model.layers:
        if not layer.weights or layer.name == "normalization":
            continue
        m = re.match(r"^(block\d+[^\d_]_)(.*)$", layer.name)
        if m:
            if m.group(1) not in blocks:
                blocks.append(m.group(1))
            k, part = blocks.index(m.group(1)), m.group(2)
            if part in ("se_reduce", "se_expand"):
                path = f"blocks_{k}/se/conv2d" + ("" if part == "se_reduce" else "_1")
            else:
                kind = ("depthwise_conv2d" if part.startswith("dwconv") else
                        "tpu_batch_normalization" if part.endswith("bn") else "conv2d")
                n = counters.get((k, kind), 0)
                counters[(k, kind)] = n + 1
                path = f"blocks_{k}/{kind}" + (f"_{n}" if n else "")
        else:
            path = top[layer.name]
        for w in layer.weights:
            var = w.path.split("/")[-1]
            var = "depthwise_kernel" if path.endswith("depthwise_conv2d") and var == "kernel" else var
            out[f"{scope}/{path}/{var}/ExponentialMovingAverage"] = np.asarray(w.numpy())
    return out


def write_archive(path: str, folder: str, tensors: dict) -> str:
    """A released-style ``.tar.gz``: ``<folder>/model.ckpt.{index,data-*}`` plus a ``checkpoint`` state file."""
    import tarfile
    import tempfile

    import tensorflow as tf

    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, folder))
        names = sorted(tensors)
        tf.raw_ops.SaveV2(prefix=os.path.join(tmp, folder, "model.ckpt"), tensor_names=names,
                          shape_and_slices=[""] * len(names), tensors=[tensors[n] for n in names])
        with open(os.path.join(tmp, folder, "checkpoint"), "w") as f:
            f.write('model_checkpoint_path: "model.ckpt"\n')
        with tarfile.open(path, "w:gz") as tar:
            tar.add(os.path.join(tmp, folder), arcname=folder)
    return path
