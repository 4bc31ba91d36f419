"""Choosing the device strategy, mixed precision and XLA for a training run.

TPU code is kept thin: detection and ``TPUStrategy`` creation only; everything else is shared with the
strategies testable on CPU (MirroredStrategy over logical devices, MultiWorkerMirroredStrategy on localhost).
"""

from __future__ import annotations

import glob
import os

import keras

__all__ = ["STRATEGIES", "make_strategy", "is_chief", "all_workers_ok", "tpu_available", "resolve_mixed_precision",
           "resolve_jit_compile", "device_kind"]

STRATEGIES = ("auto", "tpu", "mirrored", "multiworker", "default")


def tpu_available() -> bool:
    """A TPU is reachable: Colab's TPU address, a named TPU, or a TPU VM's accelerator devices. No network calls,
    so detection never hangs."""
    return bool(os.environ.get("COLAB_TPU_ADDR") or os.environ.get("TPU_NAME") or glob.glob("/dev/accel*")
                or os.environ.get("TPU_ACCELERATOR_TYPE"))


def _gpus():
    import tensorflow as tf

    return tf.config.list_physical_devices("GPU")


def device_kind(strategy_name: str) -> str:
    """"tpu", "gpu" or "cpu": what the run will compute on."""
    if strategy_name == "tpu" or (strategy_name == "auto" and tpu_available()):
        return "tpu"
    return "gpu" if keras.backend.backend() == "tensorflow" and _gpus() else "cpu"


def make_strategy(name: str = "auto", cpu_devices: int = 0):
    """A ``tf.distribute`` strategy by name.

    ``auto``: TPU if one is reachable, else MirroredStrategy over 2+ GPUs, else the default strategy.
    ``mirrored`` with ``cpu_devices=N`` splits the CPU into N logical devices (for tests and debugging).
    ``multiworker``: MultiWorkerMirroredStrategy over the cluster in ``TF_CONFIG``, made usable by ``Model.fit``
    (see ``_multi_worker_strategy``).
    """
    if name not in STRATEGIES:
        raise ValueError(f"Unknown strategy {name!r}; expected one of {', '.join(STRATEGIES)}.")
    if keras.backend.backend() != "tensorflow":
        if name in ("default", "auto"):
            return None
        raise ValueError(
            f"strategy={name!r} needs the TensorFlow backend (tf.distribute); KERAS_BACKEND is "
            f"{keras.backend.backend()!r}. Use strategy='default' there, or KERAS_BACKEND=tensorflow."
        )
    import tensorflow as tf

    if name == "tpu" or (name == "auto" and tpu_available()):
        if not tpu_available():
            raise ValueError(
                "strategy='tpu' but no TPU was found (no COLAB_TPU_ADDR / TPU_NAME and no /dev/accel*). In Colab, "
                "choose Runtime > Change runtime type > TPU; elsewhere use strategy='auto', 'mirrored' or 'default'."
            )
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=os.environ.get("TPU_NAME", ""))
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    if name == "multiworker":
        return _multi_worker_strategy()
    if name == "mirrored":
        if cpu_devices > 0:
            cpus = tf.config.list_physical_devices("CPU")
            try:
                tf.config.set_logical_device_configuration(
                    cpus[0], [tf.config.LogicalDeviceConfiguration()] * cpu_devices)
            except RuntimeError as e:
                raise ValueError(f"Cannot split the CPU into {cpu_devices} devices after TensorFlow started: {e}")
            return tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(cpu_devices)])
        return tf.distribute.MirroredStrategy()
    if name == "auto" and len(_gpus()) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def _multi_worker_strategy():
    """MultiWorkerMirroredStrategy whose ``reduce`` accepts the two calls Keras 3.15's ``Model.fit`` makes of it.

    Plain MultiWorkerMirroredStrategy fails in ``fit`` (tensorflow/tensorflow#72388, closed without a fix): before
    the first step Keras reduces the whole ``(x, y)`` batch tuple (the collective all-reduce takes one value, not a
    structure), and after each step it reduces the scalar logs with ``axis=0`` ("Invalid reduction dimension 0 for
    input with 0 dimensions"). This subclass reduces a structure element by element and a scalar over replicas
    (``axis=None``), which is what Keras means; everything else is tf.distribute's. A strict-xfail test in
    tests/test_train.py runs plain ``fit`` under the stock strategy and flags the Keras release that fixes it.
    """
    import tensorflow as tf

    if not os.environ.get("TF_CONFIG"):
        raise ValueError(
            "strategy='multiworker' needs TF_CONFIG, the JSON naming the cluster's workers and this process's task, "
            'e.g. {"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker", "index": 0}}; '
            "start the same command on every worker. On one machine use 'mirrored'."
        )

    class MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
        def reduce(self, reduce_op, value, axis):
            def one(v):
                rank = getattr(getattr(v, "shape", None), "rank", None)
                return super(MultiWorkerMirroredStrategy, self).reduce(
                    reduce_op, v, axis=None if rank == 0 else axis)

            return tf.nest.map_structure(one, value)

    return MultiWorkerMirroredStrategy()


def is_chief(strategy) -> bool:
    """Whether this process writes the run's files (checkpoints, logs, final model): always, except on the
    non-chief workers of a multi-worker cluster. ``strategy`` is None on the JAX and PyTorch backends."""
    extended = getattr(strategy, "extended", None)
    return bool(getattr(extended, "should_checkpoint", True))


def all_workers_ok(strategy, ok: bool) -> bool:
    """Whether ``ok`` is true on every worker: a collective all workers call, so that an error raised on one
    (the chief refusing model_dir, say) stops all of them instead of leaving the others waiting for it forever."""
    if strategy is None or getattr(strategy, "cluster_resolver", None) is None:
        return ok
    import tensorflow as tf

    flag = tf.constant(0 if ok else 1, tf.int32)
    failures = tf.function(lambda: strategy.reduce("SUM", strategy.run(lambda: flag), axis=None))()
    return int(failures) == 0


def resolve_mixed_precision(setting: str, kind: str) -> str:
    """Keras dtype policy: ``auto`` is bfloat16 on TPU, float16 on GPU (Keras adds loss scaling), float32 on CPU
    (mixed_bfloat16 measured 8x slower than float32 for a V2-S step on this project's 2-core CPU)."""
    policies = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
    if setting == "auto":
        return {"tpu": "mixed_bfloat16", "gpu": "mixed_float16"}.get(kind, "float32")
    if setting not in policies:
        raise ValueError(f"mixed_precision must be auto, float32, bfloat16 or float16; got {setting!r}.")
    return policies[setting]


def resolve_jit_compile(setting: str, kind: str) -> bool:
    """XLA: ``auto`` compiles on TPU/GPU and not on CPU, from measurement (``benchmarks/speed.py --xla_sizes``).

    On the 2-core development CPU XLA loses at every size, small ones included, where fused ops were expected to
    cut per-op overhead: V2-B0 train step, batch 32, XLA/no-XLA 0.49x at 32 px, 0.27x at 64, 0.18x at 128 px (plus
    30-50 s of compilation per image size, which progressive learning pays at each stage)."""
    if setting == "auto":
        return kind in ("tpu", "gpu") and keras.backend.backend() != "torch"
    if setting not in ("true", "false"):
        raise ValueError(f"jit_compile must be auto, true or false; got {setting!r}.")
    return setting == "true"
