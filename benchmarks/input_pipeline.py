"""Input pipeline images/s at each progressive stage size, against the model's training images/s, same run.

    .venv/bin/python benchmarks/input_pipeline.py --dataset=digits --model=EfficientNetV2B0 --sizes=32,48,64

Prints one row per size: pipeline img/s, train-step img/s, and their ratio (the pipeline must stay ahead).

Measured on the 2-core development CPU for V2-S's stage sizes (RandAugment 10, mixup 0.2; Fashion-MNIST from
Debian's package, decoded, inception-cropped and resized up from 28 px):

    .venv/bin/python benchmarks/input_pipeline.py --dataset=fashion_mnist --model=EfficientNetV2S \
        --sizes=128,184,240,300 --batch_size=16

     size  pipeline img/s  train img/s   ratio
      128            77.6          7.6  10.20x
      184            36.8          3.7   9.84x
      240            21.3          2.5   8.68x
      300            13.5          1.5   8.94x

Both rates use the whole CPU in turn; during training they share it, so the pipeline takes about 1/9 of it.
"""

import time

import efficientnet_keras as ek  # first: its TensorFlow defaults apply before TensorFlow starts
import keras
import numpy as np
from absl import app, flags

from efficientnet_keras.training import data

flags.DEFINE_string("dataset", "digits", "Dataset name (see efficientnet_keras.training.data.load_source).")
flags.DEFINE_string("model", "EfficientNetV2B0", "Variant whose train step is the consumer.")
flags.DEFINE_list("sizes", ["32", "48", "64"], "Stage image sizes to measure.")
flags.DEFINE_integer("batch_size", 32, "Batch size.")
flags.DEFINE_integer("batches", 12, "Batches timed per measurement (after 2 warm-up batches).")
flags.DEFINE_float("randaug", 10.0, "RandAugment magnitude of the measured stages.")
FLAGS = flags.FLAGS


def pipeline_rate(source, info, size: int) -> float:
    stages = [data.Stage(size, FLAGS.randaug, 0.2, 0.2)]
    state = data.StageState()
    ds = data.make_train_dataset(source, info, stages, state, FLAGS.batch_size).repeat()
    it = iter(ds)
    for _ in range(2):
        next(it)
    start = time.perf_counter()
    for _ in range(FLAGS.batches):
        next(it)
    return FLAGS.batches * FLAGS.batch_size / (time.perf_counter() - start)


def train_rate(info, size: int) -> float:
    model = ek.create_model(FLAGS.model, weights=None, input_shape=(None, None, 3), classes=info.num_classes,
                            classifier_activation=None)
    model.compile(optimizer="adam", loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    x = np.random.uniform(0, 255, (FLAGS.batch_size, size, size, 3)).astype("float32")
    y = np.eye(info.num_classes, dtype="float32")[np.arange(FLAGS.batch_size) % info.num_classes]
    for _ in range(2):
        model.train_on_batch(x, y)
    start = time.perf_counter()
    steps = max(3, FLAGS.batches // 4)
    for _ in range(steps):
        model.train_on_batch(x, y)
    return steps * FLAGS.batch_size / (time.perf_counter() - start)


def main(argv):
    source, _, info = data.load_source(FLAGS.dataset)
    print(f"{'size':>5} {'pipeline img/s':>15} {'train img/s':>12} {'ratio':>7}")
    for size in map(int, FLAGS.sizes):
        p, t = pipeline_rate(source, info, size), train_rate(info, size)
        print(f"{size:>5} {p:>15.1f} {t:>12.1f} {p / t:>6.2f}x")


if __name__ == "__main__":
    app.run(main)
