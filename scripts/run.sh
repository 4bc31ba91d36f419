#!/usr/bin/env bash
# The main job on its embedded default: progressive-learning training of EfficientNetV2-B0 on real handwritten
# digits (scikit-learn), then evaluation; the model is saved in runs/digits-<time>/model.keras.
# Extra flags are passed to the trainer, e.g. `bash scripts/run.sh --epochs=12`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_venv.sh torch,examples
exec .venv/bin/python -m efficientnet_keras.train --dataset=digits --model=EfficientNetV2B0 \
  --model_dir="runs/digits-$(date +%Y%m%d-%H%M%S)" --epochs=6 --num_stages=3 --image_size_min=32 \
  --image_size_max=48 --batch_size=32 --optimizer=adamw --learning_rate_per_256=0.008 --randaug_max=0 \
  --bn_momentum=0.9 --ema_decay=0.99 --verbose=2 "$@"
