"""Input pipelines: tfds datasets, image folders and embedded real datasets, with the paper's augmentation.

Train: inception-style random resized crop + flip (stateless, seeded per epoch and example), RandAugment,
Mixup/CutMix (Keras' own layers), one-hot labels. Eval: central crop with the model's crop fraction.

Progressive learning changes the image size, RandAugment magnitude and mixup strength at stage boundaries.
The pipeline reads the current stage from a ``StageState`` variable each time an epoch's iterator starts
(Keras' ``fit`` creates one per epoch, after ``on_epoch_begin``), so one dataset serves the whole run and every
batch of an epoch has that epoch's settings. The epoch number seeds shuffling and cropping, so a run resumed at
epoch k sees the same data as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
from typing import Sequence

import numpy as np
import tensorflow as tf

__all__ = ["DatasetInfo", "Stage", "StageState", "load_source", "make_train_dataset", "make_eval_dataset",
           "EMBEDDED", "FASHION_MNIST_DIR"]

# Debian's dataset-fashion-mnist package puts tfds' fashion_mnist source files here.
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
DEFAULT_CROP_FRACTION = 0.875  # 224 / 256, the official evaluation crop
# RandAugment magnitudes are on the official scale (automl autoaugment.py: _MAX_LEVEL = 10); keras_cv takes
# magnitude / 10 clipped to [0, 1], so 10 and above are its strongest setting.
RANDAUG_MAX_LEVEL = 10.0


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    name: str
    num_classes: int
    num_train: int
    num_eval: int
    class_names: tuple[str, ...] = ()
    # Low-resolution datasets keep more of the image in the random crop (inception crop assumes large photos).
    crop_area_range: tuple[float, float] = (0.08, 1.0)


@dataclasses.dataclass(frozen=True)
class Stage:
    """Settings of one progressive-learning stage (paper section 4, Algorithm 1)."""

    image_size: int
    randaug_magnitude: float
    mixup_alpha: float
    dropout: float
    stochastic_depth: float = 0.2
    cutmix_alpha: float = 0.0
    batch_size: int | None = None  # global batch of this stage; None: the run's batch size


class StageState:
    """Variables the input pipeline reads when an epoch starts: the stage index and the epoch."""

    def __init__(self):
        self.stage = tf.Variable(0, dtype=tf.int64, trainable=False, name="progressive_stage")
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="progressive_epoch")

    def set(self, stage: int, epoch: int) -> None:
        self.stage.assign(stage)
        self.epoch.assign(epoch)


# ---------------------------------------------------------------------------------------------- sources


def _digits():
    """scikit-learn's 1,797 real handwritten digits (8x8, 17 grey levels), split 80/20 by index."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise ValueError("Dataset 'digits' needs scikit-learn: pip install scikit-learn") from e
    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    labels = digits.target.astype(np.int64)
    is_eval = np.arange(len(labels)) % 5 == 0
    info = DatasetInfo("digits", 10, int((~is_eval).sum()), int(is_eval.sum()), tuple(str(i) for i in range(10)),
                       crop_area_range=(0.5, 1.0))
    return (images[~is_eval], labels[~is_eval]), (images[is_eval], labels[is_eval]), info


