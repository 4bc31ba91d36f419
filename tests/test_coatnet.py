"""CoAtNet, built by the EfficientNet builder: timm's parameter counts, the paper's FLOPs, timm's logits at the
training size and at sizes where the relative position tables are cropped or interpolated, and clear errors."""

import dataclasses

import keras
import numpy as np
import pytest

import efficientnet_keras as ek
import torchvision_stub
from conftest import hugging_face_cache, randomize_torch_norms
from efficientnet_keras import builder
from efficientnet_keras.attention import resize_bias_table
from efficientnet_keras.models import VARIANTS, create_model, get_variant
from efficientnet_keras.transforms import eval_transform
from efficientnet_keras.weights.check import sample_photos
from efficientnet_keras.weights.timm_coatnet import coatnet_to_keras



def _torch_and_timm():
    """torch and timm, or a skip: only the tests that compare with timm need them (the others run without)."""
    torch = pytest.importorskip("torch")
    torchvision_stub.install()
    return torch, pytest.importorskip("timm")


COATNETS = [f for f, v in VARIANTS.items() if v.timm]
LARGE = ("CoAtNet3", "CoAtNet4", "CoAtNet3RW")
# The numbers (timm coatnet_<n>_224) and the paper's FLOPs at 224 px (Table 3).
PAPER_PARAMS = {"CoAtNet0": 25_036_820, "CoAtNet1": 42_225_776, "CoAtNet2": 74_684_744, "CoAtNet3": 166_966_264}
PAPER_FLOPS = {"CoAtNet0": 4.2e9, "CoAtNet1": 8.4e9, "CoAtNet2": 15.7e9, "CoAtNet3": 34.7e9}


