"""TFRecord files in the official layouts as a dataset: ``--dataset=tfrecord:<pattern>`` (local or gs://).

Two layouts, told apart by the first record's keys:

- ``imagenet``: the Cloud TPU ImageNet records (tensorflow/tpu ``tools/datasets/imagenet_to_gcs.py``:
  ``train-00000-of-01024``, ``validation-00000-of-00128``): ``image/encoded`` JPEG bytes and ``image/class/label``
  in 1..1000, 0 being reserved for background; the official ``ImageNetInput.dataset_parser`` subtracts 1.
- ``imagenet21k``: the official ImageNet-21k records (``ImageNet21kInput``): ``image`` bytes and ``labels``, a
  list of class ids in 0..21842 (no offset), read as a multi-hot vector as the official parser does.

``<pattern>`` is a file glob with ``{split}`` where the split name goes (``gs://b/imagenet/{split}-*``); without
``{split}``, it names a folder and ``{split}-*`` is appended. Splits are file sets, as the official code defines
them: ``train`` and ``validation`` (21k: ``imagenet21k*``), plus the official hold-out presets of
``datasets.py``: ``minival`` (the first 20 train files; 21k: files 16-19) and ``train_minus_minival`` (the rest).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import tensorflow as tf

__all__ = ["PREFIX", "LAYOUTS", "MINIVAL", "TRAIN_MINUS_MINIVAL", "TFRecordSource", "load_tfrecords", "parse_layout",
           "sharded_records"]

PREFIX = "tfrecord:"
MINIVAL, TRAIN_MINUS_MINIVAL = "minival", "train_minus_minival"

# layout: (image key, label key, label offset, classes, multi-label); datasets.py ImageNetInput / ImageNet21kInput.
LAYOUTS = {
    "imagenet": ("image/encoded", "image/class/label", -1, 1000, False),
    "imagenet21k": ("image", "labels", 0, 21843, True),
}
# datasets.py splits: (files glob, slice of the sorted files, images) per layout. The image counts are the official
# ones, used where the file count is the official converter's (ImageNet: 1024 train, 128 validation files); other
# file sets (the 21k records, whose file count the official code does not state) are counted once, a pass over them.
_SPLITS = {
    "imagenet": {"train": ("train", slice(None), 1_281_167), TRAIN_MINUS_MINIVAL: ("train", slice(20, None), 1_256_144),
                 MINIVAL: ("train", slice(0, 20), 25_021), "validation": ("validation", slice(None), 50_000)},
    "imagenet21k": {"train": ("imagenet21k", slice(20, None), 12_720_275), MINIVAL: ("imagenet21k", slice(16, 20), 25_089),
                    "validation": ("imagenet21k", slice(0, 16), 100_357)},
}
_OFFICIAL_FILE_COUNTS = {("imagenet", "train"): 1024, ("imagenet", "validation"): 128}


def _glob(pattern: str, split_files: str) -> list[str]:
    if "{split}" not in pattern:
        pattern = pattern.rstrip("/") + "/{split}-*"
    if split_files == "imagenet21k":  # the 21k records have no split prefix: imagenet21k-xxxxx-of-xxxxx
        pattern = pattern.replace("{split}-*", "{split}*")
    return sorted(tf.io.gfile.glob(pattern.format(split=split_files)))


def parse_layout(serialized: bytes, where: str) -> str:
    """The layout of one serialized ``tf.train.Example``; a clear error naming the missing key."""
    example = tf.train.Example.FromString(serialized)
    keys = set(example.features.feature)
    for layout, (image, label, *_) in LAYOUTS.items():
        if image in keys and label in keys:
            return layout
    if "image/encoded" in keys or "image/class/label" in keys:
        missing = {"image/encoded", "image/class/label"} - keys
        raise ValueError(f"{where}: the record has no {' or '.join(sorted(missing))} key (Cloud TPU ImageNet layout); "
                         f"its keys: {', '.join(sorted(keys))}.")
    raise ValueError(f"{where}: the record is in no known layout: it has {', '.join(sorted(keys)) or 'no keys'}, "
                     "where the Cloud TPU ImageNet records have image/encoded and image/class/label, and the "
                     "official ImageNet-21k records image and labels.")


def _first_record(files: list[str]) -> bytes:
    for serialized in tf.data.TFRecordDataset(files[:1]).take(1):
        return serialized.numpy()
    raise ValueError(f"{files[0]} holds no records.")


def _count(files: list[str]) -> int:
    return int(tf.data.TFRecordDataset(files).reduce(tf.constant(0, tf.int64), lambda n, _: n + 1))


def _split(pattern: str, name: str, layout: str | None):
    """(files, layout, image count) of one split."""
    layouts = [layout] if layout else list(_SPLITS)
    for candidate in layouts:
        spec = _SPLITS[candidate].get(name)
        if spec is None:
            continue
        prefix, part, images = spec
        every = _glob(pattern, prefix)
        files = every[part]
        if not files:
            continue
        found = parse_layout(_first_record(files), files[0])
        if found != candidate:
            if layout:
                raise ValueError(f"{files[0]} is in the {found} layout, the train split in the {layout} layout; use "
                                 "one layout for every split.")
            continue
        official = _OFFICIAL_FILE_COUNTS.get((candidate, prefix))
        count = images if official is not None and len(every) == official else _count(files)
        return files, candidate, count
    choices = sorted({s for c in layouts for s in _SPLITS[c]})
    if name not in choices:
        raise ValueError(f"Unknown split {name!r} of tfrecord:{pattern}; the official layouts have {', '.join(choices)}.")
    raise ValueError(f"tfrecord:{pattern} matches no files for split {name!r} (looked for "
                     f"{', '.join(repr(_globbed(pattern, _SPLITS[c][name][0])) for c in layouts if name in _SPLITS[c])}"
                     "). Check the path; files are named as the official converters write them "
                     "(train-00000-of-01024, validation-00000-of-00128, imagenet21k-...).")


def _globbed(pattern: str, prefix: str) -> str:
    if "{split}" not in pattern:
        pattern = pattern.rstrip("/") + "/{split}-*"
    return pattern.format(split=prefix)


def _parser(layout: str):
    image_key, label_key, offset, classes, multi = LAYOUTS[layout]
    if multi:
        features = {image_key: tf.io.FixedLenFeature([], tf.string),
                    label_key: tf.io.FixedLenSequenceFeature([], tf.int64, allow_missing=True)}
    else:
        features = {image_key: tf.io.FixedLenFeature([], tf.string),
                    label_key: tf.io.FixedLenFeature([], tf.int64, -1)}

    def parse(serialized):
        example = tf.io.parse_single_example(serialized, features)
        label = example[label_key] + offset
        check = tf.debugging.assert_less(tf.reduce_max(tf.concat([[-1], tf.reshape(label, [-1])], 0)),
                                         tf.constant(classes, tf.int64),
                                         message=f"{label_key} beyond the {classes} classes of the {layout} layout")
        with tf.control_dependencies([check]):
            if multi:  # ImageNet21kInput: a multi-hot vector of the listed classes
                label = tf.minimum(tf.reduce_sum(tf.one_hot(label, classes, dtype=tf.float32), axis=0), 1.0)
                label = tf.ensure_shape(label, [classes])
            return example[image_key], label

    return parse


def sharded_records(num_files: int, open_file: Callable, parse: Callable) -> Callable:
    """``records(file_seed, input_context)`` as ``data.Split`` takes it: file ``i``'s records
    (``open_file(i)``, a dataset) parsed by ``parse``, the files permuted by ``file_seed`` ([2] int64, None: in
    order) and interleaved; each input pipeline reads its own files (its own records when there are fewer files
    than pipelines). Shared by tfds shards and these TFRecords."""

    def records(file_seed, context):
        n = num_files
        order = tf.data.Dataset.range(n)
        if file_seed is not None:
            order = order.map(lambda i: tf.random.experimental.index_shuffle(i, file_seed, n - 1))
        pipelines = context.num_input_pipelines if context else 1
        if pipelines > 1 and n >= pipelines:
            order = order.shard(pipelines, context.input_pipeline_id)
        ds = order.interleave(open_file, cycle_length=min(16, n), num_parallel_calls=tf.data.AUTOTUNE,
                              deterministic=True)
        ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE)
        return ds.shard(pipelines, context.input_pipeline_id) if pipelines > 1 and n < pipelines else ds

    return records


def _records(files: list[str], layout: str) -> Callable:
    names = tf.constant(files)
    return sharded_records(len(files), lambda i: tf.data.TFRecordDataset(names[i], buffer_size=8 * 2**20),
                           _parser(layout))


@dataclasses.dataclass(frozen=True)
class TFRecordSource:
    """One ``tfrecord:`` dataset: its layout and, per split, ``records`` callables with their image counts."""

    name: str
    layout: str
    num_classes: int
    multi_label: bool
    train: Callable
    num_train: int
    train_bytes: int
    eval: Callable
    num_eval: int


def load_tfrecords(pattern: str, train_split: str, eval_split: str | None) -> TFRecordSource:
    """The train and evaluation splits of ``tfrecord:<pattern>``."""
    train_files, layout, num_train = _split(pattern, train_split, None)
    eval_files, _, num_eval = _split(pattern, eval_split or "validation", layout)
    _, _, _, classes, multi = LAYOUTS[layout]
    sample = train_files[:4]
    size = sum(tf.io.gfile.stat(f).length for f in sample) * len(train_files) // len(sample)
    name = f"tfrecord:{pattern}"
    return TFRecordSource(name, layout, classes, multi, _records(train_files, layout), num_train, size,
                          _records(eval_files, layout), num_eval)
