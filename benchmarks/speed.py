"""Images/s of our models against keras.applications: inference and training steps, per Keras backend, one command.

    .venv/bin/python benchmarks/speed.py                       # every workload, every installed backend
    .venv/bin/python benchmarks/speed.py --workloads=v2s_train --configs=keras,ours --repeats=7

Each configuration is its own process (a process fixes its Keras backend and TensorFlow's oneDNN switch when it
imports them):

- ``keras``: TensorFlow backend as a keras.applications user gets it (Keras imported first: TensorFlow's own
  oneDNN default, off on CPUs without AVX-512). The baseline of every ratio.
- ``ours``: TensorFlow backend as an ``efficientnet_keras`` user gets it (the package imported first: oneDNN on).
- ``torch`` / ``jax``: the Keras backend of that name, where installed.
- ``timm``: PyTorch eager with timm's model of the same network (``tf_efficientnet*``: TensorFlow's padding, as
  ours), in PyTorch's default NCHW layout and in channels_last, where timm is installed
  (``pip install --no-deps timm==1.0.31``). The PyTorch reference the issue set its targets by.

All processes hold their models at once and take turns: repetition r runs keras.applications and our model in
``keras``, then in ``ours``, then in ``torch``..., while the others wait idle. So every number of a table row is
measured interleaved with every other, and the machine's drift hits them alike. Cells are the median and
min..max of ``--repeats``; ratios are medians of per-repetition ratios against keras.applications in the
``--baseline`` configuration (``keras``; on a GPU machine without TensorFlow, e.g. ``jax``).
FLOPs are the papers' multiply-adds x 2 (a training step: x 3, the forward and two backward products); the
machine's peak is a float32 matmul (2048^2 on CPU, 8192^2 on a GPU) measured in each process. Models and data go
on the backend's default device: on a GPU machine, the GPU (``--batch_multiplier`` fills it).
The XLA rows (``--xla_sizes``) time our V2-B0 train step with ``jit_compile`` off and on, in ``ours``.
The stage rows (``--stage_sizes``) time our V2-S train step at progressive learning's image sizes (the paper's
128 -> 300 px in 4 stages, the batch fixed) in ``--stage_config``: the cost of an image at each size against the
last stage's, and so the time of a progressive run with equal stages against a fixed run at the largest size.
Where compute dominates, the cost follows the pixels; where per-op overhead does, it stays flat.

Measured 2026-11-24 (raw outputs in ``benchmarks/results/``; docs/benchmarks.md has the tables):

- 2-core AVX2 CPU, ``--configs=keras,ours,timm --xla_sizes=``: train steps ours 1.34x / 1.36x / 1.53x
  (V2-S / V2-B0 / B0) against keras.applications; timm channels_last 1.38x / 1.42x / 1.49x, NCHW 1.28x / 1.24x /
  1.18x. Inference ours 1.12-1.50x, BN-folded 1.23-1.84x; timm 0.87-1.14x.
- One H100, no TensorFlow there: ``--configs=jax,torch,timm --baseline=jax --batch_multiplier=8 --steps=20``:
  ours under JAX 0.93-1.06x keras.applications (the same XLA program); timm trains at 0.73-1.05x and infers at
  1.5-2.7x; Keras' torch backend 0.13-0.18x. Stage rows (``--stage_config=jax``): 128/184/240/300 px cost
  0.39/0.46/0.67/1.00 of a 300 px image: a 4-stage run takes 0.63x a fixed run's time per epoch.
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

# name: (variant = keras.applications constructor, image size, batch, "infer" | "train")
WORKLOADS = {
    "b0_infer": ("EfficientNetB0", 224, 32, "infer"),
    "v2b0_infer": ("EfficientNetV2B0", 224, 32, "infer"),
    "v2s_infer": ("EfficientNetV2S", 224, 16, "infer"),
    "b0_train": ("EfficientNetB0", 128, 32, "train"),
    "v2b0_train": ("EfficientNetV2B0", 128, 32, "train"),
    "v2s_train": ("EfficientNetV2S", 128, 16, "train"),
}
CONFIGS = {  # name: (KERAS_BACKEND, import efficientnet_keras before keras)
    "keras": ("tensorflow", False),
    "ours": ("tensorflow", True),
    "torch": ("torch", True),
    "jax": ("jax", True),
    "timm": ("torch", True),
}
TIMM_MODELS = {"EfficientNetB0": "tf_efficientnet_b0", "EfficientNetV2B0": "tf_efficientnetv2_b0",
               "EfficientNetV2S": "tf_efficientnetv2_s"}

flags.DEFINE_list("workloads", list(WORKLOADS), f"Workloads: {', '.join(WORKLOADS)}.")
flags.DEFINE_list("configs", list(CONFIGS), "Configurations (those whose backend is not installed are skipped).")
flags.DEFINE_integer("repeats", 5, "Interleaved repetitions per model (median and spread are reported).")
flags.DEFINE_integer("steps", 2, "Steps (calls) timed per repetition.")
flags.DEFINE_string("baseline", "keras", "Configuration whose keras.applications model is every ratio's baseline.")
flags.DEFINE_integer("batch_multiplier", 1, "Multiplies every workload's batch (an accelerator needs larger ones).")
flags.DEFINE_list("xla_sizes", ["32", "64", "128"], "V2-B0 train-step sizes (batch 32) timed with and without XLA "
                  "jit_compile in 'ours' (empty: skip).")
flags.DEFINE_list("stage_sizes", ["128", "184", "240", "300"], "V2-S train-step image sizes (batch 16 x "
                  "--batch_multiplier) timed in --stage_config (empty: skip).")
flags.DEFINE_string("stage_config", "ours", "Configuration of the stage rows.")
flags.DEFINE_bool("child", False, "Internal: serve one configuration's measurements over stdin/stdout.")
flags.DEFINE_string("config", None, "Internal: the child's configuration.")
FLAGS = flags.FLAGS


def _installed(config: str) -> bool:
    import importlib.util

    backend = CONFIGS[config][0]
    needs = [backend] + (["timm"] if config == "timm" else [])
    return backend == "tensorflow" or all(importlib.util.find_spec(name) is not None for name in needs)


# ---- child: one configuration, commands on stdin, JSON on stdout --------------------------------------------------

def _peak_gflops(keras, accelerator: bool) -> float:
    """float32 matmul GFLOP/s of this process's backend, best of 7: the practical peak of the machine."""
    import numpy as np

    n, chained = (8192, 10) if accelerator else (2048, 1)  # a GPU needs work enough to hide the launch and copy
    a = keras.ops.convert_to_tensor(np.random.default_rng(0).normal(size=(n, n)).astype("float32") / n**0.5)
    best = 0.0
    for _ in range(7):
        start = time.perf_counter()
        b = a
        for _ in range(chained):
            b = keras.ops.matmul(b, a)
        keras.ops.convert_to_numpy(b[0, 0])
        best = max(best, chained * 2 * n**3 / (time.perf_counter() - start) / 1e9)
    return best


