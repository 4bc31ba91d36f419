"""Images/s of our models against keras.applications: inference and training steps, per Keras backend, one command.

    .venv/bin/python benchmarks/speed.py                       # every workload, every installed backend
    .venv/bin/python benchmarks/speed.py --workloads=v2s_train --repeats=7

Each configuration runs in its own process (the Keras backend and TensorFlow's oneDNN switch are fixed when a
process imports them):

- ``keras``: TensorFlow backend as a keras.applications user gets it (Keras imported first: TensorFlow's own
  oneDNN default, off on CPUs without AVX-512). The baseline of every ratio.
- ``ours``: TensorFlow backend as an ``efficientnet_keras`` user gets it (the package imported first: oneDNN on).
- ``torch`` / ``jax``: the Keras backend of that name, where installed.

In every process keras.applications and our model are measured interleaved (repetition by repetition, median and
min..max of ``--repeats``), so the in-process ratio compares like with like; the headline ratio divides our model
in ``ours`` by keras.applications in ``keras`` (two processes of the same command, one after the other).
FLOPs are the papers' multiply-adds x 2 (a training step: x 3, forward + two backward products); the machine's
peak is a float32 matmul measured in the same process.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from absl import app, flags

# name: (variant, keras.applications constructor, image size, batch, "infer" | "train")
WORKLOADS = {
    "b0_infer": ("EfficientNetB0", "EfficientNetB0", 224, 32, "infer"),
    "v2b0_infer": ("EfficientNetV2B0", "EfficientNetV2B0", 224, 32, "infer"),
    "v2s_infer": ("EfficientNetV2S", "EfficientNetV2S", 128, 16, "infer"),
    "b0_train": ("EfficientNetB0", "EfficientNetB0", 128, 32, "train"),
    "v2b0_train": ("EfficientNetV2B0", "EfficientNetV2B0", 128, 32, "train"),
    "v2s_train": ("EfficientNetV2S", "EfficientNetV2S", 128, 16, "train"),
}
CONFIGS = {  # name: (KERAS_BACKEND, import efficientnet_keras before keras)
    "keras": ("tensorflow", False),
    "ours": ("tensorflow", True),
    "torch": ("torch", True),
    "jax": ("jax", True),
}

flags.DEFINE_list("workloads", list(WORKLOADS), f"Workloads: {', '.join(WORKLOADS)}.")
flags.DEFINE_list("configs", list(CONFIGS), "Configurations (those whose backend is not installed are skipped).")
flags.DEFINE_integer("repeats", 5, "Interleaved repetitions per model (median and spread are reported).")
flags.DEFINE_integer("steps", 2, "Steps (calls) timed per repetition.")
flags.DEFINE_list("xla_sizes", ["32", "64", "128"], "In 'ours': V2-B0 train step (batch 32) with and without "
                  "XLA jit_compile at these sizes (empty: skip).")
flags.DEFINE_string("child", None, "Internal: run one configuration in this process and print JSON lines.")
FLAGS = flags.FLAGS


def _installed(backend: str) -> bool:
    import importlib.util

    return backend == "tensorflow" or importlib.util.find_spec(backend) is not None


def _peak_gflops(keras) -> float:
    """float32 matmul GFLOP/s of this process's backend: the practical peak of the machine."""
    import numpy as np

    a = keras.ops.convert_to_tensor(np.random.default_rng(0).normal(size=(2048, 2048)).astype("float32"))
    keras.ops.convert_to_numpy(keras.ops.matmul(a, a))
    start, n = time.perf_counter(), 5
    for _ in range(n):
        out = keras.ops.matmul(a, a)
    keras.ops.convert_to_numpy(out)
    return n * 2 * 2048**3 / (time.perf_counter() - start) / 1e9


def _child(config: str) -> None:
    backend, ours_first = CONFIGS[config]
    if ours_first:
        import efficientnet_keras  # noqa: F401  (sets its defaults before Keras starts TensorFlow)
    import keras
    import numpy as np

    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset") if backend == "tensorflow" else "n/a"
    import efficientnet_keras as ek

    print(json.dumps({"config": config, "peak_gflops": _peak_gflops(keras), "onednn": onednn}), flush=True)
    for name in FLAGS.workloads:
        variant, app_name, size, batch, kind = WORKLOADS[name]
        shape = (size, size, 3)
        models = {"keras.applications": getattr(keras.applications, app_name)(weights=None, input_shape=shape),
                  "ours": ek.create_model(variant, weights=None, input_shape=shape)}
        flops = 2 * ek.count_flops(models["ours"]) * (3 if kind == "train" else 1)
        rng = np.random.default_rng(0)
        x = rng.uniform(0, 255, (batch, *shape)).astype("float32")
        y = np.eye(1000, dtype="float32")[rng.integers(0, 1000, batch)]
        steps = {}
        for key, model in models.items():
            if kind == "train":
                model.compile(optimizer=keras.optimizers.SGD(0.01), loss="categorical_crossentropy")
                steps[key] = lambda m=model: m.train_on_batch(x, y)
            else:
                steps[key] = lambda m=model: m.predict_on_batch(x)
            steps[key]()  # trace / compile
            steps[key]()
        rates = _interleaved(steps, batch)
        print(json.dumps({"config": config, "workload": name, "flops": flops, "rates": rates}), flush=True)
    if config == "ours":
        for size in map(int, FLAGS.xla_sizes):
            print(json.dumps({"config": config, "xla_size": size, "rates": _xla_rates(keras, ek, size)}), flush=True)


