"""Input pipelines: per-stage sizes and augmentation, determinism, skipped images, evaluation crop."""

import numpy as np
import pytest
import tensorflow as tf

from efficientnet_keras.training import data, sources
from efficientnet_keras.training.augment import StageAugmenters
from efficientnet_keras.training.stages import Stage, StageState
from efficientnet_keras.transforms import LEGACY_V1, OFFICIAL_V2, center_crop, eval_transform
from conftest import jpeg_claiming, oversized_png, real_photos
from tfds_fixture import write_tfds_dataset

STAGES = [Stage(32, 0, 0, 0.1), Stage(48, 10, 0.8, 0.2)]


@pytest.fixture(scope="module")
def digits():
    return data.load_source("digits")


def _first(ds):
    return next(iter(ds))


def test_stage_switch_changes_size_augmentation_and_mixup(digits):
    train, _, info = digits
    state = StageState()
    ds = data.make_train_dataset(train, info, STAGES, state, batch_size=16, seed=1)
    state.set(0, 0)
    x0, y0 = _first(ds)
    assert x0.shape == (16, 32, 32, 3) and y0.shape == (16, 10)
    np.testing.assert_allclose(tf.reduce_sum(y0, 1), 1.0)
    assert set(np.unique(y0.numpy())) <= {0.0, 1.0}  # stage 0: no mixup, one-hot labels
    state.set(1, 0)
    x1, y1 = _first(ds)
    assert x1.shape == (16, 48, 48, 3)
    assert len(set(np.round(y1.numpy().ravel(), 4))) > 2  # stage 1: mixup blends labels


