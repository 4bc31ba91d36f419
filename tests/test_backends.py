"""The models are keras.ops-only: the same weights give the same numbers under Keras' PyTorch and JAX backends."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import efficientnet_keras as ek
from conftest import random_images

# MBConv with explicit padding, Fused-MBConv, and CoAtNet's pre-norm MBConv, relative attention and LayerNorm.
VARIANTS = {"torch": ["EfficientNetB0", "EfficientNetV2B0", "CoAtNetNanoRW"], "jax": ["CoAtNetNanoRW"]}

CHILD = textwrap.dedent(
    """
    import sys
    import keras
    import numpy as np
    import efficientnet_keras as ek

    backend, folder = sys.argv[1], sys.argv[2]
    assert keras.backend.backend() == backend, keras.backend.backend()
    x = np.load(f"{folder}/x.npy")
    for name in sys.argv[3:]:
        model = getattr(ek, name)(weights=f"{folder}/{name}.weights.h5", input_shape=(96, 96, 3),
                                  classifier_activation=None)
        inference = keras.ops.convert_to_numpy(model(x, training=False))
        np.save(f"{folder}/{name}.npy", inference)
        # Training mode runs on this backend too, and its stochastic depth and dropout act: the logits move.
        ek.set_regularization(model, dropout=0.5, stochastic_depth=0.5)
        out = keras.ops.convert_to_numpy(model(x, training=True))
        assert np.isfinite(out).all() and not np.allclose(out, inference, atol=1e-3), name
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("backend", sorted(VARIANTS))
def test_other_backends_match_tensorflow(backend, tmp_path):
    pytest.importorskip(backend)
    x = random_images(2, 96)
    np.save(tmp_path / "x.npy", x)
    expected = {}
    rng = np.random.default_rng(0)
    for name in VARIANTS[backend]:
        model = getattr(ek, name)(weights=None, input_shape=(96, 96, 3), classifier_activation=None)
        model.set_weights([w + rng.normal(0, 0.01, w.shape).astype(w.dtype) for w in model.get_weights()])
        model.save_weights(str(tmp_path / f"{name}.weights.h5"))
        expected[name] = model.predict(x, verbose=0)
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run([sys.executable, "-c", CHILD, backend, str(tmp_path), *VARIANTS[backend]], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    for name in VARIANTS[backend]:
        np.testing.assert_allclose(np.load(tmp_path / f"{name}.npy"), expected[name], atol=1e-4, rtol=0)