def _xla_rates(keras, ek, size: int, batch: int = 32) -> dict:
    """Train-step images/s of V2-B0 at ``size`` with XLA off and on (interleaved); what jit_compile=auto is from."""
    import numpy as np

    x = np.random.default_rng(0).uniform(0, 255, (batch, size, size, 3)).astype("float32")
    y = np.eye(10, dtype="float32")[np.arange(batch) % 10]
    steps = {}
    for jit in (False, True):
        model = ek.create_model("EfficientNetV2B0", weights=None, input_shape=(size, size, 3), classes=10)
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss="categorical_crossentropy", jit_compile=jit)
        steps["xla" if jit else "no_xla"] = lambda m=model: m.train_on_batch(x, y)
        for _ in range(2):
            steps["xla" if jit else "no_xla"]()
    return _interleaved(steps, batch)


def _interleaved(steps: dict, batch: int) -> dict[str, list[float]]:
    """Images/s of each step function, repetition by repetition in turn (so drift hits all of them alike)."""
    rates = {key: [] for key in steps}
    for _ in range(FLAGS.repeats):
        for key, step in steps.items():
            start = time.perf_counter()
            for _ in range(FLAGS.steps):
                step()
            rates[key].append(FLAGS.steps * batch / (time.perf_counter() - start))
    return rates


def _run_config(config: str) -> list[dict]:
    backend, _ = CONFIGS[config]
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("TF_ENABLE_ONEDNN_OPTS", None)
    args = [sys.executable, __file__, f"--child={config}", f"--workloads={','.join(FLAGS.workloads)}",
            f"--repeats={FLAGS.repeats}", f"--steps={FLAGS.steps}", f"--xla_sizes={','.join(FLAGS.xla_sizes)}"]
    records = []
    with tempfile.TemporaryFile("w+") as errors:
        with subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=errors, text=True) as child:
            for line in child.stdout:  # streamed: one line of progress per measured workload
                if line.startswith("{"):
                    records.append(json.loads(line))
                    print(f"  {config}: {line.strip()}", flush=True)
        if child.returncode:
            errors.seek(0)
            raise SystemExit(f"configuration {config!r} failed:\n{errors.read()[-3000:]}")
    return records


def _cell(rates: list[float]) -> str:
    return f"{statistics.median(rates):6.1f} ({min(rates):.1f}..{max(rates):.1f})"


def main(argv):
    if FLAGS.child:
        return _child(FLAGS.child)
    unknown = set(FLAGS.workloads) - set(WORKLOADS) | set(FLAGS.configs) - set(CONFIGS)
    if unknown:
        raise SystemExit(f"Unknown workload/configuration: {', '.join(sorted(unknown))}.")
    results, peaks, xla = {}, {}, {}
    for config in FLAGS.configs:
        if not _installed(CONFIGS[config][0]):
            print(f"[{config}: Keras backend {CONFIGS[config][0]!r} not installed, skipped]")
            continue
        for record in _run_config(config):
            if "peak_gflops" in record:
                peaks[config] = record["peak_gflops"]
                print(f"[{config}: backend {CONFIGS[config][0]}, TF_ENABLE_ONEDNN_OPTS at start: {record['onednn']}, "
                      f"float32 matmul peak {record['peak_gflops']:.0f} GFLOP/s]", flush=True)
            elif "xla_size" in record:
                xla[record["xla_size"]] = record["rates"]
            else:
                results[(config, record["workload"])] = record
    print(f"\n{'workload':<11} {'config':<6} {'keras.applications img/s':>25} {'ours img/s':>22} "
          f"{'ours/keras':>10} {'ours GFLOP/s':>12} {'% peak':>6}")
    for name in FLAGS.workloads:
        for config in FLAGS.configs:
            record = results.get((config, name))
            if record is None:
                continue
            ka, ours = record["rates"]["keras.applications"], record["rates"]["ours"]
            ratio = statistics.median(o / k for o, k in zip(ours, ka))
            gflops = statistics.median(ours) * record["flops"] / 1e9
            print(f"{name:<11} {config:<6} {_cell(ka):>25} {_cell(ours):>22} {ratio:>9.2f}x {gflops:>12.1f} "
                  f"{100 * gflops / peaks[config]:>5.0f}%")
    print("\nHeadline (ours in 'ours' vs keras.applications in 'keras', TensorFlow backend):")
    for name in FLAGS.workloads:
        if ("ours", name) in results and ("keras", name) in results:
            ours = statistics.median(results[("ours", name)]["rates"]["ours"])
            base = statistics.median(results[("keras", name)]["rates"]["keras.applications"])
            print(f"  {name:<11} {ours:6.1f} / {base:6.1f} img/s = {ours / base:.2f}x")
    if xla:
        print("\nXLA jit_compile on this machine (ours, V2-B0 train step, batch 32):")
        for size, rates in sorted(xla.items()):
            ratio = statistics.median(j / n for j, n in zip(rates["xla"], rates["no_xla"]))
            print(f"  {size:>4} px: no XLA {_cell(rates['no_xla'])}, XLA {_cell(rates['xla'])} img/s: XLA {ratio:.2f}x")


if __name__ == "__main__":
    app.run(main)
