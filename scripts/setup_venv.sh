#!/usr/bin/env bash
# Create .venv (if missing) and install the package with the given extras. Idempotent; no network beyond PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-torch,examples}"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip >/dev/null
.venv/bin/python -m pip install --quiet -e ".[${extras}]"
# timm (the reference for tests/test_timm_weights.py) without its dependencies: it requires torchvision, whose
# PyPI build needs CUDA; the tests give it a stand-in (tests/torchvision_stub.py).
if [[ ",${extras}," == *",test,"* ]]; then
  .venv/bin/python -m pip install --quiet --no-deps "timm==1.0.31"
fi