def test_stage_batch_sizes(digits):
    """Each stage yields its own batch; the batch dimension is unknown so one traced step serves all stages."""
    train, _, info = digits
    state = StageState()
    stages = [Stage(32, 0, 0, 0.1, batch_size=48), Stage(48, 0, 0, 0.2)]
    ds = data.make_train_dataset(train, info, stages, state, batch_size=16, seed=1)
    assert ds.element_spec[0].shape.as_list() == [None, None, None, 3]
    state.set(0, 0)
    assert [x.shape[:2] for x, _ in ds] == [(48, 32)] * (train.num_examples // 48)
    state.set(1, 1)
    assert [x.shape[:2] for x, _ in ds] == [(16, 48)] * (train.num_examples // 16)


def test_randaugment_magnitude_is_observed(digits):
    """Same crops; only the stage's RandAugment differs, and it changes the pixels."""
    train, _, info = digits
    stages = [Stage(32, 0, 0, 0.1), Stage(32, 10, 0, 0.1)]
    state = StageState()
    ds = data.make_train_dataset(train, info, stages, state, batch_size=16, seed=3, deterministic=True)
    state.set(0, 0)
    plain, _ = _first(ds)
    state.set(1, 0)
    augmented, _ = _first(ds)
    assert plain.shape == augmented.shape
    assert float(tf.reduce_mean(tf.abs(plain - augmented))) > 1.0


def test_autoaugment_policy_is_applied_in_every_stage(digits):
    train, _, info = digits
    stages = [Stage(32, 0, 0, 0.1), Stage(32, 0, 0, 0.1)]
    state = StageState()
    kwargs = dict(batch_size=16, seed=3, deterministic=True)
    plain, _ = _first(data.make_train_dataset(train, info, stages, state, **kwargs))
    auto = data.make_train_dataset(train, info, stages, state, augmenters=StageAugmenters(stages, "autoaugment"),
                                   **kwargs)
    for stage in (0, 1):
        state.set(stage, 0)
        images, _ = _first(auto)
        changed = np.abs(images.numpy() - plain.numpy()).reshape(16, -1).max(axis=1) > 1  # > uint8 rounding
        assert 4 <= changed.sum() < 16  # each op has its probability; some images keep their pixels


def test_epoch_seeded_order_is_reproducible_and_changes_per_epoch(digits):
    train, _, info = digits
    state = StageState()
    ds = data.make_train_dataset(train, info, STAGES, state, batch_size=16, seed=5, deterministic=True,
                                 augmenters=StageAugmenters(STAGES))

    def batch(epoch):  # augmentation is stateless in (seed, epoch, position): nothing to reseed
        state.set(1, epoch)
        return _first(ds)

    a, b, c = batch(2), batch(3), batch(2)
    np.testing.assert_array_equal(a[0], c[0])
    np.testing.assert_array_equal(a[1], c[1])
    assert not np.array_equal(a[0], b[0])


def test_eval_center_crop():
    image = np.zeros((100, 200, 3), np.uint8)
    image[:, 50:150] = 255  # the central square is white
    out = center_crop(image, 64, crop_fraction=0.875)
    assert out.shape == (64, 64, 3) and float(tf.reduce_min(out)) > 250
    info = data.DatasetInfo("x", 2, 1, 1)
    ds = data.make_eval_dataset(data.Split(3, arrays=(np.stack([image] * 3), np.array([0, 1, 1]))), info, 32, batch_size=2)
    shapes = [x.shape for x, _ in ds]
    assert shapes == [(2, 32, 32, 3), (1, 32, 32, 3)]


def test_image_folder(tmp_path):
    from PIL import Image

    for split in ("train", "test"):
        for label, color in (("red", (255, 0, 0)), ("blue", (0, 0, 255))):
            folder = tmp_path / split / label
            folder.mkdir(parents=True)
            for i in range(2):
                Image.new("RGB", (40, 30), color).save(folder / f"{i}.png")
    train, test, info = data.load_source(str(tmp_path))
    assert info.num_classes == 2 and info.num_train == 4 and info.num_eval == 4
    state = StageState()
    batch, labels = _first(data.make_train_dataset(train, info, [Stage(32, 0, 0, 0)], state, batch_size=4))
    assert batch.shape == (4, 32, 32, 3) and labels.shape == (4, 2)


# ---------------------------------------------------------------------------------------------- real images


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    """Real photos at varied sizes as JPEG, PNG, grayscale JPEG and CMYK JPEG, two classes, plus one corrupt and
    one truncated file in train/ and a corrupt one in test/."""
    from PIL import Image

    root = tmp_path_factory.mktemp("photos")
    sizes = [(500, 375), (333, 500), (640, 480), (97, 130), (256, 256), (375, 500)]
    formats = [("jpg", "RGB"), ("png", "RGB"), ("jpg", "L"), ("jpg", "CMYK"), ("png", "RGBA"), ("jpg", "RGB")]
    for split, count in (("train", 6), ("test", 3)):
        for label, photo in (("cat", real_photos()[0]), ("coffee", real_photos()[1])):
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(count):
                (ext, mode), size = formats[i], sizes[(i + len(split)) % len(sizes)]
                Image.fromarray(photo).resize(size).convert(mode).save(folder / f"{i}.{ext}")
    (root / "train" / "cat" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    good = (root / "train" / "coffee" / "0.jpg").read_bytes()
    (root / "train" / "coffee" / "truncated.jpg").write_bytes(good[:200])
    (root / "test" / "cat" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    return root


def test_image_folder_of_real_photos_skips_counts_and_names_corrupt_files(photo_folder):
    train, test, info = data.load_source(str(photo_folder))
    assert info.class_names == ("cat", "coffee") and (info.num_train, info.num_eval) == (14, 7)
    broken = sorted(str(photo_folder / "train" / p) for p in ("cat/corrupt.jpg", "coffee/truncated.jpg"))
    for cache_limit_mb in (0, 1024):  # streamed from files, and cached encoded in memory
        for seed in (2, 3):  # other orders, other positions: the names stay the files'
            skipped, state = data.SkippedImages(), StageState()
            ds = data.make_train_dataset(train, info, [Stage(64, 5, 0, 0.1)], state, batch_size=7, seed=seed,
                                         skipped=skipped, cache_limit_mb=cache_limit_mb)
            batches = list(ds)
            # 12 decodable images refilled to 14: the epoch keeps its 14 // 7 batches
            assert len(batches) == 2 and all(x.shape == (7, 64, 64, 3) and x.dtype == tf.float32 for x, _ in batches)
            assert int(skipped.train.numpy()) == 2  # the corrupt and the truncated file, counted once each
            assert sorted(skipped.names("train", 0)) == broken
            assert all(0 <= float(tf.reduce_min(x)) and float(tf.reduce_max(x)) <= 255 for x, _ in batches)
    evaluated = list(data.make_eval_dataset(test, info, 48, batch_size=4, skipped=skipped))
    assert sum(len(x) for x, _ in evaluated) == 6 and int(skipped.eval.numpy()) == 1
    assert skipped.names("eval", 0) == [str(photo_folder / "test" / "cat" / "corrupt.png")]


@pytest.mark.parametrize("preprocessing", [LEGACY_V1, OFFICIAL_V2], ids=lambda p: p.name)
def test_evaluation_batches_are_the_evaluation_transform_of_each_file(photo_folder, preprocessing):
    """Every decodable test image, in storage order, through the same transform as predict and serving take its
    bytes (JPEG, grayscale, CMYK, PNG, RGBA; the window decoded alone where the variant's code does so)."""
    _, test, info = data.load_source(str(photo_folder))
    paths, _ = test.files
    readable = [path for path in paths if not path.endswith("corrupt.png")]
    expected = np.stack([eval_transform(tf.io.read_file(path), 96, preprocessing).numpy() for path in readable])
    batches = data.make_eval_dataset(test, info, 96, batch_size=4, preprocessing=preprocessing)
    np.testing.assert_array_equal(np.concatenate([x.numpy() for x, _ in batches]), expected)


def test_an_evaluation_crop_outside_0_1_is_refused_when_the_dataset_is_made(photo_folder):
    _, test, info = data.load_source(str(photo_folder))
    with pytest.raises(ValueError, match=r"crop_fraction must be in \(0, 1\], got 1.5\."):
        data.make_eval_dataset(test, info, 96, batch_size=4, crop_fraction=1.5)


def test_an_epoch_that_skips_images_is_refilled_from_its_own_order(photo_folder):
    """The refill repeats the epoch's first decodable images (their crops too): the same epoch twice is the same."""
    train, _, info = data.load_source(str(photo_folder))

    def epoch():
        ds = data.make_train_dataset(train, info, [Stage(32, 0, 0, 0.1)], StageState(), batch_size=14, seed=5)
        (images, _), = list(ds)  # 14 examples, 2 undecodable: one full batch
        return images.numpy()

    images = epoch()
    assert np.array_equal(images, epoch())
    assert np.array_equal(images[12:], images[:2])  # the two missing places hold the epoch's first two images


def test_the_batch_check_counts_decodable_images_and_names_the_others(photo_folder):
    train, _, _ = data.load_source(str(photo_folder))
    data.check_batch_fits(train, 12)  # 12 of the 14 decode
    with pytest.raises(ValueError) as raised:
        data.check_batch_fits(train, 13)
    message = str(raised.value)
    assert message.startswith("batch_size=13 is larger than the 12 decodable training images (2 of 14 could not")
    assert str(photo_folder / "train" / "cat" / "corrupt.jpg") in message and "lower --batch_size" in message


def test_fused_jpeg_decode_and_crop_equals_decode_then_crop():
    photo = real_photos()[2]
    encoded = tf.io.encode_jpeg(photo, quality=90)
    seed = tf.constant([3, 4], tf.int64)
    fused = data.decode_and_random_crop(encoded, seed)
    decoded = tf.io.decode_jpeg(encoded, channels=3)
    begin, size = data._crop_window(tf.shape(decoded), seed, (0.08, 1.0), data.LEGACY_V1)
    window = tf.slice(decoded, begin, size)
    # The same window; libjpeg's chroma upsampling at the window's edge differs by a few levels.
    assert fused.shape == window.shape
    assert float(tf.reduce_mean(tf.abs(tf.cast(fused, tf.float32) - tf.cast(window, tf.float32)))) < 1.0
    png = data.decode_and_random_crop(tf.io.encode_png(photo), seed)  # the general decoder: same window
    np.testing.assert_array_equal(png, tf.slice(tf.constant(photo), begin, size))


def test_tfds_shards_are_read_encoded_in_a_per_epoch_order(tmp_path):
    builder = write_tfds_dataset(tmp_path)
    train, _, info = sources._tfds(builder.name, str(tmp_path), "train", None)
    assert train.records is not None and info.num_train == 64 and info.num_eval == 16
    assert len(builder.info.splits["train"].file_instructions) == 4

    def labels_of(epoch, cache_limit_mb, context=None):
        state = StageState()
        state.set(0, epoch)
        ds = data.make_train_dataset(train, info, [Stage(32, 0, 0, 0)], state, batch_size=8, seed=1,
                                     shuffle_buffer=16, cache_limit_mb=cache_limit_mb, input_context=context)
        return [int(i) for x, _ in ds for i in tf.round(x[:, 16, 16, 0])]  # each image's gray value is its index

    for cache in (0, 1024):  # shards streamed and shuffled per epoch; encoded bytes cached
        first, again, second = labels_of(0, cache), labels_of(0, cache), labels_of(1, cache)
        assert first == again and first != second and sorted(first) == list(range(64))
    hosts = [labels_of(0, 0, tf.distribute.InputContext(2, i, 2)) for i in range(2)]
    assert sorted(hosts[0] + hosts[1]) == list(range(64))  # two hosts: disjoint shares of the shards


def test_static_eval_batches_count_every_example_once(digits):
    _, test, info = digits
    test = data.limit(test, 50)
    for replicas in (2, 4):  # one and two replicas per host
        hosts = [list(data.make_eval_dataset(test, info, 32, batch_size=16, static_batches=True,
                                             input_context=tf.distribute.InputContext(2, i, replicas)))
                 for i in range(2)]
        size = 16 // replicas
        assert all(x.shape == (size, 32, 32, 3) and w.shape == (size,) for host in hosts for x, _, w in host)
        # ceil(50 / 16) = 4 global steps on every host, each taking one batch per replica of the host.
        assert [len(host) for host in hosts] == [4 * replicas // 2] * 2
        assert sum(float(tf.reduce_sum(w)) for host in hosts for _, _, w in host) == 50


def test_images_above_the_pixel_limit_are_skipped_and_counted_without_being_decoded(tmp_path):
    """A folder holding a 20000x20000 PNG (1.2 GB decoded) and a JPEG claiming 30000x30000: both pipelines skip
    and count them before decoding (the random-crop JPEG path included), and name them."""
    from PIL import Image

    for split in ("train", "test"):
        for label, photo in (("cat", real_photos()[0]), ("coffee", real_photos()[1])):
            folder = tmp_path / split / label
            folder.mkdir(parents=True)
            for i in range(2):
                Image.fromarray(photo).resize((120 + 10 * i, 90)).save(folder / f"{i}.jpg")
        (tmp_path / split / "cat" / "huge.png").write_bytes(oversized_png())
        (tmp_path / split / "coffee" / "claims.jpg").write_bytes(jpeg_claiming())
    train, test, info = data.load_source(str(tmp_path))
    hostile = sorted(str(tmp_path / "train" / p) for p in ("cat/huge.png", "coffee/claims.jpg"))
    for random_crop in (True, False):
        skipped = data.SkippedImages()
        batches = list(data.make_train_dataset(train, info, [Stage(32, 0, 0, 0.1)], StageState(), batch_size=3,
                                               skipped=skipped, random_crop=random_crop))
        assert [tuple(x.shape) for x, _ in batches] == [(3, 32, 32, 3)] * 2  # 4 decodable images refilled to 6
        assert int(skipped.train.numpy()) == 2 and sorted(skipped.names("train", 0)) == hostile
    evaluated = list(data.make_eval_dataset(test, info, 32, batch_size=4, skipped=skipped))
    assert sum(len(x) for x, _ in evaluated) == 4 and int(skipped.eval.numpy()) == 2
    with pytest.raises(ValueError, match=r"larger than the 4 decodable training images \(2 of 6 could not"):
        data.check_batch_fits(train, 5)
    skipped = data.SkippedImages()
    list(data.make_eval_dataset(test, info, 32, batch_size=4, skipped=skipped, max_pixels=100))  # every photo
    assert int(skipped.eval.numpy()) == 6
