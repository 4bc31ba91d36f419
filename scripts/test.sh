#!/usr/bin/env bash
# Install everything the tests need into .venv, then run the whole suite (slow tests included) on 2 workers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_venv.sh torch,examples,test
exec .venv/bin/python -m pytest -n 2 --dist loadgroup "$@"
