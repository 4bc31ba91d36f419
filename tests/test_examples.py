"""Examples run in the tests, so they cannot rot."""

import runpy
from pathlib import Path

import pytest

from conftest import CAT_NAMES

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_backbone_features_example():
    pytest.importorskip("torch")
    shapes = runpy.run_path(str(EXAMPLES / "backbone_features.py"))["main"]()
    assert shapes == {"P2": (2, 80, 80, 24), "P3": (2, 40, 40, 40), "P4": (2, 20, 20, 112), "P5": (2, 10, 10, 1280)}


# Tiny settings injected after the notebook's "parameters" cell (as papermill does): same cells, CPU-sized run on a
# small network of the V2 family.
NOTEBOOK_SMOKE = """
MODEL, WEIGHTS, DATASET = "EfficientNetV2B0", None, "digits"
BLOCKS = "r1_k3_s1_e1_i16_o16_c1,r2_k3_s2_e4_i16_o24_c1,r2_k3_s2_e4_i24_o32_se0.25,r1_k3_s2_e4_i32_o48_se0.25"
EPOCHS, NUM_STAGES, IMAGE_SIZE_MIN, IMAGE_SIZE_MAX, BATCH_SIZE = 2, 2, 32, 40, 32
TRAIN_EXAMPLES, EVAL_EXAMPLES = 128, 64
"""


@pytest.mark.slow
def test_colab_notebook_runs_top_to_bottom(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(EXAMPLES / "colab_tpu_training.ipynb", as_version=4)
    index = next(i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", []))
    notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(NOTEBOOK_SMOKE))
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = {i: "".join(o.get("text", "") for o in c.get("outputs", [])) for i, c in enumerate(notebook.cells)
               if c.cell_type == "code"}
    text = "\n".join(outputs.values())
    assert "Training on: CPU" in text
    assert "final evaluation:" in text and "at 40 px" in text
    # The per-epoch table shows both stages: 36 px then 40 px (the official stage sizes from a 32 px base).
    rows = [line.split() for line in text.splitlines() if line.strip()[:1].isdigit() and len(line.split()) == 8]
    assert [(r[1], r[2]) for r in rows] == [("0", "36"), ("1", "40")]
    assert (tmp_path / "exports" / "colab" / "1" / "saved_model.pb").exists()
    assert "served top classes:" in text and "true class:" in text


@pytest.mark.slow
def test_finetune_example_learns_the_new_task():
    pytest.importorskip("torch")  # Lite0's pretrained weights come as a PyTorch file
    results = runpy.run_path(str(EXAMPLES / "finetune_lite.py"))["main"](head_epochs=2, finetune_epochs=1)
    assert results["head_only"]["accuracy"] > 0.5  # 10 classes: chance is 0.1
    # Fine-tuning does not undo it (with trainable BatchNorm it fell 19 points; one epoch moves it by a few).
    assert results["finetuned"]["accuracy"] > results["head_only"]["accuracy"] - 0.1


def test_predict_example_classifies_the_sample_photos():
    pytest.importorskip("torch")
    predictions = runpy.run_path(str(EXAMPLES / "predict_photos.py"))["main"]()
    assert predictions["chelsea (cat)"][0][1] in CAT_NAMES
    assert predictions["coffee (espresso)"][0][1] == "espresso"
