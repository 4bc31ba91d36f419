"""Images that fail to decode: skipped, counted, named where the source has names, and never allowed to shorten
an epoch.

A corrupt file in a dataset of a million must not end a run, nor silently change its length: the pipeline skips
it (``skip_undecodable``), counts it in ``SkippedImages``, records its position in the epoch so that the trainer
can name the file once (``SkippedImages.names``: image folders know their paths; TFRecords and tfds records have no
names), and fills the epoch back to its full number of examples with the first decodable images of the same
epoch's order (``refill``), so every epoch keeps ``steps_per_epoch`` and stays a pure function of (seed, epoch).
"""

from __future__ import annotations

from typing import Callable

import keras
import tensorflow as tf

__all__ = ["SkippedImages", "SkippedImagesLog", "skip_undecodable", "refill", "undecodable_in"]


def _positions() -> tf.Variable:
    return tf.Variable(tf.zeros([0], tf.int64), shape=tf.TensorShape([None]), trainable=False)


class SkippedImages:
    """How many images failed to decode and were skipped, in training and in evaluation (since creation); where
    they were in the current epoch (``positions``, reset by the trainer at each epoch); and, set by the pipeline
    that reads a split with file names, how to name them (``namers[part](epoch, positions) -> paths``)."""

    def __init__(self):
        self.train = tf.Variable(0, dtype=tf.int64, trainable=False, name="skipped_train_images")
        self.eval = tf.Variable(0, dtype=tf.int64, trainable=False, name="skipped_eval_images")
        self.positions = {"train": _positions(), "eval": _positions()}
        self.refilled = tf.Variable(0, dtype=tf.int64, trainable=False)  # skips met again while refilling: not new
        self.namers: dict[str, Callable | None] = {"train": None, "eval": None}

    def reset_positions(self) -> None:
        for variable in self.positions.values():
            variable.assign(tf.zeros([0], tf.int64))

    def names(self, part: str, epoch: int) -> list[str] | None:
        """Paths of the images skipped in ``part`` ('train', 'eval') since the last reset; None where the split has
        no file names."""
        positions = self.positions[part].numpy()
        namer = self.namers[part]
        if namer is None or not len(positions):
            return None
        return namer(epoch, positions)


def skip_undecodable(ds: tf.data.Dataset, decode, counter: tf.Variable, parallel,
                     positions: tf.Variable | None = None) -> tf.data.Dataset:
    """``decode(key, image, label)`` each ``(key, image, label)`` element, skipping those it fails on (a corrupt
    image), adding their number to ``counter`` and their positions in ``ds`` to ``positions``; yields what
    ``decode`` returns (ending with the label). Only decoding runs under the skip, so a bug elsewhere still fails
    loudly. Elements carry their position, and the gaps in the positions that come out are the skipped ones (the
    map keeps the order); a valid blank image with label -1 closes the stream, so failures at its end are counted
    too. Written by hand because tf.data's ``ignore_errors`` skips without counting."""
    _, image_spec, label_spec = ds.element_spec
    blank = (tf.io.encode_png(tf.zeros([1, 1, 3], tf.uint8)) if image_spec.dtype == tf.string
             else tf.zeros([d or 1 for d in image_spec.shape], image_spec.dtype))
    end_label = tf.fill([d or 1 for d in label_spec.shape], tf.constant(-1, label_spec.dtype))
    ds = ds.concatenate(tf.data.Dataset.from_tensors((tf.constant(-1, tf.int64), blank, end_label)))
    ordered = {"deterministic": True} if parallel else {}
    ds = ds.enumerate().map(lambda i, example: (i, decode(*example)), num_parallel_calls=parallel,
                            **ordered).ignore_errors()

    def count(expected, element):
        position, _ = element
        counter.assign_add(position - expected)
        if positions is not None:
            def record():
                positions.assign(tf.concat([positions, tf.range(expected, position)], 0))
                return tf.constant(True)
            tf.cond(position > expected, record, lambda: tf.constant(False))
        return position + 1, element

    ds = ds.scan(tf.constant(0, tf.int64), count).filter(lambda _, decoded: tf.reduce_min(decoded[-1]) >= 0)
    return ds.map(lambda _, decoded: decoded)


def refill(examples: Callable[[], tf.data.Dataset], decode, skipped: SkippedImages, skipped_before,
           parallel) -> tf.data.Dataset:
    """As many decodable examples as this epoch skipped (``skipped.train`` now minus ``skipped_before``, read when
    the epoch's own stream has ended), taken from the start of the same epoch's order (``examples()``), repeated
    if need be. Concatenated after the epoch, it gives the epoch its full length."""
    missing = tf.data.Dataset.range(1).map(lambda _: skipped.train.read_value() - skipped_before)

    def again(count):
        return skip_undecodable(examples(), decode, skipped.refilled, parallel).repeat().take(count)

    return missing.filter(lambda count: count > 0).flat_map(again)


def undecodable_in(ds: tf.data.Dataset, decode) -> list[int]:
    """Positions in ``ds`` ((key, image, label) elements) of the images ``decode`` fails on; reads them all."""
    counter, positions = tf.Variable(0, dtype=tf.int64), _positions()
    for _ in skip_undecodable(ds, decode, counter, tf.data.AUTOTUNE, positions):
        pass
    return [int(p) for p in positions.numpy()]


class SkippedImagesLog(keras.callbacks.Callback):
    """Adds the images skipped as undecodable in each epoch to its logs (CSV, TensorBoard) and says so: each file
    by its path, once in the run; records (no names) by their count, when it first appears or changes."""

    def __init__(self, skipped, verbose: int):
        super().__init__()
        self.skipped, self.verbose = skipped, verbose
        self.seen = {"train": 0, "eval": 0}
        self.named: set[str] = set()
        self.told = {"train": 0, "eval": 0}

    def on_epoch_begin(self, epoch, logs=None):
        self.skipped.reset_positions()

    def on_epoch_end(self, epoch, logs=None):
        for part in ("train", "eval"):
            total = int(getattr(self.skipped, part).numpy())
            new, self.seen[part] = total - self.seen[part], total
            if logs is not None:
                logs[f"skipped_{part}_images"] = float(new)
            if new and self.verbose:
                self._tell(part, epoch, new)

    def _tell(self, part: str, epoch: int, count: int) -> None:
        names = self.skipped.names(part, epoch)
        if names is None:
            if count != self.told[part]:
                self.told[part] = count
                print(f"\nWarning: epoch {epoch + 1} skipped {count} {part} image(s) that could not be decoded "
                      f"(corrupt, not JPEG/PNG/GIF/BMP, or above --max_image_pixels); each epoch's count is logged as skipped_{part}_images.")
            return
        for name in sorted(set(names) - self.named):
            print(f"\nWarning: skipped {name}: it could not be decoded (corrupt, not JPEG/PNG/GIF/BMP, or above "
                  "--max_image_pixels). It is "
                  f"left out of every epoch (logged as skipped_{part}_images); replace or delete it.")
        self.named.update(names)
