"""Serving speed, measured in one run with the alternatives interleaved.

    .venv/bin/python benchmarks/serving.py --parts=folding,requests

``folding``: inference images/s of the BatchNorm-folded model against the unfolded one (``--models``,
``--batch_size``), each a compiled ``tf.function`` (what a SavedModel serves); the table gives the median images/s,
the spread (min..max) and the median of per-pair ratios.

``requests``: the exported SavedModel's ``serving_default`` (JPEG bytes in, top-5 out) called with one photo per
request, as a client would, for JPEGs of a typical web size (500x375) and of a 12-megapixel phone (4000x3000),
made from scikit-image's photos; two exports of the same model, with scaled JPEG decoding (the default) and
at full scale (``--nojpeg_scaling``; Lite0's preprocessing then decodes only the crop window), alternate request
by request. It reports requests/s and the p50 / p99 latency.
"""

import os
import statistics
import tempfile
import time

import efficientnet_keras  # noqa: F401  (first: its TensorFlow defaults apply before TensorFlow starts)
import numpy as np
import tensorflow as tf
from absl import app, flags

from efficientnet_keras import create_model, get_variant
from efficientnet_keras.export import export_saved_model, fold_batchnorm, load_servable

flags.DEFINE_list("parts", ["folding", "requests"], "What to measure: folding, requests.")
flags.DEFINE_string("serving_model", "EfficientNetLite0", "For requests: the variant exported (random weights).")
flags.DEFINE_integer("requests", 40, "For requests: timed requests per photo size and export.")
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
    from absl import logging

    logging.set_verbosity(logging.WARNING)  # no absl INFO lines from the SavedModel writer
    if "folding" in FLAGS.parts:
        folding()
    if "requests" in FLAGS.parts:
        requests()


def folding():
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


def _photos(height: int, width: int) -> list[bytes]:
    from skimage import data

    photos = [data.chelsea(), data.coffee(), data.astronaut(), data.rocket()]
    return [tf.io.encode_jpeg(tf.cast(tf.clip_by_value(tf.image.resize(p, (height, width), "bicubic"), 0, 255),
                                      tf.uint8), quality=90).numpy() for p in photos]


def requests():
    servable = load_servable(FLAGS.serving_model, weights=None)
    with tempfile.TemporaryDirectory() as folder:
        signatures = {}
        for name, scaling in (("scaled", True), ("full", False)):
            path = export_saved_model(servable, os.path.join(folder, name), jpeg_scaling=scaling)
            signatures[name] = tf.saved_model.load(path).signatures["serving_default"]
        print(f"\n{FLAGS.serving_model} SavedModel, one JPEG per request, {FLAGS.requests} requests per size and "
              "decoding")
        print(f"{'JPEG':>10} {'decoding':>8} {'requests/s':>11} {'p50 ms':>8} {'p99 ms':>8}")
        for height, width in ((375, 500), (3000, 4000)):
            photos = _photos(height, width)
            latencies = {name: [] for name in signatures}
            for sig in signatures.values():  # warm-up: every op traced and allocated once
                sig(image_bytes=tf.constant(photos[:1]))
            for i in range(FLAGS.requests):
                for name, sig in signatures.items():
                    started = time.perf_counter()
                    sig(image_bytes=tf.constant([photos[i % len(photos)]]))["class_ids"].numpy()
                    latencies[name].append(time.perf_counter() - started)
            for name, times in latencies.items():
                p50, p99 = np.percentile(times, [50, 99]) * 1000
                print(f"{f'{width}x{height}':>10} {name:>8} {len(times) / sum(times):>11.1f} {p50:>8.1f} {p99:>8.1f}")


if __name__ == "__main__":
    app.run(main)
