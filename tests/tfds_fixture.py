"""A real tfds dataset written to disk by its own builder, for the tests of sources and pipelines."""

import numpy as np
import tensorflow_datasets as tfds


class PhotoShards(tfds.core.GeneratorBasedBuilder):
    """A real tfds dataset on disk (TFRecord shards, encoded JPEGs of varied sizes, each image's gray level its
    index), as tfds prepares one."""

    VERSION = tfds.core.Version("1.0.0")
    num_examples = 64

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self, features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(encoding_format="jpeg"),
                "label": tfds.features.ClassLabel(num_classes=4)}),
            supervised_keys=("image", "label"))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(self.num_examples),
                "test": self._generate_examples(self.num_examples // 4)}

    def _generate_examples(self, n):
        rng = np.random.default_rng(n)
        for i in range(n):
            h, w = rng.integers(40, 90, 2)
            yield i, {"image": np.full((h, w, 3), i % 256, np.uint8), "label": i % 4}


def write_tfds_dataset(data_dir, num_examples=64, num_shards=4):
    PhotoShards.num_examples = num_examples
    builder = PhotoShards(data_dir=str(data_dir))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(num_shards=num_shards),
                                 file_format="tfrecord")
    return builder
