"""Does the recipe learn? (1) fine-tuning, (2) progressive vs fixed-size from scratch, on real Fashion-MNIST.

    .venv/bin/python benchmarks/learning.py --part=finetune --size=64 --batch_size=128 --min_examples=5120000 \
        --model_dir=/work/ft_official      # the official length (86 epochs), resumable
    .venv/bin/python benchmarks/learning.py --part=scratch --seeds=0,1,2 --train_examples=2000 --sizes=32,64

(1) The offline pretrained EfficientNetLite0 with ``--recipe=finetune`` (official ImagenetFt settings: constant
rate 0.0005 per 256 after one warm-up epoch, EMA 0.9996, whole-image resize, flip, Cutout) on the full 60k/10k
Fashion-MNIST from Debian's ``dataset-fashion-mnist``: test accuracy and wall time.
(2) V2-B0 from scratch (``--recipe=imagenet``) on a subset, progressive (official progression between the two
sizes) vs fixed at the larger size, the same epochs, several seeds: accuracy mean and standard deviation, wall
time. Prints one line per run and a summary; results with the command go to README.
"""

import contextlib
import os
import statistics
import tempfile
import time

import efficientnet_keras  # noqa: F401  (first: its TensorFlow defaults apply before TensorFlow starts)
from absl import app, flags

from efficientnet_keras.train import TrainConfig, train

flags.DEFINE_enum("part", "finetune", ["finetune", "scratch"], "Which experiment.")
flags.DEFINE_integer("epochs", 2, "Epochs per run.")
flags.DEFINE_integer("batch_size", 64, "Batch size.")
flags.DEFINE_integer("size", 64, "finetune: training and evaluation size (Fashion-MNIST is 28 px, upscaled).")
flags.DEFINE_list("sizes", ["32", "64"], "scratch: base and final size (fixed runs train at the final one).")
flags.DEFINE_integer("train_examples", None, "Training examples (default: all 60,000).")
flags.DEFINE_integer("eval_examples", None, "Test examples (default: all 10,000).")
flags.DEFINE_list("seeds", ["0"], "Seeds; each run is repeated per seed.")
flags.DEFINE_integer("min_examples", 0, "finetune: the recipe's minimum of training examples (official 5,120,000: "
                     "86 epochs of Fashion-MNIST, about 9 hours on 2 CPU cores); default 0 trains --epochs.")
flags.DEFINE_string("model_dir", None, "finetune: keep the run here and resume it when it exists (the official "
                    "length spans sessions); default: a temporary folder.")
FLAGS = flags.FLAGS


def _run(**overrides):
    with contextlib.ExitStack() as stack:
        model_dir = FLAGS.model_dir or stack.enter_context(tempfile.TemporaryDirectory())
        resume = os.path.exists(os.path.join(model_dir, "run_config.json"))
        config = TrainConfig(dataset="fashion_mnist", model_dir=model_dir, epochs=FLAGS.epochs,
                             batch_size=FLAGS.batch_size, train_examples=FLAGS.train_examples,
                             eval_examples=FLAGS.eval_examples, verbose=2, resume=resume, **overrides)
        start = time.perf_counter()
        result = train(config)
        return result["eval"]["accuracy"], time.perf_counter() - start


def _summary(name, runs):
    accuracies = [a for a, _ in runs]
    spread = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
    times = [t for _, t in runs]
    print(f"{name}: accuracy {100 * statistics.mean(accuracies):.2f} ± {100 * spread:.2f} % over {len(runs)} "
          f"seed(s) ({', '.join(f'{100 * a:.2f}' for a in accuracies)}), wall time {statistics.mean(times):.0f} s")


def main(_):
    seeds = [int(s) for s in FLAGS.seeds]
    if FLAGS.part == "finetune":
        runs = [_run(model="EfficientNetLite0", recipe="finetune", weights="imagenet", image_size_max=FLAGS.size,
                     min_examples=FLAGS.min_examples,
                     eval_size=FLAGS.size, seed=seed) for seed in seeds]
        _summary(f"Lite0 --recipe=finetune, {FLAGS.epochs} epochs at {FLAGS.size} px", runs)
        return
    lo, hi = (int(s) for s in FLAGS.sizes)
    common = dict(model="EfficientNetV2B0", recipe="imagenet", image_size_min=lo, image_size_max=hi, eval_size=hi)
    results = {"progressive": [], "fixed": []}
    for seed in seeds:
        for name, progressive in (("progressive", True), ("fixed", False)):
            accuracy, seconds = _run(progressive=progressive, seed=seed, **common)
            print(f"{name} seed {seed}: accuracy {100 * accuracy:.2f} %, {seconds:.0f} s", flush=True)
            results[name].append((accuracy, seconds))
    for name, runs in results.items():
        _summary(f"V2-B0 {name} ({lo}->{hi} px)" if name == "progressive" else f"V2-B0 fixed {hi} px", runs)


if __name__ == "__main__":
    app.run(main)
