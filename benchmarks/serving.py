"""Inference images/s of the BatchNorm-folded serving model against the unfolded one, same run, interleaved.

    .venv/bin/python benchmarks/serving.py --models=EfficientNetB0,EfficientNetV2B0,EfficientNetLite0 --batch_size=32

Each model runs as a compiled ``tf.function`` (what a SavedModel serves); repetitions alternate between the two
models, and the table gives the median images/s, the spread (min..max) and the median of per-pair ratios.
"""

import statistics
import time

import efficientnet_keras  # noqa: F401  (first: its TensorFlow defaults apply before TensorFlow starts)
import numpy as np
import tensorflow as tf
from absl import app, flags

from efficientnet_keras import create_model, get_variant
from efficientnet_keras.export import fold_batchnorm

flags.DEFINE_list("models", ["EfficientNetB0", "EfficientNetV2B0", "EfficientNetLite0"], "Variants to measure.")
flags.DEFINE_integer("batch_size", 32, "Images per call.")
flags.DEFINE_integer("image_size", None, "Image size (default: each variant's own resolution).")
flags.DEFINE_integer("repeats", 7, "Interleaved repetitions (the median is reported).")
flags.DEFINE_integer("calls", 3, "Calls timed per repetition.")
FLAGS = flags.FLAGS


def timed(fn, x) -> float:
    start = time.perf_counter()
    for _ in range(FLAGS.calls):
        fn(x).numpy()
    return FLAGS.calls * len(x) / (time.perf_counter() - start)


def main(argv):
    print(f"{'model':<20} {'size':>4} {'unfolded img/s':>20} {'folded img/s':>20} {'speed-up':>9}")
    for name in FLAGS.models:
        size = FLAGS.image_size or get_variant(name).resolution
        model = create_model(name, weights=None)
        folded = fold_batchnorm(model)
        x = tf.constant(np.random.default_rng(0).uniform(0, 255, (FLAGS.batch_size, size, size, 3)), tf.float32)
        fns = {"unfolded": tf.function(lambda t, m=model: m(t, training=False)),
               "folded": tf.function(lambda t, m=folded: m(t, training=False))}
        np.testing.assert_allclose(fns["folded"](x).numpy(), fns["unfolded"](x).numpy(), atol=1e-4)  # and warm-up
        rates = {k: [] for k in fns}
        for _ in range(FLAGS.repeats):
            for k, fn in fns.items():
                rates[k].append(timed(fn, x))
        ratio = statistics.median(f / u for f, u in zip(rates["folded"], rates["unfolded"]))
        cells = [f"{statistics.median(r):7.1f} ({min(r):.1f}..{max(r):.1f})" for r in rates.values()]
        print(f"{name:<20} {size:>4} {cells[0]:>20} {cells[1]:>20} {ratio:>8.2f}x")


if __name__ == "__main__":
    app.run(main)