def _read_idx(path: str) -> np.ndarray:
    """IDX files (the MNIST format): big-endian dims after a magic number; written by hand because no
    installed library reads them (tfds' own reader lives inside its download-only builder)."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                         "Ankle boot")


def _fashion_mnist_from_debian():
    files = {k: os.path.join(FASHION_MNIST_DIR, f"{k}-idx{3 if 'images' in k else 1}-ubyte.gz")
             for k in ("train-images", "train-labels", "t10k-images", "t10k-labels")}
    train = (_read_idx(files["train-images"])[..., None], _read_idx(files["train-labels"]).astype(np.int64))
    test = (_read_idx(files["t10k-images"])[..., None], _read_idx(files["t10k-labels"]).astype(np.int64))
    info = DatasetInfo("fashion_mnist", 10, len(train[1]), len(test[1]), FASHION_MNIST_CLASSES,
                       crop_area_range=(0.35, 1.0))
    return train, test, info


EMBEDDED = {"digits": _digits}


def _tfds(name: str, data_dir: str | None):
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as e:  # tfds raises DatasetNotFoundError with suggestions
        raise ValueError(
            f"Unknown dataset {name!r}: not an embedded dataset ({', '.join(EMBEDDED)}), not a directory, and not a "
            f"tfds name ({e})."
        ) from None
    if not builder.is_prepared():
        raise ValueError(
            f"Dataset {name!r} is not prepared in data_dir={builder.data_dir!r}. Prepare it first "
            f"(tfds build {name} --data_dir=...), or point --data_dir at the folder (e.g. gs://bucket/tfds on TPU) "
            "that holds it."
        )
    splits = builder.info.splits
    eval_split = "validation" if "validation" in splits else "test"
    label = builder.info.features["label"]
    info = DatasetInfo(name, label.num_classes, splits["train"].num_examples, splits[eval_split].num_examples,
                       tuple(label.names))
    read = tfds.ReadConfig(shuffle_seed=0, interleave_cycle_length=16)
    train = builder.as_dataset(split="train", as_supervised=True, shuffle_files=False, read_config=read)
    test = builder.as_dataset(split=eval_split, as_supervised=True, shuffle_files=False, read_config=read)
    return train, test, info


def _image_folder(root: str):
    import tensorflow_datasets as tfds

    builder = tfds.ImageFolder(root)
    splits = builder.info.splits
    if "train" not in splits:
        raise ValueError(f"Image folder {root!r} needs a 'train' subfolder (root/train/<class>/<image>).")
    eval_split = next((s for s in ("validation", "val", "test") if s in splits), None)
    if eval_split is None:
        raise ValueError(f"Image folder {root!r} needs a 'validation', 'val' or 'test' subfolder beside 'train'.")
    label = builder.info.features["label"]
    info = DatasetInfo(os.path.basename(os.path.normpath(root)), label.num_classes, splits["train"].num_examples,
                       splits[eval_split].num_examples, tuple(label.names))
    train = builder.as_dataset(split="train", as_supervised=True, shuffle_files=False)
    test = builder.as_dataset(split=eval_split, as_supervised=True, shuffle_files=False)
    return train, test, info


def load_source(name: str, data_dir: str | None = None):
    """(train, eval, info) for a dataset name: embedded, ``fashion_mnist`` (Debian files first), a tfds name,
    or an image-folder directory.

    In-memory datasets come as ``(uint8 images NxHxWxC, int64 labels)`` arrays (random access: exact per-epoch
    permutations); the others as ``tf.data`` datasets of ``(image, label)``.
    """
    if data_dir is not None and not data_dir.startswith("gs://") and not os.path.isdir(data_dir):
        raise ValueError(f"data_dir {data_dir!r} does not exist.")
    if name in EMBEDDED:
        return EMBEDDED[name]()
    if name == "fashion_mnist" and os.path.isdir(FASHION_MNIST_DIR):
        return _fashion_mnist_from_debian()
    if os.path.isdir(name):
        return _image_folder(name)
    return _tfds(name, data_dir)


def limit(source, n: int | None):
    """The first ``n`` examples of a source (all when ``n`` is None)."""
    if not n:
        return source
    if isinstance(source, tf.data.Dataset):
        return source.take(n)
    return source[0][:n], source[1][:n]


def _as_dataset(source) -> tf.data.Dataset:
    return source if isinstance(source, tf.data.Dataset) else tf.data.Dataset.from_tensor_slices(source)


# ---------------------------------------------------------------------------------------------- transforms


def _to_rgb_float(image):
    image = tf.convert_to_tensor(image)
    if image.shape.rank == 2:
        image = image[..., None]
    if image.shape[-1] == 1:
        image = tf.image.grayscale_to_rgb(image)
    return tf.cast(image, tf.float32)


def inception_crop(image, size, seed, area_range=(0.08, 1.0)):
    """Random resized crop (Szegedy et al., 2015) + horizontal flip, stateless in ``seed`` (shape [2])."""
    image = _to_rgb_float(image)
    begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image),
        bounding_boxes=tf.constant([0.0, 0.0, 1.0, 1.0], shape=[1, 1, 4]),
        seed=seed,
        min_object_covered=0.1,
        aspect_ratio_range=(3 / 4, 4 / 3),
        area_range=area_range,
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    image = tf.slice(image, begin, crop_size)
    image = tf.image.resize(image, [size, size], method="bicubic")
    image = tf.image.stateless_random_flip_left_right(image, seed=seed + 1)
    return tf.ensure_shape(tf.clip_by_value(image, 0.0, 255.0), [None, None, 3])


def center_crop(image, size, crop_fraction=DEFAULT_CROP_FRACTION):
    """Central ``crop_fraction`` of the shorter side, resized to ``size`` (the evaluation transform)."""
    if not 0 < crop_fraction <= 1:
        raise ValueError(f"crop_fraction must be in (0, 1], got {crop_fraction}.")
    image = _to_rgb_float(image)
    shape = tf.shape(image)
    h, w = shape[0], shape[1]
    side = tf.cast(tf.round(tf.cast(tf.minimum(h, w), tf.float32) * crop_fraction), tf.int32)
    top, left = (h - side) // 2, (w - side) // 2
    image = tf.image.crop_to_bounding_box(image, top, left, side, side)
    image = tf.image.resize(image, [size, size], method="bicubic")
    return tf.ensure_shape(tf.clip_by_value(image, 0.0, 255.0), [None, None, 3])


def _switch(stage, branches):
    """Apply the current stage's branch (all branches share one graph; only the selected one runs)."""
    if len(branches) == 1:
        return branches[0]()
    return tf.switch_case(tf.cast(stage, tf.int32), branches)


