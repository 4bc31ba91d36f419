#!/usr/bin/env bash
# Install everything the tests need into .venv, run the whole suite (slow tests included) on 2 workers, then the
# installed-wheel check and the Bazel targets.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_venv.sh torch,examples,serving,onnx,test
# Real Fashion-MNIST from Debian (optional: its tests skip without it).
if [ ! -d /usr/share/datasets/fashion-mnist ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null 2>&1 \
    || echo "note: dataset-fashion-mnist not installed; its tests will be skipped"
fi
started=$SECONDS
status=0
.venv/bin/python -m pytest -n 2 --dist loadgroup "$@" || status=$?
echo "Test suite (pytest): $(( (SECONDS - started) / 60 )) min $(( (SECONDS - started) % 60 )) s"
[ "$status" = 0 ] || exit "$status"
# The built wheel, installed outside the source tree: console scripts, package data, a .keras round trip.
bash scripts/wheel_test.sh
# The Bazel build of every target and its fast test targets (offline, Debian's bazel-bootstrap).
bash scripts/bazel_test.sh
echo "Test suite and Bazel targets: $(( (SECONDS - started) / 60 )) min $(( (SECONDS - started) % 60 )) s"
