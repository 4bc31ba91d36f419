"""Official TensorFlow checkpoints into our models: the layout and logits of the official google/automl code
(``tests/fixtures/official_logits.json``, made by ``tests/fixtures/make_official_fixture.py``)."""

import dataclasses
import os

import numpy as np
import pytest

import official_checkpoint as oc
from efficientnet_keras.blocks import ConvHead
from efficientnet_keras.builder import build_efficientnet
from efficientnet_keras.models import get_variant
from efficientnet_keras.weights import official

CASES = {c["case"]: c for c in oc.cases()}
VARIANT = {"efficientnetv2-b0": "EfficientNetV2B0", "efficientnet-b0": "EfficientNetB0"}


def _ours(case, include_top=True, include_preprocessing=False):
    """Our network of the fixture's configuration: the variant's blocks at the case's width, depth and head."""
    v = get_variant(VARIANT[case["model_name"]])
    cfg = case["model_config"]
    family = dataclasses.replace(v.family, head=ConvHead(cfg["feature_size"]))
    return build_efficientnet(v.blocks, cfg["width_coefficient"], cfg["depth_coefficient"], case["size"],
                              family=family, name=case["model_name"], include_top=include_top,
                              classes=case["classes"], classifier_activation=None, include_preprocessing=include_preprocessing,
                              input_shape=(None, None, 3))


@pytest.mark.parametrize("name", sorted(CASES))
def test_official_checkpoint_reproduces_the_official_logits(tmp_path, name):
    case = CASES[name]
    prefix = oc.write(str(tmp_path / "model.ckpt"), case["variables"])
    model = _ours(case)
    official.load_checkpoint_into(model, str(tmp_path), expected_name=case["model_name"])  # the folder
    logits = model.predict(oc.inputs(case["size"]), verbose=0)
    assert logits.shape == (2, case["classes"])
    np.testing.assert_allclose(logits, np.array(case["logits"]), atol=1e-4, rtol=0)
    assert os.path.exists(prefix + ".index")


def test_v1_input_normalization_is_the_official_mean_and_std(tmp_path):
    """keras.applications V1 keeps its normalization as weights; from an official checkpoint they are ImageNet's."""
    from efficientnet_keras.normalization import IMAGENET

    case = CASES["v1_b0_1k"]
    model = _ours(case, include_preprocessing=True)
    official.load_checkpoint_into(model, oc.write(str(tmp_path / "ckpt"), case["variables"]))
    pixels = (oc.inputs(case["size"]) * np.array(IMAGENET.std) + np.array(IMAGENET.mean))
    np.testing.assert_allclose(model.predict(pixels.astype(np.float32), verbose=0), case["logits"], atol=1e-4, rtol=0)


def test_ema_shadows_are_preferred_over_raw_values(tmp_path):
    case = CASES["v2_b0_1k"]
    raw_only = oc.write(str(tmp_path / "raw"), case["variables"], ema=False)
    model = _ours(case)
    official.load_checkpoint_into(model, raw_only)
    raw_logits = model.predict(oc.inputs(case["size"]), verbose=0)
    assert np.abs(raw_logits - np.array(case["logits"])).max() > 1e-2  # raw values differ from the averages
    both = oc.write(str(tmp_path / "both"), case["variables"])
    variables = official.read_checkpoint(both)
    assert "global_step" not in variables and not any(k.endswith(("RMSProp", "Average")) for k in variables)
    official.official_to_keras(model, variables)
    np.testing.assert_allclose(model.predict(oc.inputs(case["size"]), verbose=0), case["logits"], atol=1e-4, rtol=0)


def test_without_top_the_classifier_is_skipped(tmp_path):
    case = CASES["v2_b0_21k"]
    model = _ours(case, include_top=False)
    official.load_checkpoint_into(model, oc.write(str(tmp_path / "ckpt"), case["variables"]))
    assert model.output_shape[-1] == 32  # head width 64 x 0.5


def test_bad_checkpoints_fail_with_the_reason(tmp_path):
    v1, v2 = CASES["v1_b0_1k"], CASES["v2_b0_1k"]
    v1_ckpt = oc.write(str(tmp_path / "v1"), v1["variables"], raw=False, slots=False)
    with pytest.raises(ValueError, match="is a checkpoint of 'efficientnet-b0', not of 'efficientnetv2-b0'"):
        official.load_checkpoint_into(_ours(v2), v1_ckpt, expected_name="efficientnetv2-b0")
    with pytest.raises(ValueError, match=r"variable 'efficientnet-b0/blocks_\d+/.*' has no matching layer"):
        official.load_checkpoint_into(_ours(v2), v1_ckpt)  # another network, even under the same name
    with pytest.raises(ValueError, match=r"layer 'predictions' variable 'kernel' has shape \(32, 1000\) in the "
                                         r"model but \(32, 21843\) in the file"):
        official.load_checkpoint_into(_ours(v2), oc.write(str(tmp_path / "k21"), CASES["v2_b0_21k"]["variables"]))
    data = next(p for p in os.listdir(tmp_path) if p.startswith("v1.data"))
    with open(tmp_path / data, "r+b") as f:
        f.truncate(1000)
    with pytest.raises(ValueError, match="truncated"):
        official.read_checkpoint(v1_ckpt)
    with pytest.raises(ValueError, match="neither a folder nor a checkpoint prefix"):
        official.read_checkpoint(str(tmp_path / "nothing"))


def test_create_model_takes_an_official_checkpoint_folder_and_checks_its_variant(tmp_path):
    from efficientnet_keras.models import create_model

    folder = tmp_path / "efficientnet-b0"
    folder.mkdir()
    oc.write(str(folder / "model.ckpt"), CASES["v1_b0_1k"]["variables"], slots=False)
    with pytest.raises(ValueError, match="is a checkpoint of 'efficientnet-b0', not of 'efficientnetv2-b0'; use the "
                                         "efficientnet-b0 constructor"):
        create_model("EfficientNetV2B0", weights=str(folder))
    with pytest.raises(ValueError, match="layer 'stem_conv' variable 'kernel' has shape"):
        create_model("EfficientNetB0", weights=str(folder / "model.ckpt"))  # the full-width B0: shapes differ
    with pytest.raises(ValueError, match="or an official TensorFlow checkpoint"):
        create_model("EfficientNetB0", weights=str(tmp_path / "missing"))