def _on_accelerator(keras) -> bool:
    """Whether this process's Keras backend puts tensors on a GPU/TPU by default."""
    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    if backend == "jax":
        import jax

        return jax.default_backend() != "cpu"
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))


def _import_timm():
    """timm, importable without torchvision.

    timm's modules import torchvision at import time for data transforms and FX helpers that its EfficientNets
    never call. PyPI's torchvision wheel is a CUDA build that fails to import on a CPU-only machine (ours), so when
    torchvision does not import, placeholder modules stand in for it: every name they hand out is an inert class,
    and ``InterpolationMode`` is an enum because timm builds dictionaries keyed by its members."""
    try:
        import torchvision  # noqa: F401
    except Exception:  # missing, or the CUDA wheel failing on a CPU machine
        import enum
        import importlib.abc
        import importlib.util

        class Placeholder:
            def __init__(self, *args, **kwargs):
                pass

        interpolation = enum.Enum("InterpolationMode", {name: name.lower() for name in
                                                        "NEAREST NEAREST_EXACT BILINEAR BICUBIC BOX HAMMING LANCZOS".split()})

        def attribute(name):
            if name.startswith("__"):
                raise AttributeError(name)
            return interpolation if name == "InterpolationMode" else Placeholder

        class StandIn(importlib.abc.MetaPathFinder, importlib.abc.Loader):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "torchvision":
                    return importlib.util.spec_from_loader(name, self, is_package=True)
                return None

            def create_module(self, spec):
                return None

            def exec_module(self, module):
                module.__getattr__ = attribute

        for name in [m for m in sys.modules if m.split(".")[0] == "torchvision"]:
            del sys.modules[name]
        sys.meta_path.insert(0, StandIn())
    import timm

    return timm