class StageAugmenters:
    """Keras' RandAugment / MixUp / CutMix layers, one set per stage (their strengths are fixed when built).

    These are ``keras.layers`` (they run inside ``tf.data`` on any backend); keras_cv 0.9's RandAugment fails in
    graph-mode branches (its Equalization uses a Python ``and`` on tensors), so it is not used here.
    """

    def __init__(self, stages: Sequence[Stage], seed: int):
        import keras

        self.randaug, self.mixup, self.cutmix = [], [], []
        for i, s in enumerate(stages):
            self.randaug.append(
                keras.layers.RandAugment(value_range=(0, 255), num_ops=2,
                                         factor=min(1.0, s.randaug_magnitude / RANDAUG_MAX_LEVEL),
                                         seed=seed + 101 * i)
                if s.randaug_magnitude > 0 else None
            )
            self.mixup.append(keras.layers.MixUp(alpha=s.mixup_alpha, seed=seed + 103 * i) if s.mixup_alpha > 0
                              else None)
            self.cutmix.append(keras.layers.CutMix(factor=min(1.0, s.cutmix_alpha), seed=seed + 107 * i)
                               if s.cutmix_alpha > 0 else None)

    def layers(self):
        return [l for group in (self.randaug, self.mixup, self.cutmix) for l in group if l is not None]

    def reseed(self, seed: int, epoch: int) -> None:
        """Restart every augmenter's random stream from (seed, epoch), so a resumed epoch repeats exactly."""
        from efficientnet_keras.layers import reseed

        reseed(self.layers(), seed, epoch)

    def randaugment(self, stage, images):
        branches = [(lambda l=l: l(images, training=True) if l is not None else images) for l in self.randaug]
        return _switch(stage, branches)

    def mix(self, stage, images, labels):
        def branch(mixup, cutmix):
            def apply():
                x, y = images, labels
                for layer in (mixup, cutmix):
                    if layer is not None:
                        out = layer({"images": x, "labels": y}, training=True)
                        x, y = out["images"], out["labels"]
                return x, y

            return apply

        return _switch(stage, [branch(m, c) for m, c in zip(self.mixup, self.cutmix)])


