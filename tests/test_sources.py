"""Datasets as the pipelines read them: embedded digits, Fashion-MNIST from Debian's files, image folders, tfds
datasets (with their splits and presets), the errors for a bad source, and the transform a dataset calls for."""

import re

import numpy as np
import pytest
import tensorflow as tf

from efficientnet_keras.training import sources
from efficientnet_keras.transforms import LEGACY_V1
from tfds_fixture import write_tfds_dataset


@pytest.fixture(scope="module")
def digits():
    return sources.load_source("digits")


def test_embedded_digits_are_real_and_split(digits):
    train, test, info = digits
    (x_train, y_train), (x_eval, y_eval) = train.arrays, test.arrays
    assert info.num_classes == 10 and info.num_train + info.num_eval == 1797
    assert x_train.dtype == np.uint8 and x_train.shape[1:] == (8, 8, 1) and x_train.max() == 255
    assert set(np.unique(y_eval)) == set(range(10))


def test_fashion_mnist_from_debian_files():
    if not tf.io.gfile.exists(sources.FASHION_MNIST_DIR):
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    train, test, info = sources.load_source("fashion_mnist")
    (x, y), (xt, yt) = train.arrays, test.arrays
    assert x.shape == (60000, 28, 28, 1) and xt.shape == (10000, 28, 28, 1)
    assert info.num_classes == 10 and np.bincount(y).tolist() == [6000] * 10


@pytest.mark.parametrize(
    "name, kwargs, message",
    [
        ("no_such_dataset_xyz", {}, "Unknown dataset 'no_such_dataset_xyz'"),
        ("/nonexistent/photos", {}, "Dataset folder '/nonexistent/photos' does not exist; an image folder is "
                                    "root/train/<class>/<image> (local or gs://)."),
        ("digits", {"data_dir": "/nonexistent/dir"}, "data_dir '/nonexistent/dir' does not exist"),
    ],
)
def test_bad_sources(name, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        sources.load_source(name, **kwargs)


def test_image_folder_needs_splits(tmp_path):
    (tmp_path / "cats").mkdir()
    with pytest.raises(ValueError, match="needs a 'train' subfolder"):
        sources.load_source(str(tmp_path))


def test_missing_split_and_unprepared_data_dir(tmp_path):
    builder = write_tfds_dataset(tmp_path / "tfds", num_examples=8, num_shards=1)
    with pytest.raises(ValueError, match="has no split 'validation'; it has test, train"):
        sources.load_source(builder.name, str(tmp_path / "tfds"), eval_split="validation")
    with pytest.raises(ValueError, match=r"'mnist' is not prepared in data_dir=.*\(it holds: .*photo_shards\)"):
        sources.load_source("mnist", str(tmp_path / "tfds"))


def test_minival_presets_hold_out_the_first_examples_of_train(tmp_path, monkeypatch):
    """datasets.py: minival is held out of train; for tfds imagenet2012 the presets are train[:25021] and
    train[25021:] (the official 25,021 + 1,256,144), tried here on a prepared dataset with the same mechanism."""
    assert sources.TFDS_SPLIT_PRESETS["imagenet2012"] == {"minival": "train[:25021]",
                                                       "train_minus_minival": "train[25021:]"}
    builder = write_tfds_dataset(tmp_path)
    monkeypatch.setitem(sources.TFDS_SPLIT_PRESETS, builder.name,
                        {"minival": "train[:10]", "train_minus_minival": "train[10:]"})
    train, minival, _ = sources._tfds(builder.name, str(tmp_path), "train_minus_minival", "minival")
    assert (train.num_examples, minival.num_examples) == (54, 10)
    def indices(split):  # each image's gray level is its index
        return {int(round(float(tf.reduce_mean(tf.cast(tf.io.decode_jpeg(image), tf.float32)))))
                for image, _ in split.records(None, None)}

    assert indices(train).isdisjoint(indices(minival)) and len(indices(train) | indices(minival)) == 64


def test_low_resolution_datasets_adapt_the_official_photo_transform():
    """Digits crop from their own area range, centred exactly, half-pixel resize, no whole-image fallback; a photo
    dataset keeps the variant's transform untouched."""
    _, _, digits = sources.load_source("digits")
    adapted = sources.for_dataset(digits, LEGACY_V1)
    assert adapted.train_area == (0.5, 1.0) and adapted.resize == "bicubic"
    assert not adapted.center_crop_fallback and not adapted.round_offset_up
    photos = sources.DatasetInfo("photos", 2, 10, 4)
    assert sources.for_dataset(photos, LEGACY_V1) == LEGACY_V1
    crop_fraction, evaluated = sources.eval_settings(digits, LEGACY_V1)
    assert crop_fraction == 0.875 and evaluated == adapted
