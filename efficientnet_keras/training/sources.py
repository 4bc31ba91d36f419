"""Datasets as the pipelines read them: the embedded digits, Fashion-MNIST, tfds datasets, image folders and
official TFRecords (local or gs://), each a ``Split`` of encoded examples in storage order plus its
``DatasetInfo``; and the evaluation transform a dataset calls for (``for_dataset``, ``eval_settings``)."""

from __future__ import annotations

import dataclasses
import gzip
import os
from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

from efficientnet_keras.training import tfrecords
from efficientnet_keras.transforms import IMAGE_EXTENSIONS, Preprocessing

__all__ = ["DatasetInfo", "Split", "load_source", "limit", "in_storage_order", "cached", "storage_names",
           "for_dataset", "eval_settings", "target", "EMBEDDED", "FASHION_MNIST_DIR"]

# Debian's dataset-fashion-mnist package puts tfds' fashion_mnist source files here.
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
CACHE_LIMIT_MB = 1024


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    name: str
    num_classes: int
    num_train: int
    num_eval: int
    class_names: tuple[str, ...] = ()
    # Low-resolution datasets keep more of the image in the random crop (the official crops assume large photos);
    # None: the variant's official area range.
    crop_area_range: tuple[float, float] | None = None
    # ... and a fixed evaluation crop: the official size/(size+32) is meant for photos at 224 px and more (at 48 px
    # it keeps 60%). None: the variant's official crop.
    eval_crop_fraction: float | None = None
    multi_label: bool = False  # labels are multi-hot float vectors [num_classes], not class ids


@dataclasses.dataclass
class Split:
    """One split as the pipeline reads it; exactly one of ``arrays``, ``files``, ``records`` is set.

    ``arrays``: (uint8 images [N, H, W, C], int64 labels), small decoded datasets. ``files``: (paths, labels),
    image folders. ``records(file_seed, input_context)``: a dataset of (encoded bytes, label), shards permuted by
    ``file_seed`` ([2] int64, None: storage order), tfds. ``num_bytes``: encoded size, 0 when unknown."""

    num_examples: int
    arrays: tuple | None = None
    files: tuple | None = None
    records: Callable | None = None
    num_bytes: int = 0
    take: int | None = None  # read only the first N examples in storage order (quick runs)


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
                       crop_area_range=(0.5, 1.0), eval_crop_fraction=0.875)
    return _arrays(images[~is_eval], labels[~is_eval]), _arrays(images[is_eval], labels[is_eval]), info


def _arrays(images, labels) -> Split:
    return Split(len(labels), arrays=(images, labels), num_bytes=images.nbytes)


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
    train = _arrays(_read_idx(files["train-images"])[..., None], _read_idx(files["train-labels"]).astype(np.int64))
    test = _arrays(_read_idx(files["t10k-images"])[..., None], _read_idx(files["t10k-labels"]).astype(np.int64))
    info = DatasetInfo("fashion_mnist", 10, train.num_examples, test.num_examples, FASHION_MNIST_CLASSES,
                       crop_area_range=(0.35, 1.0), eval_crop_fraction=0.875)
    return train, test, info


EMBEDDED = {"digits": _digits}


def _pick_eval_split(available, requested: str | None, where: str) -> str:
    if requested:
        if requested.split("[")[0] not in available:
            raise ValueError(f"{where} has no split {requested!r}; it has {', '.join(sorted(available)) or 'none'}. "
                             "Choose one with --eval_split.")
        return requested
    for name in ("validation", "val", "test"):
        if name in available:
            return name
    raise ValueError(f"{where} has no evaluation split (validation, val or test); it has "
                     f"{', '.join(sorted(available)) or 'none'}. Choose one with --eval_split.")


# datasets.py holds out the first 20 of ImageNet's 1024 train files (25,021 images) as minival. tfds does not keep
# the TPU converter's files, so for imagenet2012 the presets take the same counts from its train split: other images
# than the TFRecords' minival, the same sizes (1,256,144 + 25,021). tfrecord: datasets hold out the files themselves.
TFDS_SPLIT_PRESETS = {"imagenet2012": {tfrecords.MINIVAL: "train[:25021]",
                                       tfrecords.TRAIN_MINUS_MINIVAL: "train[25021:]"}}