def _options(deterministic: bool) -> tf.data.Options:
    options = tf.data.Options()
    options.deterministic = deterministic
    options.experimental_optimization.map_parallelization = not deterministic
    return options


def make_train_dataset(
    source,
    info: DatasetInfo,
    stages: Sequence[Stage],
    state: StageState,
    batch_size: int,
    seed: int = 0,
    deterministic: bool = False,
    augmenters: StageAugmenters | None = None,
    shuffle_buffer: int = 10_000,
    cache: bool = True,
) -> tf.data.Dataset:
    """One epoch of augmented, batched ``(images float32 [0, 255], one-hot labels)`` at the current stage.

    The batch is the stage's ``batch_size`` where set, else ``batch_size``. Where stages differ in batch, the
    batch dimension is left unknown so that one traced train step serves every stage."""
    batches = [s.batch_size or batch_size for s in stages]
    if min(batches) < 1:
        raise ValueError(f"batch sizes must be positive, got {batches}.")
    sizes = tf.constant([s.image_size for s in stages], tf.int32)
    stage_batches = tf.constant(batches, tf.int64) if len(set(batches)) > 1 else batches[0]
    augmenters = augmenters or StageAugmenters(stages, seed)
    parallel = None if deterministic else tf.data.AUTOTUNE
    num_classes = info.num_classes
    in_memory = not isinstance(source, tf.data.Dataset)
    if in_memory:
        images, labels = tf.constant(source[0]), tf.constant(source[1])
        count = len(source[1])
    else:
        base = source.cache() if cache else source

    def epoch_pipeline(stage, epoch):
        size = sizes[tf.cast(stage, tf.int32)]

        def crop(index, example):
            image, label = example
            element_seed = tf.stack([tf.cast(seed, tf.int64) * 7919 + epoch, index])
            return inception_crop(image, size, element_seed, info.crop_area_range), label

        def augment(images, labels):
            images = augmenters.randaugment(stage, images)
            labels = tf.one_hot(labels, num_classes)
            return augmenters.mix(stage, images, labels)

        epoch_seed = tf.stack([tf.constant(seed, tf.int64), epoch])
        if in_memory:  # an exact permutation per epoch, a pure function of (seed, epoch)
            order = tf.data.Dataset.range(count).map(
                lambda i: tf.random.experimental.index_shuffle(i, epoch_seed, count - 1))
            ds = order.map(lambda j: (tf.gather(images, j), tf.gather(labels, j)))
        else:  # streaming: sort windows of `shuffle_buffer` examples by keys drawn from (seed, epoch, index)
            ds = base.enumerate().map(
                lambda i, ex: (tf.random.stateless_uniform([], tf.stack([epoch_seed[0] * 7919 + epoch, i])), ex))
            ds = ds.batch(shuffle_buffer).map(_sort_window).unbatch()
        ds = ds.enumerate().map(crop, num_parallel_calls=parallel)
        batch = stage_batches if isinstance(stage_batches, int) else stage_batches[tf.cast(stage, tf.int32)]
        ds = ds.batch(batch, drop_remainder=True)
        return ds.map(augment, num_parallel_calls=parallel)

    ds = tf.data.Dataset.range(1).map(lambda _: (state.stage.read_value(), state.epoch.read_value()))
    ds = ds.flat_map(epoch_pipeline).prefetch(tf.data.AUTOTUNE)
    return ds.with_options(_options(deterministic))


def _sort_window(keys, examples):
    order = tf.argsort(keys)
    return tf.nest.map_structure(lambda t: tf.gather(t, order), examples)


def make_eval_dataset(source, info: DatasetInfo, image_size: int, batch_size: int,
                      crop_fraction: float = DEFAULT_CROP_FRACTION, cache: bool = True) -> tf.data.Dataset:
    """Central-crop evaluation batches ``(images, one-hot labels)``; the last partial batch is kept."""
    num_classes = info.num_classes
    ds = _as_dataset(source)
    ds = ds.cache() if cache else ds
    ds = ds.map(lambda image, label: (center_crop(image, image_size, crop_fraction), tf.one_hot(label, num_classes)),
                num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
