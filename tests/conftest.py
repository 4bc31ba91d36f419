import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import efficientnet_keras  # noqa: E402,F401  (first, as users import it: its TensorFlow defaults apply)
import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _same_start():
    """Tests may switch to channels_first or a mixed-precision policy; every test starts and ends in channels_last
    and float32. Every test starts from the same random seed (Python, NumPy, the backend): a random network is the
    same one in every run, whichever worker runs the test and whatever ran before it."""
    keras.config.set_image_data_format("channels_last")
    keras.utils.set_random_seed(0)
    yield
    keras.config.set_image_data_format("channels_last")
    keras.mixed_precision.set_global_policy("float32")


def randomize_torch_norms(module):
    """Random BatchNorm statistics and norm affines in a torch module (in place): a reference network whose
    norms are identities would hide a norm applied wrongly."""
    import torch

    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 2.0)
            if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.LayerNorm)):
                m.weight.normal_(1, 0.1)
                m.bias.normal_(0, 0.1)
    return module


@pytest.fixture
def needs_torch():
    """Skips the test without PyTorch: the Lite packages' weights (and timm's) come as PyTorch files."""
    return pytest.importorskip("torch")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def random_images(n: int, size: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """Random RGB-range images, the input the models take."""
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, channels)).astype("float32")


def count_traces(model) -> list:
    """A list that grows by one each time ``model``'s train step is traced (``train_step`` runs once per trace)."""
    traces = []
    train_step = model.train_step
    model.train_step = lambda data: traces.append(1) or train_step(data)
    return traces


def hugging_face_cache(tmp_path, monkeypatch, repo: str, state: dict) -> None:
    """An offline Hugging Face Hub cache holding ``model.safetensors`` (``state``) of ``repo``, as
    ``hf_hub_download`` leaves it, used by this test only (EFFICIENTNET_KERAS_OFFLINE set: nothing downloads)."""
    hub = pytest.importorskip("huggingface_hub")
    from safetensors.numpy import save_file

    folder = tmp_path / f"models--{repo.replace('/', '--')}"
    revision = "0" * 40
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(revision)
    (folder / "snapshots" / revision).mkdir(parents=True)
    save_file(state, str(folder / "snapshots" / revision / "model.safetensors"))
    monkeypatch.setattr(hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("EFFICIENTNET_KERAS_OFFLINE", "1")


# ImageNet's cat classes: the top class scikit-image's "chelsea" photo must get from real weights.
CAT_NAMES = {"tabby", "tiger_cat", "Persian_cat", "Siamese_cat", "Egyptian_cat"}


def randomize_batchnorm(model, seed=0):
    """Non-trivial BatchNorm statistics and affine parameters, so a random network's outputs are not ~0."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            shape = layer.moving_mean.shape
            layer.moving_mean.assign(rng.normal(0, 0.5, shape))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, shape))
            layer.gamma.assign(rng.uniform(0.5, 1.5, shape))
            layer.beta.assign(rng.normal(0, 0.2, shape))
    return model


def in_float64(model, build):
    """``build()`` (the same network as ``model``) computing in float64, with ``model``'s weights: the exact
    reference a float32 computation is measured against."""
    keras.config.set_dtype_policy("float64")
    try:
        exact = build()
    finally:
        keras.config.set_dtype_policy("float32")
    assert exact.compute_dtype == "float64"
    exact.set_weights([w.astype("float64") for w in model.get_weights()])
    return exact


def assert_float32_accurate(got, float32, exact, factor: float = 4.0, floor: float = 5e-6):
    """``got`` (float32) is no farther from ``exact`` (float64) than ``factor`` times another float32 computation
    of the same function (``float32``) is, or ``floor`` of the exact values' scale. Through a deep random network
    float32 rounding is ~1e-5 of the scale and varies with the machine and the initialization: a fixed tolerance
    is either loose or flaky, while a wrong computation is off by far more than either bound."""
    scale = float(np.abs(exact).max())
    error, reference_error = float(np.abs(got - exact).max()), float(np.abs(float32 - exact).max())
    assert error <= max(factor * reference_error, floor * scale), \
        f"float32 error {error:.3g}, the reference float32 computation's {reference_error:.3g}, scale {scale:.3g}"
    return error


def real_photos() -> list:
    """Four real photos that ship with scikit-image (cat, espresso, astronaut, rocket), uint8 RGB."""
    from skimage import data as photos

    return [photos.chelsea(), photos.coffee(), photos.astronaut(), photos.rocket()]


def enlarged(photo, height: int, width: int):
    """A real photo resized (bicubic) to ``height`` x ``width``, uint8: a phone-sized image with real content."""
    import tensorflow as tf

    return tf.cast(tf.clip_by_value(tf.image.resize(photo, (height, width), "bicubic"), 0, 255), tf.uint8)


def enlarged_jpeg(photo, height: int, width: int) -> bytes:
    import tensorflow as tf

    return tf.io.encode_jpeg(enlarged(photo, height, width), quality=90).numpy()


def oversized_png(width: int = 20000, height: int = 20000) -> bytes:
    """A valid PNG of ``width`` x ``height`` black greyscale pixels, streamed through zlib row by row: 20000x20000
    is 1.1 MB encoded and 400 MB decoded (1.2 GB as RGB), the hostile request a server must refuse."""
    import struct
    import zlib

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    compressor, row, parts = zlib.compressobj(9), bytes(width + 1), []  # filter byte 0, then the row
    for _ in range(height):
        parts.append(compressor.compress(row))
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")


def jpeg_claiming(width: int = 30000, height: int = 30000) -> bytes:
    """A real 16x16 JPEG whose frame header (SOF0) is rewritten to claim ``width`` x ``height`` pixels."""
    import tensorflow as tf

    data = bytearray(tf.io.encode_jpeg(np.zeros((16, 16, 3), np.uint8)).numpy())
    sof = data.index(b"\xff\xc0")  # marker, length (2), precision (1), height (2), width (2)
    data[sof + 5:sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)