def _tfds(name: str, data_dir: str | None, train_split: str, eval_split: str | None):
    import tensorflow_datasets as tfds

    presets = TFDS_SPLIT_PRESETS.get(name, {})
    train_split, eval_split = presets.get(train_split, train_split), presets.get(eval_split, eval_split)

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as e:  # tfds raises DatasetNotFoundError with suggestions
        if name.startswith(("/", ".", "~")) or "://" in name:  # a folder path (tfds names are name[/config])
            raise ValueError(f"Dataset folder {name!r} does not exist; an image folder is root/train/<class>/<image> "
                             "(local or gs://).") from None
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(
            f"Unknown dataset {name!r}: not an embedded dataset ({', '.join(EMBEDDED)}), fashion_mnist, a folder, "
            f"tfrecord:<pattern>, or a tfds name ({first_line})."
        ) from None
    if not builder.is_prepared():
        try:
            builder.as_dataset(split=train_split)  # tfds.testing.mock_data serves datasets that are not prepared
        except AssertionError:  # tfds: "could not find data in ..."
            raise _not_prepared(builder) from None
    keys = builder.info.supervised_keys
    if not keys or len(keys) != 2:
        raise ValueError(f"Dataset {name!r} has no (image, label) supervised keys; it cannot train a classifier.")
    splits = builder.info.splits
    if splits and train_split.split("[")[0] not in splits:
        raise ValueError(f"Dataset {name!r} has no split {train_split!r}; it has {', '.join(sorted(splits))}.")
    eval_split = _pick_eval_split(splits, eval_split, f"Dataset {name!r}") if splits else eval_split or "validation"
    label = builder.info.features[keys[1]]
    train, test = (_tfds_split(builder, s, keys) for s in (train_split, eval_split))
    info = DatasetInfo(name, label.num_classes, train.num_examples, test.num_examples, tuple(label.names))
    return train, test, info


def _not_prepared(builder) -> ValueError:
    root = os.path.dirname(os.path.dirname(builder.data_dir))
    held = sorted(tf.io.gfile.listdir(root)) if tf.io.gfile.isdir(root) else []
    return ValueError(
        f"Dataset {builder.name!r} is not prepared in data_dir={root!r}"
        + (f" (it holds: {', '.join(h.rstrip('/') for h in held)})" if held else "")
        + f". Prepare it first (tfds build {builder.name} --data_dir=...), or point --data_dir at the folder "
        "(e.g. gs://bucket/tfds on TPU) that holds it."
    )


def _tfds_split(builder, split: str, keys) -> Split:
    """A tfds split read from its TFRecord shards (permuted per epoch); through ``as_dataset`` where there are no
    shards to read (other file formats, or ``tfds.testing.mock_data``)."""
    import tensorflow_datasets as tfds

    image_key, label_key = keys
    decoders = {image_key: tfds.decode.SkipDecoding()}
    shards = builder.is_prepared() and str(builder.info.file_format).lower().endswith("tfrecord")
    if shards:
        info = builder.info.splits[split]
        instructions = info.file_instructions
        filenames = tf.constant([os.path.join(builder.data_dir, i.filename) for i in instructions])
        skips = tf.constant([i.skip for i in instructions], tf.int64)
        takes = tf.constant([-1 if i.take is None else i.take for i in instructions], tf.int64)
        features = builder.info.features

        def parse(serialized):
            example = features.deserialize_example(serialized, decoders=decoders)
            return example[image_key], tf.cast(example[label_key], tf.int64)

        records = tfrecords.sharded_records(
            len(instructions), lambda i: tf.data.TFRecordDataset(filenames[i]).skip(skips[i]).take(takes[i]), parse)
        return Split(info.num_examples, records=records, num_bytes=int(info.num_bytes or 0))

    def as_dataset(file_seed, context):
        try:
            ds = builder.as_dataset(split=split, decoders=decoders, shuffle_files=False,
                                    read_config=tfds.ReadConfig(input_context=context))
        except AssertionError:  # tfds: "could not find data in ..."
            raise _not_prepared(builder) from None
        return ds.map(lambda ex: (ex[image_key], tf.cast(ex[label_key], tf.int64)))

    splits = builder.info.splits
    if split.split("[")[0] in splits:
        return Split(splits[split].num_examples, records=as_dataset, num_bytes=int(splits[split].num_bytes or 0))
    # No split metadata (mock data, some community datasets): count the encoded examples once.
    count = int(as_dataset(None, None).reduce(tf.constant(0, tf.int64), lambda n, _: n + 1))
    return Split(count, records=as_dataset)


