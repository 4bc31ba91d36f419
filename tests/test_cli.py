"""The command lines' shared behaviour: --help exits 0 and names the command, not a file path."""

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize("command, flag", [("train", "--freeze"), ("export", "--top_k"), ("predict", "--images")])
def test_help_exits_zero_and_names_the_command(command, flag):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-m", f"efficientnet_keras.{command}", "--help"], capture_output=True,
                            text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"python -m efficientnet_keras.{command} flags:" in result.stdout and f"  {flag}" in result.stdout
    assert os.path.dirname(os.path.abspath(__file__)).rsplit(os.sep, 1)[0] not in result.stdout  # no checkout path
