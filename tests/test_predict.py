"""The README's main command: classify the sample photos with pretrained EfficientNet-Lite0, offline."""

import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("skimage")


def _run(*args):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "EFFICIENTNET_KERAS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "efficientnet_keras.predict", *args], env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.slow
def test_main_command_classifies_the_sample_photos():
    result = _run()
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout.split("coffee (espresso):")
    assert len(out) == 2
    cat_top1 = out[0].split("1. ")[1].split()[0]
    espresso_top1 = out[1].split("1. ")[1].split()[0]
    assert cat_top1 in {"tabby", "tiger_cat", "Egyptian_cat", "Persian_cat", "Siamese_cat"}
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
        (["--images=/nonexistent.jpg"], "Image file not found: /nonexistent.jpg"),
        (["--model=EfficientNetB9"], "Unknown EfficientNet variant 'EfficientNetB9'"),
        (["--top=0"], "top"),
    ],
)
def test_main_command_bad_input(args, message):
    result = _run(*args)
    assert result.returncode != 0
    assert message in result.stderr + result.stdout
