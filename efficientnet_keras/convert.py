"""Convert weights from another framework into a Keras ``.weights.h5`` for a named variant.

    python -m efficientnet_keras.convert MODEL SRC OUT.weights.h5

SRC: an official TensorFlow checkpoint (the folder a released archive extracts to, or its ``model.ckpt``
prefix; its classifier size is read from it), or a PyTorch state dict (``.pth`` / ``.safetensors``) in any layout
``weights=`` reads (lukemelas, timm's ``tf_`` ports, timm's CoAtNets). The model normalizes its input as the
source's weights were trained (``efficientnet_keras.get_preprocessing``).
"""

from __future__ import annotations

import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 3:
        print("usage: python -m efficientnet_keras.convert MODEL SRC OUT.weights.h5", file=sys.stderr)
        return 2
    from efficientnet_keras.models import create_model
    from efficientnet_keras.weights.load import is_official_checkpoint
    from efficientnet_keras.weights.official import checkpoint_classes, read_checkpoint

    variant, src, out = argv
    classes = checkpoint_classes(read_checkpoint(src)) if is_official_checkpoint(src) else None
    try:
        model = create_model(variant, weights=src, include_top=classes is not None or not is_official_checkpoint(src),
                             classes=classes, classifier_activation=None)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    model.save_weights(out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
