"""Does the recipe learn from scratch, and does progressive learning hold the paper's claim? (Tables 7-8, small.)

    nice -n 10 .venv/bin/python benchmarks/learning.py --out=benchmarks/results/learning_cpu.jsonl

Three arms from random weights on real Fashion-MNIST (Debian's ``dataset-fashion-mnist``), each over several seeds:

- ``fixed``: one size, the final one, with the final stage's regularization (the paper's baseline);
- ``progressive``: progressive learning with adaptive regularization (paper progression: sizes 32 -> 64 px in
  4 stages; mixup 0 -> 0.2 and dropout 0.1 -> 0.2 growing with the size);
- ``progressive_fixed_reg``: the same sizes with every stage regularized as the last (the paper's "w/o adaptive").

No RandAugment: its official magnitudes are in pixels, sized for 224-600 px photos (a magnitude-9 translation
moves the image 90 px, Cutout blanks a 72 px square), so on 32-64 px images every op at a useful magnitude erases
the garment; a first attempt with RandAugment 5 -> 9 reached 76% in the fixed arm.

Network: a narrow EfficientNetV2 from block strings (Fused-MBConv 16-32-48, MBConv-SE 96; stride 16, so a 32 px
image still ends on a 2x2 map), small enough that a run fits minutes on 2 CPU cores. Schedule sized to the run:
AdamW (peak 0.004 per 256 images), cosine over the run after half an epoch of warm-up, decoupled weight decay
0.05, EMA 0.999, label smoothing 0.1, stochastic depth 0.2: in short probes the imagenet recipe's RMSProp at 0.016
per 256 learned more slowly from scratch at this batch. Test accuracy is on the whole 10,000-image test split.

Each finished run is one JSON line in ``--out`` (the raw log); a killed benchmark resumes: finished runs are
skipped, the interrupted one continues from its last finished epoch (its run folder under ``--work_dir``). Time per
run is the sum of its epochs' wall time (a resumed run counts the epochs it kept once) and of their process CPU
time, which other jobs on the machine disturb less. ``--summary`` prints the table from ``--out`` alone.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import time

import efficientnet_keras  # noqa: F401  (first: its TensorFlow defaults apply before TensorFlow starts)
import keras
from absl import app, flags

from efficientnet_keras.train import TrainConfig, train

BLOCKS = ("r1_k3_s1_e1_i16_o16_c1,r2_k3_s2_e4_i16_o32_c1,r2_k3_s2_e4_i32_o48_c1,"
          "r3_k3_s2_e4_i48_o96_se0.25")
ARMS = ("fixed", "progressive", "progressive_fixed_reg")
FINAL_DROPOUT = 0.2  # the last stage's top dropout (paper progression: 0.1 -> the variant's 0.2)

flags.DEFINE_list("arms", list(ARMS), "Arms to run.")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds; every arm runs once per seed (seed-major order).")
flags.DEFINE_integer("epochs", 6, "Epochs per run.")
flags.DEFINE_integer("train_examples", 30000, "Training examples (the first N of the 60,000).")
flags.DEFINE_integer("batch_size", 128, "Batch size.")
flags.DEFINE_list("sizes", ["32", "64"], "First and final image size (fixed runs train at the final one).")
flags.DEFINE_string("out", "benchmarks/results/learning_cpu.jsonl", "Raw log: one JSON line per finished run.")
flags.DEFINE_string("work_dir", "/tmp/efficientnet_keras_learning", "Run folders (resume state).")
flags.DEFINE_bool("summary", False, "Only print the summary of --out.")
FLAGS = flags.FLAGS


class EpochClock(keras.callbacks.Callback):
    """Wall and process CPU seconds of every finished epoch, kept in the run folder (survives a resume)."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path
        self.epochs = json.load(open(path)) if os.path.exists(path) else {}

    @staticmethod
    def _cpu():
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    def on_epoch_begin(self, epoch, logs=None):
        self.start = (time.perf_counter(), self._cpu())

    def on_epoch_end(self, epoch, logs=None):
        self.epochs[str(epoch)] = [time.perf_counter() - self.start[0], self._cpu() - self.start[1]]
        with open(self.path, "w") as f:
            json.dump(self.epochs, f)


