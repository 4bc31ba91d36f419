"""The input pipeline at ImageNet scale: a tfds dataset of 20,000 ImageNet-sized JPEGs read from its TFRecord
shards, as the trainer reads imagenet2012. Prints, in one run:

- peak RSS growth over two epochs of the input pipeline alone (flat memory: nothing decoded is cached, and the
  split is larger than --cache_limit_mb, so it streams);
- pipeline images/s at each progressive stage size (V2-S: 128/184/240/300 px, RandAugment and mixup on), with
  V2-S's own preprocessing (the official V2 code's: each JPEG decoded whole, then cropped) and with the V1 one
  (only the crop window decoded), against our V2-S train step's images/s at the same size, and their ratio;
- fused decode-and-crop (``decode_and_crop_jpeg``) against decode-then-crop of the same window, images/s.

    .venv/bin/python benchmarks/imagenet_pipeline.py                    # writes the dataset first (minutes)
    .venv/bin/python benchmarks/imagenet_pipeline.py --data_dir=/tmp/ek_bench_tfds --images=20000

The images are random crops of scikit-image's photos, resized to about 500x375 and saved as JPEG (quality 90), so
that decoding costs what ImageNet's does. Results are in docs/benchmarks.md.
"""

import subprocess
import sys
import time

import efficientnet_keras as ek  # first: its TensorFlow defaults apply before TensorFlow starts
import keras
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from absl import app, flags

from efficientnet_keras.training import data
from efficientnet_keras.transforms import LEGACY_V1, OFFICIAL_V2

flags.DEFINE_string("data_dir", "/tmp/ek_bench_tfds", "Where the benchmark dataset is (written if missing).")
flags.DEFINE_integer("images", 20_000, "Training images in the dataset.")
flags.DEFINE_list("sizes", ["128", "184", "240", "300"], "Stage image sizes (V2-S's progressive stages).")
flags.DEFINE_integer("batch_size", 16, "Batch size of the pipeline and the train step.")
flags.DEFINE_integer("batches", 40, "Pipeline batches timed per size (after 3 warm-up batches).")
flags.DEFINE_integer("train_steps", 3, "Train steps timed per size (after 2 warm-up steps).")
flags.DEFINE_float("cache_limit_mb", 64, "The trainer's cache rule: this dataset is larger, so it streams.")
flags.DEFINE_integer("shuffle_buffer", 2048, "The trainer's --shuffle_buffer (encoded examples per window).")
flags.DEFINE_bool("memory_only", False, "Measure the two epochs' memory only.")
flags.DEFINE_bool("generate_only", False, "Write the dataset and exit (run in its own process).")
FLAGS = flags.FLAGS


