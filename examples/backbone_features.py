"""Use an EfficientNet as a multi-scale backbone: stride-4 ... stride-32 feature maps for a detector or FPN.

    python examples/backbone_features.py
"""

import numpy as np

from efficientnet_keras import EfficientNetLite0, feature_extractor


def main() -> dict[str, tuple[int, ...]]:
    backbone = EfficientNetLite0(weights="imagenet", include_top=False, input_shape=(320, 320, 3))
    pyramid = feature_extractor(backbone, strides=(4, 8, 16, 32))
    images = np.random.default_rng(0).uniform(0, 255, (2, 320, 320, 3)).astype("float32")
    shapes = {name: tuple(feature.shape) for name, feature in pyramid.predict(images, verbose=0).items()}
    for name, shape in shapes.items():
        print(f"{name}: {shape}")
    return shapes


if __name__ == "__main__":
    main()