def _timm_steps(variant: str, kind: str, x, labels) -> dict:
    """timm's model of ``variant`` in PyTorch eager, NCHW and channels_last: a step = forward (+ backward + SGD)."""
    import torch

    timm = _import_timm()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    finish = torch.cuda.synchronize if device == "cuda" else (lambda: None)  # a GPU step ends when its kernels do
    x = torch.as_tensor(x, device=device).permute(0, 3, 1, 2).contiguous()
    labels = torch.as_tensor(labels, device=device)
    steps = {}
    for layout in ("NCHW", "channels_last"):
        model = timm.create_model(TIMM_MODELS[variant], pretrained=False, num_classes=1000).to(device)
        inputs = x
        if layout == "channels_last":
            model = model.to(memory_format=torch.channels_last)
            inputs = x.contiguous(memory_format=torch.channels_last)
        if kind == "train":
            optimizer = torch.optim.SGD(model.parameters(), lr=0.01)

            def step(model=model, inputs=inputs, optimizer=optimizer):
                optimizer.zero_grad(set_to_none=True)
                torch.nn.functional.cross_entropy(model(inputs), labels).backward()
                optimizer.step()
                finish()
        else:
            model.eval()

            def step(model=model, inputs=inputs):
                with torch.inference_mode():
                    model(inputs)
                finish()
        steps[f"timm {layout}"] = step
    return steps


def _setup(keras, ek, task: dict, config: str) -> tuple[dict, int, int]:
    """Step functions (already traced and warmed up) of one task, its batch size and FLOPs per image."""
    import numpy as np

    rng = np.random.default_rng(0)
    if "xla_size" in task:
        size, batch, classes = task["xla_size"], 32 * FLAGS.batch_multiplier, 10
        models = {}
        for jit in (False, True):
            model = ek.create_model("EfficientNetV2B0", weights=None, input_shape=(size, size, 3), classes=10)
            model.compile(optimizer=keras.optimizers.SGD(0.01), loss="categorical_crossentropy", jit_compile=jit)
            models["xla" if jit else "no_xla"] = model
        kind, flops = "train", 0
    elif "stage_size" in task:
        size, batch, classes = task["stage_size"], 16 * FLAGS.batch_multiplier, 1000
        model = ek.create_model("EfficientNetV2S", weights=None, input_shape=(size, size, 3))
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss="categorical_crossentropy")
        models, kind, flops = {"ours": model}, "train", 6 * ek.count_flops(model)
    else:
        variant, size, batch, kind = WORKLOADS[task["workload"]]
        batch *= FLAGS.batch_multiplier
        classes = 1000
        shape = (size, size, 3)
        ours = ek.create_model(variant, weights=None, input_shape=shape)
        flops = 2 * ek.count_flops(ours) * (3 if kind == "train" else 1)
        models = None  # timm builds its own, below
        if config != "timm":
            models = {"keras.applications": getattr(keras.applications, variant)(weights=None, input_shape=shape),
                      "ours": ours}
            if kind == "infer" and keras.backend.backend() == "tensorflow":
                from efficientnet_keras.export import fold_batchnorm

                models["ours, BN folded"] = fold_batchnorm(models["ours"])
            if kind == "train":
                for model in models.values():
                    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="categorical_crossentropy")
    x = rng.uniform(0, 255, (batch, size, size, 3)).astype("float32")
    labels = rng.integers(0, classes, batch)
    if models is None:
        steps = _timm_steps(variant, kind, x, labels)
    else:
        y = np.eye(classes, dtype="float32")[labels]
        steps = {key: (lambda m=m: m.train_on_batch(x, y)) if kind == "train" else (lambda m=m: m.predict_on_batch(x))
                 for key, m in models.items()}
    for step in steps.values():
        step()  # trace / compile
        step()
    return steps, batch, flops