def _config(arm: str, seed: int, model_dir: str) -> TrainConfig:
    lo, hi = (int(s) for s in FLAGS.sizes)
    common = dict(model="EfficientNetV2B0", blocks=BLOCKS, dataset="fashion_mnist", model_dir=model_dir,
                  epochs=FLAGS.epochs, batch_size=FLAGS.batch_size, train_examples=FLAGS.train_examples,
                  eval_every=FLAGS.epochs, seed=seed, verbose=2, recipe="imagenet", optimizer="adamw",
                  learning_rate_per_256=0.004, lr_schedule="cosine", warmup_epochs=0.5, weight_decay=0.05,
                  ema_decay=0.999, augment="none", mixup_max=0.2, cutmix_max=0.0, dropout=None,
                  progression="paper", image_size_max=hi, eval_size=hi, num_stages=4,
                  resume=os.path.exists(os.path.join(model_dir, "run_config.json")))
    if arm == "fixed":  # the final stage's regularization at the final size
        return TrainConfig(progressive=False, **{**common, "dropout": FINAL_DROPOUT})
    return TrainConfig(progressive=True, image_size_min=lo, adaptive_regularization=arm == "progressive", **common)


def _finished(path: str) -> dict:
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return {(r["arm"], r["seed"]): r for r in rows}


def _run(arm: str, seed: int) -> dict:
    model_dir = os.path.join(FLAGS.work_dir, f"{arm}_seed{seed}")
    clock = EpochClock(os.path.join(FLAGS.work_dir, f"{arm}_seed{seed}.epochs.json"))
    config = _config(arm, seed, model_dir)
    result = train(config, callbacks=[clock])
    times = [clock.epochs[str(e)] for e in range(FLAGS.epochs)]
    return {"arm": arm, "seed": seed, "test_accuracy": result["eval"]["accuracy"],
            "test_images": 10000, "train_examples": FLAGS.train_examples, "epochs": FLAGS.epochs,
            "wall_s": sum(t[0] for t in times), "cpu_s": sum(t[1] for t in times),
            "epoch_wall_s": [round(t[0], 1) for t in times],
            "stages": [[s["image_size"], s["randaug_magnitude"], s["mixup_alpha"], s["dropout"]]
                       for s in result["stages"]],
            "config": {k: v for k, v in vars(config).items() if k not in ("model_dir", "resume")}}


def summary(rows: dict) -> str:
    lines = ["arm                    accuracy (%)          wall s            cpu s      runs"]
    base = None
    for arm in ARMS:
        runs = [r for (a, _), r in sorted(rows.items()) if a == arm]
        if not runs:
            continue
        acc = [100 * r["test_accuracy"] for r in runs]
        wall = [r["wall_s"] for r in runs]
        cpu = [r["cpu_s"] for r in runs]
        spread = statistics.stdev(acc) if len(acc) > 1 else 0.0
        base = base or (statistics.mean(wall), statistics.mean(cpu))
        lines.append(f"{arm:22} {statistics.mean(acc):6.2f} ± {spread:4.2f}   "
                     f"{statistics.mean(wall):7.0f} ({statistics.mean(wall) / base[0]:.2f}x)   "
                     f"{statistics.mean(cpu):7.0f} ({statistics.mean(cpu) / base[1]:.2f}x)   {len(runs)}: "
                     + ", ".join(f"{a:.2f}" for a in acc))
    return "\n".join(lines)


def main(_):
    if not FLAGS.summary:
        os.makedirs(FLAGS.work_dir, exist_ok=True)
        os.makedirs(os.path.dirname(FLAGS.out) or ".", exist_ok=True)
        for seed in (int(s) for s in FLAGS.seeds):
            for arm in FLAGS.arms:
                if (arm, seed) in _finished(FLAGS.out):
                    continue
                row = _run(arm, seed)
                print(f"{arm} seed {seed}: test accuracy {100 * row['test_accuracy']:.2f} % on 10,000 images, "
                      f"{row['wall_s']:.0f} s wall, {row['cpu_s']:.0f} s CPU", flush=True)
                with open(FLAGS.out, "a") as f:
                    f.write(json.dumps(row) + "\n")
    print(f"Fashion-MNIST from scratch: {FLAGS.train_examples:,} training images, {FLAGS.epochs} epochs, "
          f"sizes {FLAGS.sizes[0]}->{FLAGS.sizes[1]} px; ratios against the fixed arm")
    print(summary(_finished(FLAGS.out)))


if __name__ == "__main__":
    app.run(main)
