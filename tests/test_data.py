"""Input pipelines: sources, per-stage sizes and augmentation, determinism, evaluation crop."""

import numpy as np
import pytest
import tensorflow as tf

from efficientnet_keras.training import data
from efficientnet_keras.training.data import Stage, StageState

STAGES = [Stage(32, 0, 0, 0.1), Stage(48, 10, 0.8, 0.2)]


@pytest.fixture(scope="module")
def digits():
    return data.load_source("digits")


def _first(ds):
    return next(iter(ds))


def test_embedded_digits_are_real_and_split(digits):
    (x_train, y_train), (x_eval, y_eval), info = digits
    assert info.num_classes == 10 and info.num_train + info.num_eval == 1797
    assert x_train.dtype == np.uint8 and x_train.shape[1:] == (8, 8, 1) and x_train.max() == 255
    assert set(np.unique(y_eval)) == set(range(10))


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
    assert [x.shape[:2] for x, _ in ds] == [(48, 32)] * (len(train[1]) // 48)
    state.set(1, 1)
    assert [x.shape[:2] for x, _ in ds] == [(16, 48)] * (len(train[1]) // 16)


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


def test_epoch_seeded_order_is_reproducible_and_changes_per_epoch(digits):
    train, _, info = digits
    state = StageState()
    augmenters = data.StageAugmenters(STAGES, seed=5)
    ds = data.make_train_dataset(train, info, STAGES, state, batch_size=16, seed=5, deterministic=True,
                                 augmenters=augmenters)

    def batch(epoch):
        state.set(1, epoch)
        augmenters.reseed(5, epoch)
        return _first(ds)

    a, b, c = batch(2), batch(3), batch(2)
    np.testing.assert_array_equal(a[0], c[0])
    np.testing.assert_array_equal(a[1], c[1])
    assert not np.array_equal(a[0], b[0])


def test_eval_center_crop():
    image = np.zeros((100, 200, 3), np.uint8)
    image[:, 50:150] = 255  # the central square is white
    out = data.center_crop(image, 64, crop_fraction=0.875)
    assert out.shape == (64, 64, 3) and float(tf.reduce_min(out)) > 250
    info = data.DatasetInfo("x", 2, 1, 1)
    ds = data.make_eval_dataset((np.stack([image] * 3), np.array([0, 1, 1])), info, 32, batch_size=2)
    shapes = [x.shape for x, _ in ds]
    assert shapes == [(2, 32, 32, 3), (1, 32, 32, 3)]


def test_fashion_mnist_from_debian_files():
    if not tf.io.gfile.exists(data.FASHION_MNIST_DIR):
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    (x, y), (xt, yt), info = data.load_source("fashion_mnist")
    assert x.shape == (60000, 28, 28, 1) and xt.shape == (10000, 28, 28, 1)
    assert info.num_classes == 10 and np.bincount(y).tolist() == [6000] * 10


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


@pytest.mark.parametrize(
    "name, kwargs, message",
    [
        ("no_such_dataset_xyz", {}, "Unknown dataset 'no_such_dataset_xyz'"),
        ("digits", {"data_dir": "/nonexistent/dir"}, "data_dir '/nonexistent/dir' does not exist"),
    ],
)
def test_bad_sources(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        data.load_source(name, **kwargs)


def test_image_folder_needs_splits(tmp_path):
    (tmp_path / "cats").mkdir()
    with pytest.raises(ValueError, match="needs a 'train' subfolder"):
        data.load_source(str(tmp_path))