def _child() -> None:
    backend, ours_first = CONFIGS[FLAGS.config]
    if ours_first:
        import efficientnet_keras  # noqa: F401  (sets its defaults before Keras starts TensorFlow)
    import keras

    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset") if backend == "tensorflow" else "n/a"
    import efficientnet_keras as ek

    accelerator = _on_accelerator(keras)
    _reply({"peak_gflops": _peak_gflops(keras, accelerator), "onednn": onednn, "accelerator": accelerator})
    steps, batch = {}, 0
    for line in sys.stdin:
        task = json.loads(line)
        if task["op"] == "setup":
            steps = {}  # release the previous task's models before building the next
            steps, batch, flops = _setup(keras, ek, task, FLAGS.config)
            _reply({"flops": flops})
        else:  # one repetition: each model in turn
            rates = {}
            for key, step in steps.items():
                start = time.perf_counter()
                for _ in range(FLAGS.steps):
                    step()
                rates[key] = FLAGS.steps * batch / (time.perf_counter() - start)
            _reply({"rates": rates})


def _reply(record: dict) -> None:
    print(json.dumps(record), flush=True)


# ---- parent: start the configurations, make them take turns, print the table ------------------------------------

class _Config:
    def __init__(self, name: str):
        self.name = name
        env = {**os.environ, "KERAS_BACKEND": CONFIGS[name][0], "TF_CPP_MIN_LOG_LEVEL": "3"}
        env.pop("TF_ENABLE_ONEDNN_OPTS", None)
        self.errors = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen([sys.executable, __file__, "--child", f"--config={name}", f"--steps={FLAGS.steps}",
                                      f"--batch_multiplier={FLAGS.batch_multiplier}"],
                                     env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.errors,
                                     text=True)
        self.info = self.read()

    def ask(self, task: dict) -> dict:
        self.proc.stdin.write(json.dumps(task) + "\n")
        self.proc.stdin.flush()
        return self.read()

    def read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self.errors.seek(0)
            raise SystemExit(f"configuration {self.name!r} failed:\n{self.errors.read()[-3000:]}")
        return json.loads(line)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def _measure(configs: list[_Config], task: dict) -> tuple[dict, dict]:
    """Per config: FLOPs and {model: [images/s per repetition]}, the configs taking turns each repetition."""
    flops = {c.name: c.ask({"op": "setup", **task})["flops"] for c in configs}
    rates = {c.name: {} for c in configs}
    for _ in range(FLAGS.repeats):
        for c in configs:
            for key, rate in c.ask({"op": "run"})["rates"].items():
                rates[c.name].setdefault(key, []).append(rate)
    return flops, rates


def _cell(rates: list[float]) -> str:
    return f"{statistics.median(rates):.1f} ({min(rates):.1f}..{max(rates):.1f})"


def _ratio(rates: list[float], base: list[float]) -> str:
    return f"{statistics.median(r / b for r, b in zip(rates, base)):.2f}x"


