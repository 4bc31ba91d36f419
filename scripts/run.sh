#!/usr/bin/env bash
# The main job on its embedded default: fine-tune the offline ImageNet-pretrained EfficientNet-Lite0 on real
# handwritten digits (scikit-learn) with progressive learning (3 stages: 74, 85, 96 px), evaluate, and save
# runs/digits/model.keras (about 3 minutes on 2 CPU cores, 96-97% test accuracy). Run again, it resumes the finished
# run (re-evaluates; nothing is retrained). Extra flags go to the trainer, e.g. `bash scripts/run.sh --epochs=15`
# (a changed setting is refused for an existing run: add --overwrite to start over).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_venv.sh torch,examples
exec .venv/bin/python -m efficientnet_keras.train --dataset=digits --model=EfficientNetLite0 --weights=imagenet \
  --model_dir=runs/digits --resume --epochs=12 --progressive --num_stages=3 --image_size_min=64 --image_size_max=96 \
  --batch_size=32 --optimizer=adamw --learning_rate_per_256=0.008 --randaug_max=0 --bn_momentum=0.9 \
  --ema_decay=0 --verbose=2 "$@"
