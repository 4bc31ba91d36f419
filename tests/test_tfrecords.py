"""TFRecords in the official layouts: Cloud TPU ImageNet (1-based labels) and ImageNet-21k (label lists)."""

import numpy as np
import pytest
import tensorflow as tf

from efficientnet_keras.training import data, tfrecords
from conftest import real_photos


def _feature(value):
    if isinstance(value, bytes):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(np.atleast_1d(value))))


def _write(path, examples):
    with tf.io.TFRecordWriter(path) as writer:
        for features in examples:
            writer.write(tf.train.Example(features=tf.train.Features(
                feature={k: _feature(v) for k, v in features.items()})).SerializeToString())


def _jpegs(n):
    photos = real_photos()
    return [tf.io.encode_jpeg(tf.image.resize(photos[i % 4], [40 + 8 * i, 56], antialias=True)
                              .numpy().astype(np.uint8)).numpy() for i in range(n)]


def _imagenet_layout(root, train_files=3, per_file=2):
    """As imagenet_to_gcs.py writes them: image/encoded and image/class/label in 1..1000 (plus its other keys)."""
    jpegs, labels = _jpegs(train_files * per_file + 2), []
    for f in range(train_files):
        rows = [{"image/encoded": jpegs[f * per_file + i], "image/class/label": 1 + 7 * (f * per_file + i),
                 "image/class/synset": b"n01440764"} for i in range(per_file)]
        labels += [r["image/class/label"] for r in rows]
        _write(f"{root}/train-{f:05d}-of-{train_files:05d}", rows)
    _write(f"{root}/validation-00000-of-00001", [{"image/encoded": j, "image/class/label": 1000} for j in jpegs[-2:]])
    return labels


def _labels(split, n):
    ds = split.records(None, None)
    return [label.numpy() for _, label in ds.take(n)]


@pytest.mark.parametrize("root", ["local", "ram://tfrecords_imagenet"])
def test_cloud_tpu_imagenet_layout_round_trips_with_the_official_label_offset(tmp_path, root):
    root = str(tmp_path) if root == "local" else root
    tf.io.gfile.makedirs(root)
    written = _imagenet_layout(root)
    train, evaluation, info = data.load_source(f"tfrecord:{root}")
    assert (info.num_classes, info.multi_label, train.num_examples, evaluation.num_examples) == (1000, False, 6, 2)
    # datasets.py: label -= 1 (0 is background); the files are interleaved, so compare as sets
    assert sorted(_labels(train, 6)) == [label - 1 for label in written]
    assert _labels(evaluation, 2) == [999, 999]
    image, _ = next(iter(train.records(None, None)))
    assert tf.io.is_jpeg(image)  # still encoded: decoded and cropped in one op by the pipeline
    batch = next(iter(data.make_eval_dataset(evaluation, info, 32, 2)))
    assert batch[0].shape == (2, 32, 32, 3) and batch[1].numpy().argmax(1).tolist() == [999, 999]


def test_imagenet21k_layout_gives_multi_hot_labels(tmp_path):
    jpegs = _jpegs(24)
    classes = [[i % 5, 21842] if i % 3 else [i] for i in range(24)]
    for f in range(24):  # the official split: files 0-15 eval, 16-19 minival, 20- train
        _write(str(tmp_path / f"imagenet21k-{f:05d}-of-00024"), [{"image": jpegs[f], "labels": classes[f]}])
    train, evaluation, info = data.load_source(f"tfrecord:{tmp_path}/{{split}}-*")
    assert (info.num_classes, info.multi_label, train.num_examples, evaluation.num_examples) == (21843, True, 4, 16)
    got = sorted(tuple(np.flatnonzero(label)) for label in _labels(train, 4))
    assert got == sorted(tuple(sorted(c)) for c in classes[20:])
    assert {label.shape for label in _labels(train, 4)} == {(21843,)}
    _, minival, _ = data.load_source(f"tfrecord:{tmp_path}/{{split}}-*", eval_split="minival")
    assert minival.num_examples == 4


def test_minival_presets_hold_out_the_first_twenty_train_files(tmp_path):
    _imagenet_layout(str(tmp_path), train_files=22, per_file=1)
    train, minival, _ = data.load_source(f"tfrecord:{tmp_path}", train_split=tfrecords.TRAIN_MINUS_MINIVAL,
                                         eval_split=tfrecords.MINIVAL)
    assert (train.num_examples, minival.num_examples) == (2, 20)
    assert sorted(_labels(train, 2)) == [7 * 20, 7 * 21]  # files 20 and 21, sorted


def test_a_record_without_image_encoded_names_the_key(tmp_path):
    _write(str(tmp_path / "train-00000-of-00001"), [{"image/class/label": 3}])
    with pytest.raises(ValueError, match="the record has no image/encoded key \\(Cloud TPU ImageNet layout\\); its "
                                         "keys: image/class/label"):
        data.load_source(f"tfrecord:{tmp_path}")


def test_records_of_another_layout_are_refused(tmp_path):
    _write(str(tmp_path / "train-00000-of-00001"), [{"img": b"x", "target": 3}])
    with pytest.raises(ValueError, match="the record is in no known layout: it has img, target, where the Cloud TPU"):
        data.load_source(f"tfrecord:{tmp_path}")


def test_a_pattern_that_matches_nothing_is_refused(tmp_path):
    with pytest.raises(ValueError, match=f"tfrecord:{tmp_path}/x-\\* matches no files for split 'train'"):
        data.load_source(f"tfrecord:{tmp_path}/x-*")


def test_a_label_beyond_the_layout_fails_loudly(tmp_path):
    _write(str(tmp_path / "train-00000-of-00001"), [{"image/encoded": _jpegs(1)[0], "image/class/label": 1001}])
    _write(str(tmp_path / "validation-00000-of-00001"), [{"image/encoded": _jpegs(1)[0], "image/class/label": 1}])
    train, _, _ = data.load_source(f"tfrecord:{tmp_path}")
    with pytest.raises(tf.errors.InvalidArgumentError, match="image/class/label beyond the 1000 classes of the imagenet layout"):
        _labels(train, 1)


@pytest.mark.slow
def test_imagenet21k_recipe_trains_on_multi_label_records_and_skips_a_corrupt_one(tmp_path):
    """The 21k path end to end: multi-hot labels through the pipeline (a corrupt image skipped and counted), the
    multi-label loss and accuracy, evaluation and the saved model."""
    from efficientnet_keras.training.trainer import TrainConfig, train

    jpegs = _jpegs(24)
    for f in range(24):  # train: files 20-23, 4 records each, and one corrupt record more in file 21
        rows = [{"image": jpegs[f], "labels": [f % 3, 10 + f]}] * 4
        _write(str(tmp_path / f"imagenet21k-{f:05d}-of-00024"), rows + [{"image": b"no image", "labels": [1]}] * (f == 21))
    result = train(TrainConfig(
        dataset=f"tfrecord:{tmp_path}/{{split}}-*", recipe="imagenet21k", model="EfficientNetV2B0",
        blocks="r1_k3_s1_e1_i16_o16_c1,r2_k3_s2_e4_i16_o24_c1", model_dir=str(tmp_path / "run"), epochs=2,
        batch_size=4, image_size_max=32, eval_size=32, eval_examples=8, verbose=0))
    assert result["model"].output_shape[-1] == 21843
    assert result["history"]["skipped_train_images"] == [1.0, 1.0]  # the corrupt record, in each epoch
    assert np.isfinite(result["eval"]["loss"]) and 0 <= result["eval"]["accuracy"] <= 1
