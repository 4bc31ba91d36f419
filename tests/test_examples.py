"""Examples run in the tests, so they cannot rot."""

import runpy
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_backbone_features_example():
    pytest.importorskip("torch")
    shapes = runpy.run_path(str(EXAMPLES / "backbone_features.py"))["main"]()
    assert shapes == {"P2": (2, 80, 80, 24), "P3": (2, 40, 40, 40), "P4": (2, 20, 20, 112), "P5": (2, 10, 10, 1280)}
