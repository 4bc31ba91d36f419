"""Input pipelines at ImageNet scale, training and evaluation, over the datasets of ``sources`` (tfds, image
folders, embedded), read the way the official code reads ImageNet.

- Images stay encoded until the map that needs them: tfds with ``SkipDecoding``, image folders as files. A JPEG
  is decoded as the variant's official code decodes it (``Preprocessing.decode_window``): V1 and Lite decode only
  the crop window (``decode_and_crop_jpeg``, training and evaluation), V2 decodes the whole image, then crops;
  PNG/GIF/BMP go through the general decoder; grayscale and CMYK become RGB. Each image is resized to the stage's
  size before batching and augmented in float32; the model casts at its input (mixed precision).
- Order: every epoch is a pure function of (seed, epoch). Files (image folders, small or in-memory datasets:
  each example) are permuted exactly with ``index_shuffle``; tfds shards are permuted per epoch and their examples
  permuted within windows of ``shuffle_buffer`` encoded examples by keys drawn from (seed, epoch). A resumed run
  sees the same order as an uninterrupted one.
- Memory: decoded training images are never cached. Encoded bytes are cached in memory when the split's encoded
  size is at most ``cache_limit_mb`` (default 1 GiB); a larger split streams from storage every epoch.
- Per host: under multi-worker and TPU strategies each input pipeline (``tf.distribute.InputContext``) reads its
  own share (shards of files, else of examples) and batches per replica.
- Corrupt images are skipped, counted and, in image folders, named (``skipped.py``), never a crash mid-epoch; an
  epoch that skipped images is filled back to its full length from its own order.
- Evaluation can emit static batch shapes (TPU): the last batch is padded with examples of weight 0 and every
  host yields the same number of batches, so each real example counts exactly once.

Progressive learning changes the image size, RandAugment magnitude and mixup/cutmix strength at stage boundaries:
the pipeline reads the stage from a ``StageState`` each time an epoch's iterator starts (Keras' ``fit`` makes one
per epoch, after ``on_epoch_begin``), so one dataset serves the whole run.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from efficientnet_keras import transforms
from efficientnet_keras.training import sources
from efficientnet_keras.training.augment import StageAugmenters
from efficientnet_keras.training.randaugment import cutout
from efficientnet_keras.training.skipped import SkippedImages, refill, skip_undecodable, undecodable_in
from efficientnet_keras.training.sources import (EMBEDDED, FASHION_MNIST_DIR, DatasetInfo, Split, limit,
                                                 load_source)
from efficientnet_keras.training.stages import Stage, StageState
from efficientnet_keras.transforms import (IMAGE_EXTENSIONS, LEGACY_V1, Preprocessing, central_window, decode_rgb,
                                          resize, to_rgb_float)

# DatasetInfo, Split, load_source, limit, EMBEDDED and FASHION_MNIST_DIR live in ``sources``; named here too, as
# the pipelines' inputs.
__all__ = ["DatasetInfo", "Split", "Stage", "StageState", "SkippedImages", "load_source", "limit",
           "make_train_dataset", "make_eval_dataset", "EMBEDDED", "FASHION_MNIST_DIR", "IMAGE_EXTENSIONS"]

# ---------------------------------------------------------------------------------------------- reading


def _epoch_examples(split: Split, cached, epoch_seed, context, shuffle_buffer: int, deterministic: bool,
                    read: bool = True):
    """This host's examples of one epoch, (key, image or encoded bytes, label), in an order fixed by ``epoch_seed``.
    ``key`` seeds the example's random crop: its position in the epoch over all hosts where the order is a
    permutation (so a multi-worker run crops as one device does), else its position on this host. ``read=False``:
    files as their paths (the same order, to name a skipped file)."""
    pipelines = context.num_input_pipelines if context else 1
    index = context.input_pipeline_id if context else 0
    if cached is not None:  # the whole split in memory: a full shuffle
        ds = cached.shard(pipelines, index) if pipelines > 1 else cached
        return _keyed(_shuffle_windows(ds, split.num_examples, epoch_seed))
    if split.records is not None:
        ds = split.records(None if split.take else epoch_seed, context)
        ds = ds.take(split.take) if split.take else ds
        return _keyed(_shuffle_windows(ds, shuffle_buffer, epoch_seed))
    # Random access (arrays in memory, files): an exact permutation of the examples.
    count = split.num_examples
    order = tf.data.Dataset.range(count).map(lambda i: (i, tf.random.experimental.index_shuffle(i, epoch_seed,
                                                                                                   count - 1)))
    order = order.shard(pipelines, index) if pipelines > 1 else order
    parallel = None if deterministic else tf.data.AUTOTUNE
    if split.arrays is not None:
        images, labels = (tf.constant(a) for a in split.arrays)
        return order.map(lambda key, j: (key, tf.gather(images, j), tf.gather(labels, j)))
    paths, labels = (tf.constant(a) for a in split.files)
    load = tf.io.read_file if read else tf.identity
    return order.map(lambda key, j: (key, load(tf.gather(paths, j)), tf.gather(labels, j)),
                     num_parallel_calls=parallel)


def _keyed(ds):
    return ds.enumerate().map(lambda key, example: (key, *example))


def _shuffle_windows(ds, window: int, epoch_seed):
    """Permute each window of ``window`` encoded examples by keys drawn from (seed, epoch, position): stateless, so
    the order is a pure function of (seed, epoch). ``Dataset.shuffle`` takes no per-epoch seed tensor once a global
    seed is set (its seed handling compares seeds in Python), hence this. Windows hold encoded bytes, never decoded
    images (those differ in shape)."""
    key_seed = epoch_seed[0] * 1_000_003 + epoch_seed[1]
    ds = ds.enumerate().map(lambda i, example: (
        tf.random.stateless_uniform([], tf.stack([key_seed, i])), example))
    return ds.batch(window).map(_sort_window).unbatch()


def _sort_window(keys, examples):
    order = tf.argsort(keys)
    return tf.nest.map_structure(lambda t: tf.gather(t, order), examples)


# ---------------------------------------------------------------------------------------------- transforms


def _crop_window(shape, seed, area_range, preprocessing: Preprocessing, size=None):
    """(begin, size) of the random crop of an image of ``shape``; with the legacy fallback and a target ``size``,
    the central size/(size+32) crop where the sampled box is the whole image (preprocess_legacy)."""
    p = preprocessing
    begin, crop, _ = tf.image.stateless_sample_distorted_bounding_box(
        shape, bounding_boxes=tf.constant([0.0, 0.0, 1.0, 1.0], shape=[1, 1, 4]), seed=seed,
        min_object_covered=p.min_object_covered, aspect_ratio_range=p.aspect_ratio_range, area_range=area_range,
        max_attempts=p.max_attempts, use_image_if_no_bounding_boxes=True)
    if not p.center_crop_fallback or size is None:
        return begin, crop
    shape = tf.cast(shape, tf.int32)
    # _at_least_x_are_equal(shape, decoded crop shape, 3): the box is the whole image (its size's channel is -1)
    whole = tf.reduce_all(tf.equal(crop[:2], shape[:2]))
    fraction = (tf.constant(p.eval_crop, tf.float32) if p.eval_crop
                else tf.cast(size, tf.float32) / tf.cast(size + p.eval_padding, tf.float32))
    # _decode_and_center_crop: offsets rounded up, whatever the evaluation of this dataset does
    top, left, side = central_window(shape[0], shape[1], fraction, round_offset_up=True)
    centre_begin = tf.stack([top, left, 0])
    centre = tf.stack([side, side, -1])
    return tf.where(whole, centre_begin, begin), tf.where(whole, centre, crop)


def decode_and_random_crop(image, seed, area_range=None, preprocessing: Preprocessing = LEGACY_V1,
                           size=None, max_pixels: int | None = transforms.MAX_PIXELS) -> tf.Tensor:
    """The official random crop (``sample_distorted_bounding_box`` with the variant's area range, minimum coverage,
    aspect ratios and attempts), stateless in ``seed`` ([2]); uint8 RGB out. ``area_range`` overrides the
    variant's. ``size``: the size the crop will be resized to, for the legacy central-crop fallback.

    With the variant's ``decode_window``, an encoded JPEG is decoded and cropped in one op (only the window is
    decoded); otherwise, and for other encodings, the image is decoded whole and cropped; decoded images are
    cropped. Encoded images above ``max_pixels`` fail (``transforms.check_pixels``): the pipelines skip and count
    them."""
    p = preprocessing
    window = lambda shape: _crop_window(shape, seed, area_range or p.train_area, p, size)  # noqa: E731
    image = tf.convert_to_tensor(image)
    if image.dtype != tf.string:
        image = tf.cast(to_rgb_float(image), image.dtype)
        begin, size = window(tf.shape(image))
        return tf.slice(image, begin, size)

    def jpeg():
        def crop_window(shape):
            begin, size = window(shape)
            return tf.stack([begin[0], begin[1], size[0], size[1]])
        return transforms.decode_jpeg_window(image, crop_window, max_pixels)

    def other():
        decoded = decode_rgb(image, max_pixels)
        begin, size = window(tf.shape(decoded))
        return tf.slice(decoded, begin, size)

    if not p.decode_window:
        return tf.ensure_shape(other(), [None, None, 3])
    return tf.ensure_shape(tf.cond(tf.io.is_jpeg(image), jpeg, other), [None, None, 3])


def inception_crop(image, size, seed, area_range=None, preprocessing: Preprocessing = LEGACY_V1) -> tf.Tensor:
    """Random resized crop + horizontal flip: float32 RGB [size, size, 3] in [0, 255]."""
    return _resize_and_flip(decode_and_random_crop(image, seed, area_range, preprocessing, size), size, seed,
                            preprocessing.resize)


def _resize_and_flip(crop, size, seed, method="bilinear") -> tf.Tensor:
    # Clipped in training whatever the method: the official V1 code clips before its uint8 augmentation.
    image = resize(crop, size, method)
    image = tf.image.stateless_random_flip_left_right(image, seed=seed + 1)
    return tf.ensure_shape(tf.clip_by_value(image, 0.0, 255.0), [None, None, 3])


def finetune_cutout_op(image, seed) -> tf.Tensor:
    """The official fine-tuning Cutout (``preprocess_for_finetune``, augname 'ft'): a square of half side
    size // 4 at a uniform centre, filled with uniform noise. The official noise is uniform in [0, 1) on its
    [-1, 1] input scale, i.e. [127.5, 255) in pixels."""
    size = tf.shape(image)[0]
    draws = tf.random.stateless_uniform([2], tf.random.experimental.stateless_fold_in(seed, 5))
    center = tf.cast(tf.floor(draws * tf.cast(tf.shape(image)[:2], tf.float32)), tf.int32)
    noise = tf.random.stateless_uniform(tf.shape(image), tf.random.experimental.stateless_fold_in(seed, 6))
    return cutout(image, size // 4, center, replace=(noise * 0.5 + 0.5) * 255.0)


def _options(deterministic: bool) -> tf.data.Options:
    """Element order is always deterministic (parallel maps keep it), so the order is the pure function of
    (seed, epoch) that resume relies on; ``deterministic`` also runs maps sequentially, for bit-identical random
    augmentation."""
    options = tf.data.Options()
    options.deterministic = True
    options.experimental_optimization.map_parallelization = not deterministic
    return options


def _per_replica(batch: int, context) -> int:
    return context.get_per_replica_batch_size(batch) if context else batch


def make_train_dataset(
    split: Split,
    info: DatasetInfo,
    stages: Sequence[Stage],
    state: StageState,
    batch_size: int,
    seed: int = 0,
    deterministic: bool = False,
    augmenters=None,
    shuffle_buffer: int = 2048,
    cache_limit_mb: float = sources.CACHE_LIMIT_MB,
    skipped: SkippedImages | None = None,
    input_context: tf.distribute.InputContext | None = None,
    preprocessing: Preprocessing = LEGACY_V1,
    random_crop: bool = True,
    finetune_cutout: bool = False,
    max_pixels: int | None = transforms.MAX_PIXELS,
) -> tf.data.Dataset:  # ~65 lines past its signature: the per-epoch closures share its seeds
    """Epochs of augmented, batched ``(float32 images [0, 255], one-hot labels)`` at the current stage.

    Per image: the variant's official random crop (``random_crop=False``: the whole image, as the official
    fine-tuning), resize, flip, the stage's RandAugment, and (``finetune_cutout``) the fine-tuning Cutout; per
    batch: the stage's mixup / CutMix. The batch is the stage's ``batch_size`` where set, else ``batch_size``
    (global; per replica under an ``input_context``). Where stages differ in batch, the batch dimension is left
    unknown so that one traced train step serves every stage. Images above ``max_pixels`` are skipped and
    counted, as undecodable ones."""
    batches = [_per_replica(s.batch_size or batch_size, input_context) for s in stages]
    if min(batches) < 1:
        raise ValueError(f"batch sizes must be positive, got {batches}.")
    sizes = tf.constant([s.image_size for s in stages], tf.int32)
    stage_batches = tf.constant(batches, tf.int64)
    augmenters = augmenters or StageAugmenters(stages)
    skipped = skipped or SkippedImages()
    parallel = None if deterministic else tf.data.AUTOTUNE
    num_classes = info.num_classes
    cached = sources.cached(split, cache_limit_mb)
    host = input_context.input_pipeline_id if input_context else 0
    preprocessing = sources.for_dataset(info, preprocessing)

    def epoch_pipeline(stage, epoch, skipped_before):
        size = sizes[tf.cast(stage, tf.int32)]
        epoch_seed = tf.stack([tf.constant(seed, tf.int64), epoch])

        def element_seed(position):
            return tf.stack([tf.cast(seed, tf.int64) * 7919 + epoch, position])

        def decode(key, image, label):
            if not random_crop:
                return key, transforms.decode_whole(image, max_pixels), label
            return key, decode_and_random_crop(image, element_seed(key), None, preprocessing, size, max_pixels), label

        def transform(key, crop, label):
            element = element_seed(key)
            # preprocess_for_finetune resizes the whole image with tf.image.resize's default, bilinear.
            image = _resize_and_flip(crop, size, element, preprocessing.resize if random_crop else "bilinear")
            image = augmenters.augment(stage, image, tf.random.experimental.stateless_fold_in(element, 2))
            if finetune_cutout:
                image = finetune_cutout_op(image, element)
            return image, label

        def mix(index, batch):
            images, labels = batch
            # Per batch and host: hosts mix their own batches (as the official per-host input does).
            fold = tf.random.experimental.stateless_fold_in
            batch_seed = fold(fold(tf.stack([tf.cast(seed, tf.int64) * 7919 + epoch, -1]), host), index)
            return augmenters.mix(stage, images, sources.target(labels, num_classes), batch_seed)

        def examples():
            return _epoch_examples(split, cached, epoch_seed, input_context, shuffle_buffer, deterministic)

        ds = skip_undecodable(examples(), decode, skipped.train, parallel, skipped.positions["train"])
        ds = ds.concatenate(refill(examples, decode, skipped, skipped_before, parallel))
        ds = ds.map(transform, num_parallel_calls=parallel)
        batch = batches[0] if len(set(batches)) == 1 else stage_batches[tf.cast(stage, tf.int32)]
        return ds.batch(batch, drop_remainder=True).enumerate().map(mix, num_parallel_calls=parallel)

    ds = tf.data.Dataset.range(1).map(lambda _: (state.stage.read_value(), state.epoch.read_value(),
                                                 skipped.train.read_value()))
    ds = ds.flat_map(epoch_pipeline).prefetch(tf.data.AUTOTUNE)
    if split.files is not None:
        skipped.namers["train"] = lambda epoch, positions: _train_names(
            split, cached is not None, (seed, epoch), input_context, shuffle_buffer, positions)
    return ds.with_options(_options(deterministic))


def _train_names(split: Split, was_cached: bool, epoch_seed, context, shuffle_buffer: int, positions) -> list[str]:
    """Paths at ``positions`` of an epoch's order (the files split's own, with paths in place of bytes)."""
    paths = tf.data.Dataset.from_tensor_slices(split.files) if was_cached else None
    ds = _epoch_examples(split, paths, tf.constant(epoch_seed, tf.int64), context, shuffle_buffer, True, read=False)
    wanted = tf.constant(positions, tf.int64)
    ds = ds.enumerate().filter(lambda i, _: tf.reduce_any(tf.equal(i, wanted))).map(lambda _, example: example[1])
    return [path.decode() for path in ds.as_numpy_iterator()]


def check_batch_fits(split: Split, batch_size: int, max_pixels: int | None = transforms.MAX_PIXELS) -> None:
    """Refuse a batch larger than the decodable images of a small image folder (under two batches: where a skip
    can leave less than one batch); its undecodable files are named. Larger splits are not read here: an epoch
    that skips images is refilled from its own order."""
    if split.files is None or split.num_examples >= 2 * batch_size:
        return
    bad = undecodable_in(_keyed(sources.in_storage_order(split)),
                         lambda key, image, label: (tf.shape(transforms.decode_whole(image, max_pixels)), label))
    if split.num_examples - len(bad) < batch_size:
        names = ", ".join(sources.storage_names(split, None, bad))
        raise ValueError(f"batch_size={batch_size} is larger than the {split.num_examples - len(bad)} decodable "
                         f"training images ({len(bad)} of {split.num_examples} could not be decoded: {names}); "
                         "lower --batch_size, or replace those files.")


def make_eval_dataset(split: Split, info: DatasetInfo, image_size: int, batch_size: int,
                      crop_fraction: float | None = None, static_batches: bool = False,
                      cache_limit_mb: float = sources.CACHE_LIMIT_MB, skipped: SkippedImages | None = None,
                      input_context: tf.distribute.InputContext | None = None,
                      preprocessing: Preprocessing = LEGACY_V1,
                      max_pixels: int | None = transforms.MAX_PIXELS) -> tf.data.Dataset:
    """Evaluation batches ``(images, one-hot labels)`` in storage order, every example once, through the variant's
    official evaluation transform (``transforms.eval_transform``; ``crop_fraction`` overrides its crop).

    ``static_batches`` (TPU): every batch has ``batch_size`` rows (the last padded with weight-0 examples) and
    every host the same number of batches; elements are then ``(images, labels, weights)``."""
    num_classes = info.num_classes
    skipped = skipped or SkippedImages()
    cached = sources.cached(split, cache_limit_mb)
    ds = cached if cached is not None else sources.in_storage_order(split)
    pipelines = input_context.num_input_pipelines if input_context else 1
    if pipelines > 1:
        ds = ds.shard(pipelines, input_context.input_pipeline_id)
    batch = _per_replica(batch_size, input_context)
    crop_fraction, preprocessing = sources.eval_settings(info, preprocessing, crop_fraction)
    fraction = transforms.eval_crop_fraction(image_size, preprocessing, crop_fraction)

    def decode(_, image, label):  # images above max_pixels are skipped and counted, as undecodable ones
        return transforms.central_region(image, fraction, preprocessing.round_offset_up, max_pixels,
                                         preprocessing.decode_window), label

    if split.files is not None:
        skipped.namers["eval"] = lambda _, positions: sources.storage_names(split, input_context, positions)
    ds = skip_undecodable(_keyed(ds), decode, skipped.eval, tf.data.AUTOTUNE, skipped.positions["eval"]).map(
        lambda region, label: (transforms.center_crop(region, image_size, None, preprocessing.resize),
                               sources.target(label, num_classes)),
        num_parallel_calls=tf.data.AUTOTUNE)
    if not static_batches:
        ds = ds.batch(batch)
        if split.arrays is not None and pipelines == 1:  # nothing to skip: the length is known, so state it
            ds = ds.apply(tf.data.experimental.assert_cardinality(-(-split.num_examples // batch)))
        return ds.prefetch(tf.data.AUTOTUNE)
    ds = ds.map(lambda x, y: (x, y, tf.constant(1.0))).batch(batch)
    blank = (tf.zeros([image_size, image_size, 3]), tf.zeros([num_classes]), tf.constant(0.0))

    def pad(x, y, w):
        missing = batch - tf.shape(x)[0]
        pads = [tf.repeat(b[None], missing, axis=0) for b in blank]
        return tuple(tf.ensure_shape(tf.concat([a, p], 0), [batch, *a.shape[1:]]) for a, p in zip((x, y, w), pads))

    # Every host yields the same number of batches (a TPU step runs on all of them; each takes one per replica of
    # the host); extra ones weigh 0.
    replicas = input_context.num_replicas_in_sync if input_context else 1
    num_batches = -(-split.num_examples // (batch * replicas)) * (replicas // pipelines)
    ds = ds.map(pad).concatenate(tf.data.Dataset.from_tensors(tuple(b[None] for b in blank)).map(pad).repeat())
    return ds.take(num_batches).prefetch(tf.data.AUTOTUNE)
