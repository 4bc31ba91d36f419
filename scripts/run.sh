#!/usr/bin/env bash
# The main job on its embedded default: classify the sample photos with pretrained EfficientNet-Lite0.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_venv.sh torch,examples
exec .venv/bin/python -m efficientnet_keras.predict "$@"
