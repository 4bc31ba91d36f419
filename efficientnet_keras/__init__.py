"""EfficientNet V1, V2 and Lite for Keras 3, drop-in compatible with keras.applications, and CoAtNet.

    from efficientnet_keras import EfficientNetV2S, CoAtNet0
    model = EfficientNetV2S(weights=None)
"""

import os as _os
import platform as _platform

# TensorFlow's oneDNN CPU kernels (convolutions, their gradients, fused BatchNorm, swish) are in every x86 wheel
# but switched on by TensorFlow only on CPUs with AVX-512. Measured on a 2-core AVX2 CPU (benchmarks/speed.py),
# the same keras.applications models run 1.1-1.5x faster with it. It must be set before TensorFlow starts, so
# importing this package first turns it on; TF_ENABLE_ONEDNN_OPTS=0 (or any value you set) is respected.
if _platform.machine().lower() in ("x86_64", "amd64"):
    _os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

if _os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
    from efficientnet_keras._quiet import import_tensorflow_quietly as _import_tensorflow_quietly

    _import_tensorflow_quietly()

from efficientnet_keras import block_args
from efficientnet_keras.builder import Family, build_efficientnet, round_filters, round_repeats
from efficientnet_keras.features import feature_extractor, feature_layer_names
from efficientnet_keras.flops import count_flops
from efficientnet_keras.imagenet import class_names, decode_predictions, preprocess_input
from efficientnet_keras.layers import StochasticDepth, get_regularization, set_regularization
from efficientnet_keras.models import CONSTRUCTORS, VARIANTS, Variant, create_model, get_variant
from efficientnet_keras.network import EfficientNetModel, PreprocessingConfig, get_preprocessing
from efficientnet_keras.normalization import Normalization

__version__ = "0.1.0"

globals().update(CONSTRUCTORS)  # EfficientNetB0 ... EfficientNetLite4, CoAtNet0 ..., one per row of models.VARIANTS

__all__ = [
    *CONSTRUCTORS,
    "block_args",
    "build_efficientnet",
    "Family",
    "round_filters",
    "round_repeats",
    "create_model",
    "get_variant",
    "Variant",
    "VARIANTS",
    "feature_extractor",
    "feature_layer_names",
    "count_flops",
    "preprocess_input",
    "decode_predictions",
    "class_names",
    "StochasticDepth",
    "set_regularization",
    "get_regularization",
    "get_preprocessing",
    "PreprocessingConfig",
    "Normalization",
    "EfficientNetModel",
]
