"""The README's predict command: the sample photos with pretrained EfficientNet-Lite0, offline; a trained run, its
.keras file and its exported SavedModel, each with the run's classes."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from conftest import CAT_NAMES, jpeg_claiming, oversized_png


def _run(*args):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "EFFICIENTNET_KERAS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "efficientnet_keras.predict", *args], env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.slow
def test_main_command_classifies_the_sample_photos():
    pytest.importorskip("torch")  # Lite0's pretrained weights come as a PyTorch file
    result = _run()
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout.split("coffee (espresso):")
    assert len(out) == 2
    cat_top1 = out[0].split("1. ")[1].split()[0]
    espresso_top1 = out[1].split("1. ")[1].split()[0]
    assert cat_top1 in CAT_NAMES
    assert espresso_top1 == "espresso"
    assert out[1].count("%") == 5  # top-5


@pytest.mark.slow
def test_main_command_on_an_image_file(tmp_path):
    from skimage import data
    from PIL import Image

    path = tmp_path / "coffee.png"
    Image.fromarray(data.coffee()).save(path)
    result = _run(f"--images={path}", "--top=1")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "1. espresso" in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--images=/nonexistent.jpg"], "error: image file not found: /nonexistent.jpg"),
        (["--model=EfficientNetB9"], "Unknown EfficientNet variant 'EfficientNetB9'"),
        (["--top=0"], "top"),
    ],
)
def test_main_command_bad_input(args, message):
    result = _run(*args)
    assert result.returncode != 0
    assert message in result.stderr + result.stdout


@pytest.mark.slow
def test_the_readme_chain_train_eval_export_then_predict_a_file(tmp_path):
    """Each step reads only what the previous one wrote: train a run, evaluate it, export it, then predict a digit
    image file with the run folder, its model.keras and the exported SavedModel; each answer is a class of the run."""
    from PIL import Image
    from sklearn.datasets import load_digits

    from efficientnet_keras import export
    from efficientnet_keras.train import TrainConfig, evaluate, train

    run = str(tmp_path / "runs" / "digits")
    train(TrainConfig(dataset="digits", model="EfficientNetV2B0", model_dir=run,
                      blocks="r1_k3_s1_e1_i16_o16_c1,r2_k3_s2_e4_i16_o24_c1", epochs=1, progressive=False,
                      image_size_max=32, batch_size=32, train_examples=128, eval_examples=32, optimizer="adamw",
                      augment="none", verbose=0))
    assert 0 <= evaluate(run)["accuracy"] <= 1
    with open(os.path.join(run, "results.json")) as f:
        recorded = json.load(f)["preprocessing"]
    assert recorded["train_area"] == [0.5, 1.0]  # the digits' own crop area, which the pipeline applies
    evaluated = subprocess.run([sys.executable, "-m", "efficientnet_keras.train", "--mode=eval", f"--model_dir={run}"],
                               env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}, capture_output=True,
                               text=True, timeout=300)  # the README's eval command, no --batch_size
    assert evaluated.returncode == 0 and "Evaluation: accuracy " in evaluated.stdout, evaluated.stderr[-2000:]
    saved_model = export.export_saved_model(export.load_servable(run), str(tmp_path / "exports" / "digits"))
    digit = load_digits().images[0]  # a 0, 8x8 in 17 grey levels: as the run trained on them
    image = str(tmp_path / "digit.png")
    Image.fromarray(np.round(digit * 255 / 16).astype(np.uint8)).save(image)
    for model in (run, os.path.join(run, "model.keras"), saved_model):
        result = _run(f"--model={model}", f"--images={image}", "--top=3")
        assert result.returncode == 0, result.stderr[-2000:]
        assert len(re.findall(r"^  \d\. [0-9] +\d+\.\d\d%$", result.stdout, re.M)) == 3, result.stdout
    # A SavedModel exported with a lower pixel limit than predict's refuses the 8x8 image: a clear error.
    strict = export.export_saved_model(export.load_servable(run), str(tmp_path / "exports" / "strict"), max_pixels=32)
    result = _run(f"--model={strict}", f"--images={image}")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert (f"error: the SavedModel {strict} refused the images: The image is 8x8 pixels (width x height, from its "
            "header): above the limit of 32 pixels.") in result.stderr


@pytest.mark.parametrize("make, claimed", [(oversized_png, "20000x20000"), (jpeg_claiming, "30000x30000")],
                         ids=["png", "jpeg"])
def test_an_image_above_the_pixel_limit_is_a_clear_error(tmp_path, make, claimed):
    from efficientnet_keras.predict import load_image, read_image

    path = tmp_path / "huge.img"
    path.write_bytes(make())
    for load in (load_image, read_image):  # the CLI reads files with read_image: their bytes, checked
        with pytest.raises(SystemExit, match=rf"error: {re.escape(str(path))} is {claimed} pixels \(from its "
                                             r"header\): above the limit of 40000000 pixels, so it was not decoded. "
                                             r"Downscale it, or raise --max_pixels"):
            load(str(path))
    small = tmp_path / "small.png"
    small.write_bytes(oversized_png(64, 48))
    assert load_image(str(small)).shape == (48, 64, 3)
    assert read_image(str(small)) == small.read_bytes()
    for load in (load_image, read_image):
        with pytest.raises(SystemExit, match="is 64x48 pixels"):
            load(str(small), max_pixels=1000)
