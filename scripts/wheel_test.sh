#!/usr/bin/env bash
# The package as users install it: build the wheel, install it (not editable) into a fresh venv outside the
# source tree, and run the installed console script and a .keras round trip from there. A file missing from
# package_data, or a module missing from the packages, fails here.
#
# The fresh venv takes the dependencies (TensorFlow, torch, ...) from .venv through a .pth file, so that CI does
# not install TensorFlow twice; efficientnet_keras itself comes only from the wheel (the check below says so).
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# From a copy of the files git tracks (as a clean clone): no stale build/ or egg-info adds a file to the wheel.
mkdir "$work/src"
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$work/src"
.venv/bin/python -m pip wheel --quiet --no-deps --wheel-dir "$work/dist" "$work/src" >/dev/null
wheel=("$work"/dist/efficientnet_keras-*.whl)
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --no-deps "${wheel[0]}" >/dev/null
site="$("$work/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
deps="$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "$deps" > "$site/_efficientnet_keras_ci_dependencies.pth"   # appended to sys.path: the wheel's copy wins
cd "$work"
"$work/venv/bin/python" - "$site" <<'PY'
import sys
import efficientnet_keras
assert efficientnet_keras.__file__.startswith(sys.argv[1]), (
    f"efficientnet_keras was imported from {efficientnet_keras.__file__}, not from the installed wheel")
PY
"$work/venv/bin/efficientnet-predict" > predict.txt
grep -q "espresso  " predict.txt || { cat predict.txt; echo "efficientnet-predict (installed wheel) did not find the espresso"; exit 1; }
"$work/venv/bin/python" - <<'PY'
import efficientnet_keras as ek  # first: TensorFlow then loads without its log lines
import keras, numpy as np
model = ek.EfficientNetV2B0(weights=None, input_shape=(64, 64, 3), classes=5)
model.save("v2b0.keras")
loaded = keras.saving.load_model("v2b0.keras")
x = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
assert ek.get_preprocessing(loaded) == ek.get_preprocessing(model)
PY
echo "Installed wheel: efficientnet-predict and a .keras round trip pass outside the source tree."