def _trainable(model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.mark.parametrize("function", [pytest.param(f, marks=pytest.mark.slow) if f in LARGE else f for f in COATNETS])
def test_parameter_counts_equal_timm(function):
    _, timm = _torch_and_timm()
    model = create_model(function, weights=None)
    reference = timm.create_model(get_variant(function).timm, num_classes=1000)
    assert _trainable(model) == sum(p.numel() for p in reference.parameters())
    if function in PAPER_PARAMS:
        assert _trainable(model) == PAPER_PARAMS[function]


# timm's published GMACs of its _rw models (its model cards), which count attention's products as we do.
TIMM_GMACS = {"CoAtNetNanoRW": 2.41e9, "CoAtNet0RW": 4.43e9, "CoAtNetBN0RW": 4.67e9, "CoAtNet1RW": 8.04e9,
              "CoAtNet2RW": 15.09e9}


@pytest.mark.parametrize("function", [pytest.param(f, marks=pytest.mark.slow) if f in LARGE else f
                                      for f in [*PAPER_FLOPS, *TIMM_GMACS]])
def test_flops_within_3_percent_of_the_paper_and_2_percent_of_timm(function):
    flops = ek.count_flops(create_model(function, weights=None))
    if function in PAPER_FLOPS:
        assert abs(flops / PAPER_FLOPS[function] - 1) < 0.03, flops
    else:
        assert abs(flops / TIMM_GMACS[function] - 1) < 0.02, flops


def _photos(size):
    """The cat and espresso photos, [0, 255]: distinct images, unlike noise, which pooling averages away."""
    return np.stack([eval_transform(p, size).numpy() for p in sample_photos().values()])


def _timm_model(arch, img_size=224, **kwargs):
    """timm's network with random weights, randomized BatchNorm statistics and norm affines (eval mode)."""
    torch, timm = _torch_and_timm()
    torch.manual_seed(0)
    return randomize_torch_norms(timm.create_model(arch, img_size=img_size, **kwargs).eval())


def _timm_logits(model, images, normalization):
    torch, _ = _torch_and_timm()
    x = images / 127.5 - 1 if normalization == "inception" else (images / 255 - np.array(
        [0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    with torch.no_grad():
        return model(torch.from_numpy(x.transpose(0, 3, 1, 2).astype(np.float32))).numpy()


def _state(model):
    return {k: v.numpy() for k, v in model.state_dict().items()}


def _crop_tables(state, map_sizes):
    """timm's flat (rows * cols, heads) tables cut to their centre for smaller maps: what ours read at run time."""
    out = dict(state)
    for key, table in state.items():
        if key.endswith("relative_position_bias_table"):
            side = int(round(table.shape[0] ** 0.5))
            stage = int(key.split(".")[1])
            new = 2 * map_sizes[stage] - 1
            out[key] = resize_bias_table(table.reshape(side, side, -1), (new, new)).reshape(new * new, -1)
            assert new < side
    return out


# The paper's CoAtNet-0 (stride in the expansion conv: timm's conv_stride_mode="1x1"), and timm's default placement
# (the depthwise conv) built from the same rows; two timm _rw models with public weights.
CASES = [("CoAtNet0", {"conv_stride_mode": "1x1"}, None), ("CoAtNet0", {}, "dw"), ("CoAtNetNanoRW", {}, None),
         ("CoAtNet0RW", {}, None)]


@pytest.mark.parametrize("function,timm_kwargs,downsample", CASES)
def test_timm_logits_equal_at_224_and_with_cropped_and_interpolated_tables(function, timm_kwargs, downsample,
                                                                            tmp_path):
    torch, _ = _torch_and_timm()
    v = get_variant(function)
    if downsample:
        v = dataclasses.replace(v, family=dataclasses.replace(
            v.family, conv=dataclasses.replace(v.family.conv, downsample=downsample)))
    reference = _timm_model(v.timm, **timm_kwargs)
    state = _state(reference)
    torch.save(reference.state_dict(), tmp_path / "coatnet.pth")
    normalization = v.family.normalization.name

    # 224 px through weights="timm:<path>", and the same weights at 160 px in a model of unknown input size:
    # its 7x7 and 14x14 tables (from 224) are read at their centre for 5x5 and 10x10 maps.
    model = create_model(v, weights=f"timm:{tmp_path / 'coatnet.pth'}", classifier_activation=None,
                         input_shape=(None, None, 3))
    np.testing.assert_allclose(model.predict(_photos(224), verbose=0),
                               _timm_logits(reference, _photos(224), normalization), atol=1e-4, rtol=0)
    small = _timm_model(v.timm, img_size=160, **timm_kwargs)
    small.load_state_dict({k: torch.from_numpy(a) for k, a in _crop_tables(state, {2: 10, 3: 5}).items()})
    np.testing.assert_allclose(model.predict(_photos(160), verbose=0),
                               _timm_logits(small, _photos(160), normalization), atol=1e-4, rtol=0)

    # 256 px: timm interpolates the tables when loading 224 px weights into a 256 px model; so do we.
    from timm.models.maxxvit import checkpoint_filter_fn

    large = _timm_model(v.timm, img_size=256, **timm_kwargs)
    large.load_state_dict(checkpoint_filter_fn(reference.state_dict(), large))
    model = create_model(v, weights=None, classifier_activation=None, input_shape=(256, 256, 3))
    coatnet_to_keras(model, state)
    np.testing.assert_allclose(model.predict(_photos(256), verbose=0),
                               _timm_logits(large, _photos(256), normalization), atol=1e-4, rtol=0)


def test_default_weights_resolve_from_the_hugging_face_cache(tmp_path, monkeypatch):
    """``CoAtNetNanoRW()`` loads ``timm/coatnet_nano_rw_224.sw_in1k`` from the Hub cache (here made by hand), offline."""
    assert get_variant("CoAtNetNanoRW").default_weights == "timm:coatnet_nano_rw_224.sw_in1k"
    reference = _timm_model("coatnet_nano_rw_224")
    hugging_face_cache(tmp_path, monkeypatch, "timm/coatnet_nano_rw_224.sw_in1k", _state(reference))
    model = ek.CoAtNetNanoRW(classifier_activation=None)
    np.testing.assert_allclose(model.predict(_photos(224), verbose=0),
                               _timm_logits(reference, _photos(224), "inception"), atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="timm/coatnet_0_rw_224.sw_in1k is not in the Hugging Face cache"):
        ek.CoAtNet0RW()


# ----------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("blocks, message", [
    (("r2_s1_e4_i64_o64_c2", "r2_s2_e4_i64_o128_c2"), "Transformer stage before any downsampling stage"),
    (("r2_k3_s2_e4_i64_o96_se0.25", "r2_s2_e4_i96_o192_h36_c2"), "head size h36 does not divide its attention "
                                                                  "width of 192"),
    (("r2_k3_s2_e4_i64_o96_se0.25", "r2_s1_e4_i96_o192_c2"), "neither downsamples (s1) nor keeps its width"),
    (("r2_k3_s2_e4_i64_o96_c1", "r2_s2_e4_i96_o192_c2"), "is a Fused-MBConv stage; family 'coatnet' builds MBConv "
                                                          "(c0) and Transformer (c2) blocks only"),
    (("r2_k3_s2_e4_i64_o96_se0.25_noskip", "r2_s2_e4_i96_o192_c2"), "has 'noskip'; family 'coatnet' builds its "
                                                                     "blocks around a (pooled, projected) shortcut"),
])
def test_bad_stage_layouts_are_refused_by_name(blocks, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        builder.build_efficientnet(blocks, family="coatnet")


def test_transformer_stage_in_an_efficientnet_family_is_refused():
    with pytest.raises(ValueError, match="family 'v2' is an EfficientNet family"):
        builder.build_efficientnet(("r2_k3_s2_e4_i32_o64", "r2_s2_e4_i64_o128_c2"), family="v2")


def test_input_too_small_and_map_larger_than_the_table_are_refused():
    with pytest.raises(ValueError, match="at least 32x32"):
        ek.CoAtNet0(weights=None, input_shape=(16, 16, 3))
    model = ek.CoAtNetNanoRW(weights=None, input_shape=(None, None, 3))  # tables for 224 px
    with pytest.raises(ValueError, match="sees a 16x16 feature map, larger than the 14x14"):
        model.predict(np.zeros((1, 256, 256, 3), "float32"), verbose=0)
    # Built for 256 px, the same network covers it (its tables are larger).
    assert ek.CoAtNetNanoRW(weights=None, input_shape=(256, 256, 3)).get_layer(
        "block3a_attention").relative_position_bias.shape == (31, 31, 4)  # 128 channels / 32


def test_weights_of_another_configuration_are_refused(tmp_path):
    _, timm = _torch_and_timm()
    state = _state(timm.create_model("coatnet_0_rw_224"))
    with pytest.raises(ValueError, match="network of 14 blocks, model 'coatnet-nano-rw' has 16"):
        coatnet_to_keras(create_model("CoAtNetNanoRW", weights=None), state)
    with pytest.raises(ValueError, match="layer 'block3a_norm1' lacks 'moving_mean'"):  # LayerNorm into BatchNorm
        coatnet_to_keras(create_model("CoAtNetBN0RW", weights=None), state)
    with pytest.raises(ValueError, match="CoAtNet0 takes coatnet_0_224.<tag>"):
        create_model("CoAtNet0", weights="timm:coatnet_0_rw_224.sw_in1k")
    with pytest.raises(ValueError, match='CoAtNet0 has no weights="imagenet"'):
        ek.CoAtNet0(weights="imagenet")


# ----------------------------------------------------------------------------------------------- the rest


def test_feature_extractor_and_regularization():
    model = create_model("CoAtNetNanoRW", weights=None, include_top=False, input_shape=(None, None, 3))
    features = ek.feature_extractor(model).predict(np.zeros((1, 96, 96, 3), "float32"), verbose=0)
    assert {k: v.shape[1:] for k, v in features.items()} == {
        "P1": (48, 48, 64), "P2": (24, 24, 64), "P3": (12, 12, 128), "P4": (6, 6, 256), "P5": (3, 3, 512)}
    model = ek.CoAtNet0(weights=None)
    ek.set_regularization(model, dropout=0.3, stochastic_depth=0.4)
    assert ek.get_regularization(model) == pytest.approx({"dropout": 0.3, "stochastic_depth": 0.4})


# A small CoAtNet in timm's _rw conventions: two MBConv stages, two Transformer stages (head size 16).
SMALL = "r1_k3_s2_e4_i16_o16_se0.25,r1_k3_s2_e4_i16_o32_se0.25,r2_s2_e2_i32_o64_h16_c2,r1_s2_e2_i64_o64_h16_c2"


class _CountTraces(keras.callbacks.Callback):
    """Counts how often the train step is traced (``train_step`` runs once per trace), at each epoch's end."""

    def __init__(self):
        super().__init__()
        self.traces, self.at_epoch_end = 0, []

    def on_epoch_end(self, epoch, logs=None):
        self.at_epoch_end.append(self.traces)

    def set_model(self, model):
        super().set_model(model)
        if not getattr(model, "_counted", False):
            step = model.train_step
            model.train_step = lambda data: setattr(self, "traces", self.traces + 1) or step(data)
            model._counted = True


@pytest.mark.slow
def test_small_coatnet_learns_with_progressive_learning_then_serves(tmp_path):
    import tensorflow as tf

    from efficientnet_keras import export
    from efficientnet_keras.train import TrainConfig, train

    counter = _CountTraces()
    result = train(TrainConfig(
        model="CoAtNet0RW", recipe="imagenet", blocks=SMALL, dataset="digits", model_dir=str(tmp_path / "run"), epochs=6,
        num_stages=3, batch_size=32, image_size_min=32, image_size_max=64, optimizer="adamw",
        learning_rate_per_256=0.008, randaug_max=0, bn_momentum=0.9, ema_decay=0.99, verbose=0,
        mixed_precision="float16"), callbacks=[counter])  # loss scaling: the bias tables' gradients must be dense
    assert [s["image_size"] for s in result["stages"]] == [42, 53, 64]
    assert result["dtype_policy"] == "mixed_float16" and keras.mixed_precision.global_policy().name == "float32"
    assert result["eval"]["accuracy"] > 0.6  # chance is 0.1
    # The step traced once, in the first epoch, served every later size: the stages switch at epochs 3 and 5, the
    # maps at stride 16 grow from 3x3 to 4x4.
    assert counter.at_epoch_end == [1] * 6

    servable = export.load_servable(str(tmp_path / "run"))
    assert servable.image_size == 64
    folded = export.fold_batchnorm(servable.model)
    kinds = [type(layer).__name__ for layer in folded.layers]
    # Folded: the stem's and each MBConv's expansion BN; kept: pre-norms (after an add) and the BN after
    # squeeze-excite (timm _rw's order: depthwise conv, squeeze-excite, BN).
    assert (kinds.count("FoldedBatchNorm"), kinds.count("BatchNormalization")) == (3, 4)
    x = np.random.default_rng(0).uniform(0, 255, (4, 64, 64, 3)).astype("float32")
    expected = servable.model.predict(x, verbose=0)
    # The trained model computes in float16: the folded kernels round differently at that precision.
    np.testing.assert_allclose(folded.predict(x, verbose=0), expected, atol=2e-2 * np.abs(expected).max())
    path = export.export_saved_model(export.Servable(folded, 64, servable.class_names, servable.crop_fraction,
                                                     servable.preprocessing), str(tmp_path / "serving"), top_k=3)
    from efficientnet_keras.training.data import load_source

    _, test, _ = load_source("digits")  # a request of 32 encoded 8x8 digits of the evaluation split
    images, labels = (a[:32] for a in test.arrays)
    encoded = [tf.io.encode_png(image).numpy() for image in images]
    answer = tf.saved_model.load(path).signatures[export.SERVING_DEFAULT](image_bytes=tf.constant(encoded))
    assert answer["class_ids"].shape == (32, 3)
    assert np.mean(answer["class_ids"].numpy()[:, 0] == labels) > 0.6


@pytest.mark.slow
def test_tflite_and_mixed_precision_agree_with_float32(tmp_path):
    from efficientnet_keras import export

    model = create_model("CoAtNetNanoRW", weights=None, classifier_activation=None)
    x = _photos(224)
    expected = model.predict(x, verbose=0)
    path = export.export_tflite(export.Servable(model, 224, export.default_class_names(1000)),
                                str(tmp_path / "nano.tflite"))
    np.testing.assert_allclose(export.run_tflite(path, x), expected, atol=1e-4, rtol=0)
    for policy, tolerance in (("mixed_bfloat16", 0.1), ("mixed_float16", 0.01)):
        keras.mixed_precision.set_global_policy(policy)
        try:
            mixed = create_model("CoAtNetNanoRW", weights=None, classifier_activation=None,
                                 input_shape=(None, None, 3))
        finally:
            keras.mixed_precision.set_global_policy("float32")
        mixed.set_weights(model.get_weights())
        assert mixed.get_layer("block3a_attention").compute_dtype == policy.split("_")[1]
        np.testing.assert_allclose(mixed.predict(x, verbose=0), expected, atol=tolerance * np.abs(expected).max())


RW = ["CoAtNetNanoRW", "CoAtNet0RW", "CoAtNetBN0RW", "CoAtNet1RW", "CoAtNet2RW", "CoAtNet3RW"]


@pytest.mark.slow
@pytest.mark.parametrize("function", RW)
def test_every_rw_coatnet_gives_timms_logits_in_float64(function):
    """Each of timm's six _rw CoAtNets, random weights with randomized norms, float64 on both sides (so that 1e-6
    measures the mapping, not float32 rounding through the attention stages)."""
    torch, _ = _torch_and_timm()
    v = get_variant(function)
    reference = _timm_model(v.timm, num_classes=1000).double()  # coatnet_3_rw_224 defaults to in12k
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float64")
    try:
        model = create_model(v, weights=None, include_preprocessing=False, classifier_activation=None,
                             input_shape=(224, 224, 3))
    finally:
        keras.config.set_dtype_policy(policy)
    coatnet_to_keras(model, _state(reference))
    x = _photos(224).astype(np.float64) / 127.5 - 1  # inputs as the network sees them after its normalization
    with torch.no_grad():
        expected = reference(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    logits = keras.ops.convert_to_numpy(model(x, training=False))
    assert np.abs(expected[0] - expected[1]).max() > 0.1  # logits that tell the photos apart (1e5 x atol)
    np.testing.assert_allclose(logits, expected, atol=1e-6, rtol=0)
