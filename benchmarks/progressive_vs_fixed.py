"""Progressive learning vs fixed max-size training: wall time to the same accuracy, as a ratio (paper sec. 4).

    .venv/bin/python benchmarks/progressive_vs_fixed.py --dataset=fashion_mnist --train_examples=6000 \
        --sizes=64,128 --epochs=8

Fashion-MNIST (28 px) is upscaled to the stage sizes; the paper's claim is about compute, so sizes should be
large enough that compute, not per-op overhead, dominates a step (on a 2-core CPU: 64 px and up).

Measured on the 2-core development CPU with the command above but 1000 training / 500 eval examples and 6 epochs:
fixed 128 px 547 s (eval accuracy 42.2%), progressive 64->128 px 530 s (25.8%), so no ratio: each of the three
stage switches re-traces the train step (about 50 s), and 64 px costs half of 128 px per epoch, not a quarter.
The comparison needs tens of epochs to show the paper's effect.
"""

import os
import tempfile
import time

import efficientnet_keras  # noqa: F401  (first: its TensorFlow defaults apply before TensorFlow starts)
import keras
from absl import app, flags

from efficientnet_keras.train import TrainConfig, train

flags.DEFINE_string("dataset", "fashion_mnist", "Dataset.")
flags.DEFINE_string("model", "EfficientNetV2B0", "Variant.")
flags.DEFINE_integer("train_examples", 6000, "Training examples used.")
flags.DEFINE_integer("eval_examples", 2000, "Evaluation examples used.")
flags.DEFINE_list("sizes", ["64", "128"], "min,max image size (fixed training uses max).")
flags.DEFINE_integer("epochs", 8, "Epochs for both runs.")
flags.DEFINE_integer("batch_size", 32, "Batch size.")
FLAGS = flags.FLAGS


class Clock(keras.callbacks.Callback):
    """Wall time at the end of each epoch."""

    def on_train_begin(self, logs=None):
        self.start, self.times = time.perf_counter(), []

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.start)


def run(progressive: bool, folder: str):
    lo, hi = map(int, FLAGS.sizes)
    config = TrainConfig(model=FLAGS.model, dataset=FLAGS.dataset, model_dir=folder, epochs=FLAGS.epochs,
                         batch_size=FLAGS.batch_size, progressive=progressive, image_size_min=lo, image_size_max=hi,
                         eval_size=hi, train_examples=FLAGS.train_examples, eval_examples=FLAGS.eval_examples,
                         optimizer="adamw", learning_rate_per_256=0.008, bn_momentum=0.9, ema_decay=0.0,
                         randaug_max=5, verbose=2)
    clock = Clock()
    result = train(config, callbacks=[clock])
    return clock.times, result["history"]["val_accuracy"]


def main(argv):
    with tempfile.TemporaryDirectory() as tmp:
        fixed_times, fixed_acc = run(False, os.path.join(tmp, "fixed"))
        prog_times, prog_acc = run(True, os.path.join(tmp, "progressive"))
    target = fixed_acc[-1]
    reached = next((i for i, a in enumerate(prog_acc) if a >= target), None)
    print(f"fixed {FLAGS.sizes[1]} px: {fixed_times[-1]:.0f} s, final accuracy {target:.4f}")
    print(f"progressive {FLAGS.sizes[0]}->{FLAGS.sizes[1]} px: {prog_times[-1]:.0f} s, final accuracy "
          f"{prog_acc[-1]:.4f}")
    if reached is None:
        print("progressive did not reach the fixed run's final accuracy: ratio n/a")
    else:
        print(f"progressive reached it after epoch {reached + 1}, {prog_times[reached]:.0f} s: "
              f"time ratio progressive/fixed = {prog_times[reached] / fixed_times[-1]:.2f}")


if __name__ == "__main__":
    app.run(main)
