"""ONNX export: onnxruntime gives the Keras logits and probabilities; bad input refused, nothing half-written."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import assert_float32_accurate, in_float64, random_images, randomize_batchnorm

from efficientnet_keras import build_efficientnet, create_model, export, onnx_export
from efficientnet_keras.transforms import center_crop

pytest.importorskip("tf2onnx")
pytest.importorskip("onnxruntime")


def _servable(model, size=224):
    return export.Servable(model, size, export.default_class_names(model.output_shape[-1]))


def _tiny():
    """One Fused-MBConv block at 32 px, 3 classes: enough network for the file and CLI checks."""
    return build_efficientnet(["r1_k3_s1_e1_i16_o16_c1"], 1.0, 1.0, 32, family="v2", classes=3,
                              input_shape=(32, 32, 3))


def _keras_logits(model, images):
    body = keras.Model(model.inputs, model.layers[-1].input)
    head = model.layers[-1]
    features = body.predict(images, verbose=0).astype(np.float64)
    return features @ head.kernel.numpy().astype(np.float64) + head.bias.numpy()


@pytest.mark.parametrize("variant", ["EfficientNetV2B0", pytest.param("CoAtNetNanoRW", marks=pytest.mark.slow)])
def test_onnxruntime_matches_keras(variant, tmp_path):
    """onnxruntime's float32 logits no farther from the network computed in float64 than a few times Keras' own
    float32 logits are (or 5e-6 of the logits' scale): the same function, up to float32 rounding."""
    model = randomize_batchnorm(create_model(variant, weights=None))
    path = export.export_onnx(_servable(model), str(tmp_path / "model.onnx"))
    images = random_images(3, 224)
    out = export.run_onnx(path, images)
    exact = _keras_logits(in_float64(model, lambda: create_model(variant, weights=None)), images.astype("float64"))
    assert np.ptp(exact) > 0.5  # random weights with real BatchNorm statistics: logits that can disagree
    # Logits of 1-140 over seeds: Keras' own float32 error is 0.5e-6-2e-5 of them, onnxruntime's up to 2.6x Keras'
    # (exact GELU through Erf; measured over seeds 0-3 of both variants).
    onnx_error = assert_float32_accurate(out["logits"], _keras_logits(model, images), exact)
    # The probabilities are the softmax of those logits, whose error bounds theirs (to first order by half of it).
    np.testing.assert_allclose(out["probabilities"], keras.ops.softmax(out["logits"]).numpy(), atol=1e-6, rtol=0)
    assert np.abs(out["probabilities"] - keras.ops.softmax(exact).numpy()).max() <= onnx_error
    assert export.run_onnx(path, images[:1])["logits"].shape == (1, 1000)  # the batch dimension is dynamic


def test_onnx_lite0_classifies_the_photos_as_keras_does(tmp_path):
    pytest.importorskip("torch")  # Lite0's pretrained weights come as a PyTorch file
    from skimage import data

    servable = export.load_servable("EfficientNetLite0")
    path = export.export_onnx(servable, str(tmp_path / "lite0.onnx"))
    images = np.stack([center_crop(p, 224).numpy() for p in (data.chelsea(), data.coffee(), data.rocket())])
    out = export.run_onnx(path, images)
    np.testing.assert_allclose(out["logits"], _keras_logits(servable.model, images), atol=1e-4, rtol=0)
    assert out["probabilities"][0].argmax() in (281, 282, 285)  # tabby / tiger cat / Egyptian cat
    assert out["probabilities"][1].argmax() == 967  # espresso


def test_a_mixed_precision_model_exports_its_float32_network(tmp_path):
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = build_efficientnet(["r1_k3_s1_e1_i16_o16_c1", "r1_k3_s2_e4_i16_o24_se0.25"], 1.0, 1.0, 32,
                                   family="v2", classes=5, input_shape=(32, 32, 3))
    finally:
        keras.config.set_dtype_policy("float32")
    model = randomize_batchnorm(model)
    path = export.export_onnx(_servable(model, 32), str(tmp_path / "mixed.onnx"))
    images = random_images(2, 32)
    float32 = onnx_export._in_float32(model)
    assert {layer.dtype_policy.name for layer in float32.layers} == {"float32"}
    np.testing.assert_allclose(export.run_onnx(path, images)["probabilities"], float32.predict(images, verbose=0),
                               atol=1e-5, rtol=0)


def test_onnx_to_remote_storage_and_bad_input(tmp_path, monkeypatch):
    model = _tiny()
    servable = _servable(model, 32)
    path = export.export_onnx(servable, "ram://onnx/tiny.onnx")
    assert export.run_onnx(path, random_images(1, 32))["probabilities"].shape == (1, 3)
    assert not tf.io.gfile.exists("ram://onnx/tiny.onnx.partial")
    with pytest.raises(ValueError, match="already exists and is not empty; pass overwrite=True"):
        export.export_onnx(servable, path)
    with pytest.raises(ValueError, match="The ONNX file name must end with .onnx, got 'x.pb'"):
        export.export_onnx(servable, "x.pb")
    any_size = export.Servable(model, 32, ["a", "b", "c"])
    any_size.image_size = None
    with pytest.raises(ValueError, match="ONNX export needs a fixed image size"):
        export.export_onnx(any_size, str(tmp_path / "any.onnx"))

    def fails(*args, **kwargs):
        raise RuntimeError("conversion failed")

    import tf2onnx

    monkeypatch.setattr(tf2onnx.convert, "from_graph_def", fails)
    with pytest.raises(RuntimeError, match="conversion failed"):
        export.export_onnx(servable, str(tmp_path / "failed.onnx"))
    assert os.listdir(tmp_path) == []  # nothing half-written
    monkeypatch.setitem(sys.modules, "tf2onnx", None)
    with pytest.raises(ValueError, match=r"ONNX export needs tf2onnx .*pip install 'efficientnet_keras\[onnx\]'"):
        export.export_onnx(servable, str(tmp_path / "no.onnx"))


def test_cli_writes_onnx(tmp_path):
    model = _tiny()
    model.save(tmp_path / "tiny.keras")
    out = tmp_path / "tiny.onnx"
    run = subprocess.run([sys.executable, "-m", "efficientnet_keras.export", f"--model={tmp_path / 'tiny.keras'}",
                          "--format=onnx", f"--output={out}"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == f"Wrote {out}"
    assert "deprecated" not in run.stderr  # clean output: tf2onnx's TF1 deprecation warnings are not shown
    images = random_images(2, 32)
    np.testing.assert_allclose(export.run_onnx(str(out), images)["probabilities"], model.predict(images, verbose=0),
                               atol=1e-5, rtol=0)
    run = subprocess.run([sys.executable, "-m", "efficientnet_keras.export", f"--model={tmp_path / 'tiny.keras'}",
                          "--format=onnx"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 1 and "error: --format=onnx needs --output=FILE.onnx." in run.stderr