class BenchPhotos(tfds.core.GeneratorBasedBuilder):
    """ImageNet-like JPEGs (about 500x375, quality 90) cut from scikit-image's photos, 1000 classes."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(encoding_format="jpeg"), "label": tfds.features.ClassLabel(num_classes=1000)}),
            supervised_keys=("image", "label"))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(FLAGS.images, 0), "validation": self._generate_examples(500, 1)}

    def _generate_examples(self, n, seed):
        from PIL import Image
        from skimage import data as photos

        sources = [photos.chelsea(), photos.coffee(), photos.astronaut(), photos.rocket(), photos.hubble_deep_field()]
        rng = np.random.default_rng(seed)
        for i in range(n):
            photo = sources[i % len(sources)]
            h, w = photo.shape[:2]
            top, left = rng.integers(0, h // 4), rng.integers(0, w // 4)
            crop = Image.fromarray(photo[top: top + 3 * h // 4, left: left + 3 * w // 4])
            size = (500, 375) if i % 3 else (375, 500)
            yield i, {"image": np.asarray(crop.resize(size)), "label": int(rng.integers(0, 1000))}


def _rss_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field)) / 1024


def _stages(size):
    return [data.Stage(size, 10.0, 0.2, 0.2)]


def memory_over_two_epochs(split, info) -> tuple[float, float, int]:
    state = data.StageState()
    ds = data.make_train_dataset(split, info, _stages(int(FLAGS.sizes[0])), state, FLAGS.batch_size,
                                 cache_limit_mb=FLAGS.cache_limit_mb, shuffle_buffer=FLAGS.shuffle_buffer)
    before, seen, start = _rss_mb("VmRSS"), 0, time.perf_counter()
    for epoch in range(2):
        state.set(0, epoch)
        for images, _ in ds:
            seen += int(images.shape[0])
    return _rss_mb("VmHWM") - before, time.perf_counter() - start, seen


def pipeline_rate(split, info, size: int, preprocessing) -> float:
    ds = data.make_train_dataset(split, info, _stages(size), data.StageState(), FLAGS.batch_size,
                                 cache_limit_mb=FLAGS.cache_limit_mb, shuffle_buffer=FLAGS.shuffle_buffer,
                                 preprocessing=preprocessing)
    it = iter(ds)
    for _ in range(3):
        next(it)
    start = time.perf_counter()
    for _ in range(FLAGS.batches):
        next(it)
    return FLAGS.batches * FLAGS.batch_size / (time.perf_counter() - start)


def train_rate(size: int) -> float:
    model = ek.create_model("EfficientNetV2S", weights=None, input_shape=(None, None, 3), classifier_activation=None)
    model.compile(optimizer="rmsprop", loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    x = np.random.uniform(0, 255, (FLAGS.batch_size, size, size, 3)).astype("float32")
    y = np.eye(1000, dtype="float32")[np.arange(FLAGS.batch_size)]
    for _ in range(2):
        model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(FLAGS.train_steps):
        model.train_on_batch(x, y)
    return FLAGS.train_steps * FLAGS.batch_size / (time.perf_counter() - start)


def decode_rates(split, n: int = 1000) -> tuple[float, float]:
    """Images/s of the random crop from encoded JPEG: fused, and decode-then-crop (the same window)."""
    records = split.records(None, None).take(n).cache()
    for _ in records:  # read once, so both timings decode from memory
        pass
    seed = tf.constant([0, 1], tf.int64)

    def unfused(image, label):
        decoded = tf.io.decode_jpeg(image, channels=3)
        begin, size = data._crop_window(tf.shape(decoded), seed, LEGACY_V1.train_area, LEGACY_V1)
        return tf.slice(decoded, begin, size), label

    def fused(image, label):
        return data.decode_and_random_crop(image, seed, None, LEGACY_V1), label

    rates = {fused: [], unfused: []}
    for _ in range(3):  # alternating, so that neither gets the warm-up or a quieter machine alone; the median
        for crop in rates:
            start = time.perf_counter()
            for _ in records.map(crop, num_parallel_calls=tf.data.AUTOTUNE):
                pass
            rates[crop].append(n / (time.perf_counter() - start))
    return float(np.median(rates[fused])), float(np.median(rates[unfused]))


def main(argv):
    builder = BenchPhotos(data_dir=FLAGS.data_dir)
    if FLAGS.generate_only:
        builder.download_and_prepare(file_format="tfrecord")
        return
    if not builder.is_prepared():  # in its own process, so this one's peak memory is the pipeline's
        subprocess.run([sys.executable, __file__, "--generate_only", f"--data_dir={FLAGS.data_dir}",
                        f"--images={FLAGS.images}"], check=True)
        builder = BenchPhotos(data_dir=FLAGS.data_dir)
    split, _, info = data.load_source(builder.name, FLAGS.data_dir)
    megabytes = split.num_bytes / 2**20
    print(f"{builder.name}: {split.num_examples} JPEGs, {megabytes:.0f} MiB in "
          f"{len(builder.info.splits['train'].file_instructions)} shards (streamed: cache limit "
          f"{FLAGS.cache_limit_mb:g} MiB)")
    growth, seconds, seen = memory_over_two_epochs(split, info)
    print(f"two epochs at {FLAGS.sizes[0]} px, shuffle window {FLAGS.shuffle_buffer}: {seen} images in "
          f"{seconds:.0f} s, peak RSS growth {growth:.0f} MiB")
    if FLAGS.memory_only:
        return
    fused, unfused = decode_rates(split)
    print(f"random crop from JPEG: fused {fused:.0f} img/s, decode-then-crop {unfused:.0f} img/s "
          f"({fused / unfused:.2f}x)")
    print("pipeline img/s with V2-S's preprocessing (official_v2: JPEG decoded whole) and with legacy_v1's (the "
          "crop window decoded); ratio: official_v2's to the V2-S train step's")
    print(f"{'size':>5} {'official_v2':>12} {'legacy_v1':>10} {'V2-S train img/s':>17} {'ratio':>7}")
    for size in map(int, FLAGS.sizes):
        whole, window = (pipeline_rate(split, info, size, p) for p in (OFFICIAL_V2, LEGACY_V1))
        t = train_rate(size)
        print(f"{size:>5} {whole:>12.1f} {window:>10.1f} {t:>17.1f} {whole / t:>6.2f}x")


if __name__ == "__main__":
    app.run(main)
