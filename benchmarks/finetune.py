"""Does the fine-tuning recipe learn? Pretrained EfficientNet-Lite0 on real Fashion-MNIST with ``--recipe=finetune``.

    .venv/bin/python benchmarks/finetune.py --size=64 --batch_size=128 --min_examples=5120000 \
        --model_dir=runs/ft_official      # the official length (86 epochs), resumable

The offline pretrained EfficientNetLite0 with the official ImagenetFt settings (constant rate 0.0005 per 256 after
one warm-up epoch, EMA 0.9996, whole-image resize, flip, Cutout) on the full 60k/10k Fashion-MNIST from Debian's
``dataset-fashion-mnist``: test accuracy and wall time per seed. (From-scratch learning and progressive learning:
``benchmarks/learning.py``.)
"""

import contextlib
import os
import statistics
import tempfile
import time

import efficientnet_keras  # noqa: F401  (first: its TensorFlow defaults apply before TensorFlow starts)
from absl import app, flags

from efficientnet_keras.train import TrainConfig, train

flags.DEFINE_integer("epochs", 2, "Epochs per run.")
flags.DEFINE_integer("batch_size", 64, "Batch size.")
flags.DEFINE_integer("size", 64, "Training and evaluation size (Fashion-MNIST is 28 px, upscaled).")
flags.DEFINE_integer("train_examples", None, "Training examples (default: all 60,000).")
flags.DEFINE_integer("eval_examples", None, "Test examples (default: all 10,000).")
flags.DEFINE_list("seeds", ["0"], "Seeds; each run is repeated per seed.")
flags.DEFINE_integer("min_examples", 0, "The recipe's minimum of training examples (official 5,120,000: 86 epochs of "
                     "Fashion-MNIST, about 9 hours on 2 CPU cores); default 0 trains --epochs.")
flags.DEFINE_string("model_dir", None, "Keep the run here and resume it when it exists (the official length spans "
                    "sessions); default: a temporary folder.")
FLAGS = flags.FLAGS


def _run(seed):
    with contextlib.ExitStack() as stack:
        model_dir = FLAGS.model_dir or stack.enter_context(tempfile.TemporaryDirectory())
        resume = os.path.exists(os.path.join(model_dir, "run_config.json"))
        config = TrainConfig(dataset="fashion_mnist", model="EfficientNetLite0", recipe="finetune", weights="imagenet",
                             model_dir=model_dir, epochs=FLAGS.epochs, batch_size=FLAGS.batch_size,
                             train_examples=FLAGS.train_examples, eval_examples=FLAGS.eval_examples,
                             image_size_max=FLAGS.size, eval_size=FLAGS.size, min_examples=FLAGS.min_examples,
                             seed=seed, verbose=2, resume=resume)
        start = time.perf_counter()
        result = train(config)
        return result["eval"]["accuracy"], time.perf_counter() - start


def main(_):
    runs = [_run(int(seed)) for seed in FLAGS.seeds]
    accuracies = [a for a, _ in runs]
    spread = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
    print(f"Lite0 --recipe=finetune, {FLAGS.epochs} epochs at {FLAGS.size} px: accuracy "
          f"{100 * statistics.mean(accuracies):.2f} ± {100 * spread:.2f} % over {len(runs)} seed(s), wall time "
          f"{statistics.mean(t for _, t in runs):.0f} s")


if __name__ == "__main__":
    app.run(main)