def _list_images(folder: str, classes: Sequence[str]) -> tuple[list[str], list[int]]:
    paths, labels = [], []
    for label, name in enumerate(classes):
        directory = f"{folder.rstrip('/')}/{name}"
        if not tf.io.gfile.isdir(directory):
            continue
        for file in sorted(tf.io.gfile.listdir(directory)):
            if file.lower().endswith(IMAGE_EXTENSIONS):
                paths.append(f"{directory}/{file}")
                labels.append(label)
    return paths, labels


def _image_folder(root: str, train_split: str, eval_split: str | None):
    """``root/<split>/<class>/<image>``, read with ``tf.io.gfile`` (local, gs://): classes are the train split's
    subfolders, sorted."""
    root = root.rstrip("/")
    splits = {d.rstrip("/") for d in tf.io.gfile.listdir(root) if tf.io.gfile.isdir(f"{root}/{d.rstrip('/')}")}
    if train_split not in splits:
        raise ValueError(f"Image folder {root!r} needs a {train_split!r} subfolder (root/{train_split}/<class>/<image>).")
    eval_split = _pick_eval_split(splits - {train_split}, eval_split, f"Image folder {root!r}")
    classes = sorted(d.rstrip("/") for d in tf.io.gfile.listdir(f"{root}/{train_split}")
                     if tf.io.gfile.isdir(f"{root}/{train_split}/{d.rstrip('/')}"))
    unknown = {d.rstrip("/") for d in tf.io.gfile.listdir(f"{root}/{eval_split}")} - set(classes)
    if unknown:
        raise ValueError(f"Image folder {root!r}: {eval_split}/ has classes that {train_split}/ lacks: "
                         f"{', '.join(sorted(unknown))}.")
    out = []
    for split in (train_split, eval_split):
        paths, labels = _list_images(f"{root}/{split}", classes)
        if not paths:
            raise ValueError(f"Image folder {root!r} has no JPEG/PNG/GIF/BMP images in {split}/<class>/.")
        sample = paths[:: max(1, len(paths) // 64)]
        size = sum(tf.io.gfile.stat(p).length for p in sample) * len(paths) // len(sample)
        out.append(Split(len(paths), files=(paths, np.asarray(labels, np.int64)), num_bytes=size))
    info = DatasetInfo(os.path.basename(root), len(classes), out[0].num_examples, out[1].num_examples, tuple(classes))
    return out[0], out[1], info


def load_source(name: str, data_dir: str | None = None, train_split: str = "train",
                eval_split: str | None = None) -> tuple[Split, Split, DatasetInfo]:
    """(train, eval, info) for a dataset name: embedded, ``fashion_mnist`` (Debian files first), an image-folder
    directory (local or remote), or a tfds name (with ``data_dir``, local or gs://)."""
    if data_dir is not None and "://" not in data_dir and not os.path.isdir(data_dir):
        raise ValueError(f"data_dir {data_dir!r} does not exist.")
    if name in EMBEDDED:
        return EMBEDDED[name]()
    if name.startswith(tfrecords.PREFIX):
        return _tfrecords(name[len(tfrecords.PREFIX):], train_split, eval_split)
    if name == "fashion_mnist" and os.path.isdir(FASHION_MNIST_DIR):
        return _fashion_mnist_from_debian()
    if ("/" in name or os.path.isdir(name)) and tf.io.gfile.isdir(name):
        return _image_folder(name, train_split, eval_split)
    return _tfds(name, data_dir, train_split, eval_split)


def _tfrecords(pattern: str, train_split: str, eval_split: str | None):
    source = tfrecords.load_tfrecords(pattern, train_split, eval_split)
    info = DatasetInfo(source.name, source.num_classes, source.num_train, source.num_eval,
                       tuple(str(i) for i in range(source.num_classes)), multi_label=source.multi_label)
    return (Split(source.num_train, records=source.train, num_bytes=source.train_bytes),
            Split(source.num_eval, records=source.eval), info)


def target(label, num_classes: int):
    """The training target of a label: one-hot of a class id, or the multi-hot vector itself."""
    if label.shape.rank and label.shape[-1] == num_classes and label.dtype.is_floating:
        return label
    return tf.one_hot(label, num_classes)


def limit(split: Split, n: int | None) -> Split:
    """The first ``n`` examples of a split in storage order (all when ``n`` is None)."""
    if not n or n >= split.num_examples:
        return split
    fraction = n / split.num_examples
    if split.arrays is not None:
        return dataclasses.replace(split, num_examples=n, arrays=tuple(a[:n] for a in split.arrays),
                                   num_bytes=int(split.num_bytes * fraction))
    if split.files is not None:
        return dataclasses.replace(split, num_examples=n, files=tuple(a[:n] for a in split.files),
                                   num_bytes=int(split.num_bytes * fraction))
    return dataclasses.replace(split, num_examples=n, take=n, num_bytes=int(split.num_bytes * fraction))


def cached(split: Split, cache_limit_mb: float) -> tf.data.Dataset | None:
    """The split's encoded examples in storage order, cached in memory, if they fit the rule; else None."""
    fits = 0 < split.num_bytes <= cache_limit_mb * 2**20
    if split.arrays is not None or not fits:
        return None
    return in_storage_order(split).cache()


def in_storage_order(split: Split) -> tf.data.Dataset:
    """(image or encoded bytes, label) of every example, in storage order."""
    if split.arrays is not None:
        return tf.data.Dataset.from_tensor_slices(split.arrays)
    if split.files is not None:
        return tf.data.Dataset.from_tensor_slices(split.files).map(lambda p, y: (tf.io.read_file(p), y),
                                                                   num_parallel_calls=tf.data.AUTOTUNE)
    ds = split.records(None, None)
    return ds.take(split.take) if split.take else ds


def storage_names(split: Split, context, positions) -> list[str]:
    """Paths at ``positions`` of this host's share of a files split in storage order."""
    pipelines, index = (context.num_input_pipelines, context.input_pipeline_id) if context else (1, 0)
    return [str(split.files[0][index + int(p) * pipelines]) for p in positions]


def for_dataset(info: DatasetInfo, preprocessing: Preprocessing) -> Preprocessing:
    """The variant's transform, adapted where the dataset is low-resolution (digits, Fashion-MNIST): its own crop
    area range (``crop_area_range``) and, with its own ``eval_crop_fraction``, crops centred exactly, resized with
    half-pixel centres, a sampled box kept as sampled. The official V1 transform is made for photos: its one-pixel
    offset rounding shifts an 8-px digit by 1/8 of its size (measured: 78% -> 33%), TF1's resize without half-pixel
    centres by up to half a source pixel, and its centre-crop fallback replaces every box that is the whole image.
    What this returns is what runs and what results.json records."""
    if info.crop_area_range is not None:
        preprocessing = dataclasses.replace(preprocessing, train_area=tuple(info.crop_area_range))
    if info.eval_crop_fraction is None:
        return preprocessing
    resize = "bicubic" if preprocessing.resize == "bicubic_tf1" else preprocessing.resize
    return dataclasses.replace(preprocessing, round_offset_up=False, resize=resize, center_crop_fallback=False)


def eval_settings(info: DatasetInfo, preprocessing: Preprocessing, crop_fraction: float | None = None):
    """(crop fraction, preprocessing) of the evaluation transform: the variant's, unless ``crop_fraction`` is
    given or the dataset has its own crop (low resolution, ``for_dataset``)."""
    whole = preprocessing.eval_full_image_from == 0  # the fine-tuning transform evaluates the whole image
    adapted = for_dataset(info, preprocessing)
    if crop_fraction is None and info.eval_crop_fraction is not None and not whole:
        return info.eval_crop_fraction, adapted
    return crop_fraction, dataclasses.replace(preprocessing, train_area=adapted.train_area)  # recorded as trained