def main(argv):
    if FLAGS.child:
        return _child()
    unknown = (set(FLAGS.workloads) - set(WORKLOADS)) | (set(FLAGS.configs) - set(CONFIGS))
    if unknown:
        raise SystemExit(f"Unknown workload/configuration: {', '.join(sorted(unknown))}.")
    if FLAGS.baseline not in FLAGS.configs or FLAGS.baseline == "timm":
        raise SystemExit(f"--baseline={FLAGS.baseline} must be one of --configs with keras.applications models "
                         f"({', '.join(c for c in FLAGS.configs if c != 'timm')}).")
    configs = []
    for name in FLAGS.configs:
        if not _installed(name):
            print(f"[{name}: {'timm or ' if name == 'timm' else ''}Keras backend {CONFIGS[name][0]!r} not installed, "
                  "skipped]")
            continue
        configs.append(_Config(name))
        info = configs[-1].info
        print(f"[{name}: backend {CONFIGS[name][0]}, {'GPU/TPU' if info['accelerator'] else 'CPU'}, "
              f"TF_ENABLE_ONEDNN_OPTS when TensorFlow started: {info['onednn']}, "
              f"float32 matmul {info['peak_gflops']:.0f} GFLOP/s]", flush=True)
    peaks = {c.name: c.info["peak_gflops"] for c in configs}
    print(f"\n{'workload':<11} {'config':<6} {'model':<20} {'images/s':>20} {'vs keras.applications':>22} "
          f"{'GFLOP/s':>8} {'% peak':>6}", flush=True)
    for workload in FLAGS.workloads:
        flops, rates = _measure(configs, {"workload": workload})
        base = rates.get(FLAGS.baseline, {}).get("keras.applications")
        for config, by_model in rates.items():
            for model, r in by_model.items():
                gflops = statistics.median(r) * flops[config] / 1e9
                print(f"{workload:<11} {config:<6} {model:<20} {_cell(r):>20} {_ratio(r, base) if base else '':>22} "
                      f"{gflops:>8.1f} {100 * gflops / peaks[config]:>5.0f}%", flush=True)
    ours = [c for c in configs if c.name == "ours"]
    if ours and FLAGS.xla_sizes:
        print("\nXLA jit_compile, our V2-B0 train step (batch 32), in 'ours':")
        for size in map(int, FLAGS.xla_sizes):
            _, rates = _measure(ours, {"xla_size": size})
            r = rates["ours"]
            print(f"  {size:>4} px: without {_cell(r['no_xla'])}, with {_cell(r['xla'])} images/s: "
                  f"XLA {_ratio(r['xla'], r['no_xla'])}", flush=True)
    staged = [c for c in configs if c.name == FLAGS.stage_config]
    if staged and FLAGS.stage_sizes:
        sizes = sorted(map(int, FLAGS.stage_sizes))
        print(f"\nOur V2-S train step (batch {16 * FLAGS.batch_multiplier}) at progressive learning's image sizes, in "
              f"'{FLAGS.stage_config}':")
        measured = {}
        for size in sizes:
            flops, rates = _measure(staged, {"stage_size": size})
            measured[size] = (rates[FLAGS.stage_config]["ours"], flops[FLAGS.stage_config])
        costs = {size: 1 / statistics.median(r) for size, (r, _) in measured.items()}  # seconds per image
        for size, (r, flops) in measured.items():
            print(f"  {size:>4} px: {_cell(r)} images/s, {statistics.median(r) * flops / 1e9:.1f} GFLOP/s; cost per "
                  f"image {costs[size] / costs[sizes[-1]]:.2f}x the {sizes[-1]} px one (pixels: "
                  f"{(size / sizes[-1]) ** 2:.2f}x)", flush=True)
        pixels = statistics.mean((size / sizes[-1]) ** 2 for size in sizes)
        print(f"  a progressive run with one equal stage per size takes {statistics.mean(costs.values()) / costs[sizes[-1]]:.2f}x "
              f"the time of a fixed run at {sizes[-1]} px (if cost followed pixels: {pixels:.2f}x)", flush=True)
    for c in configs:
        c.close()


if __name__ == "__main__":
    app.run(main)
