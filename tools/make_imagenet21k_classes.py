"""Write efficientnet_keras/imagenet21k_classes.txt.gz: the 21,843 classes of the official ImageNet-21k
checkpoints, in their output order, as ``wordnet id<TAB>name`` lines.

The order is Google's ImageNet-21k (fall 2011) synset list, which timm ships as
``timm/data/_info/imagenet21k_goog_synsets.txt`` and uses for the ported ``tf_efficientnetv2_*.in21k`` heads;
names come from timm's ``imagenet_synset_to_lemma.txt``. google/automl's ``g3doc/imagenet21k_labels.txt`` has
21,842 lines: it lacks ``n03931044`` (index 9205), so every name it gives after that index is one class off.

    pip install --no-deps timm && python tools/make_imagenet21k_classes.py
"""

import gzip
import importlib.util
import os

# Located without importing timm (its import needs torchvision).
INFO = os.path.join(importlib.util.find_spec("timm").submodule_search_locations[0], "data", "_info")
OUT = os.path.join(os.path.dirname(__file__), "..", "efficientnet_keras", "imagenet21k_classes.txt.gz")


def main() -> None:
    with open(os.path.join(INFO, "imagenet21k_goog_synsets.txt")) as f:
        synsets = f.read().split()
    with open(os.path.join(INFO, "imagenet_synset_to_lemma.txt")) as f:
        lemma = dict(line.rstrip("\n").split("\t", 1) for line in f if line.strip())
    assert len(synsets) == 21843 and len(set(synsets)) == 21843, len(synsets)
    lines = "".join(f"{s}\t{lemma[s]}\n" for s in synsets)
    with gzip.GzipFile(OUT, "wb", mtime=0) as f:  # mtime=0: the same bytes on every run
        f.write(lines.encode())
    print(f"wrote {os.path.normpath(OUT)}: {len(synsets)} classes")


if __name__ == "__main__":
    main()
