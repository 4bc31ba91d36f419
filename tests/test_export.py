"""Export: BatchNorm folding, the TF Serving SavedModel (used as a serving client would), TFLite float and int8."""

import base64
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import enlarged_jpeg, jpeg_claiming, oversized_png, random_images, randomize_batchnorm, real_photos

from efficientnet_keras import build_efficientnet, create_model
from efficientnet_keras.training import data as data_lib
from efficientnet_keras.transforms import center_crop
from efficientnet_keras import export

TINY_BLOCKS = ["r1_k3_s1_e1_i16_o16_c1", "r1_k3_s2_e4_i16_o24_se0.25"]
# Real photos that ship with scikit-image (files in skimage/data, no download).
PHOTOS = ["astronaut", "camera", "chelsea", "coffee", "coins", "hubble_deep_field", "motorcycle_left", "rocket",
          "retina", "brick", "grass", "gravel", "moon", "motorcycle_right"]


def _photos():
    import skimage.io
    from skimage import data

    folder = os.path.dirname(data.__file__)
    files = {f.split(".")[0]: f for f in os.listdir(folder)}
    return {name: skimage.io.imread(os.path.join(folder, files[name])) for name in PHOTOS}


@pytest.fixture(scope="module")
def lite0():
    pytest.importorskip("torch")  # Lite0's pretrained weights come as a PyTorch file
    return export.load_servable("EfficientNetLite0")


@pytest.fixture(scope="module")
def lite0_export(lite0, tmp_path_factory):
    return export.export_saved_model(lite0, str(tmp_path_factory.mktemp("serving") / "lite0"), top_k=5)


@pytest.fixture(scope="module")
def encoded_photos():
    photos = _photos()
    return {"chelsea.jpg": tf.io.encode_jpeg(photos["chelsea"]).numpy(),
            "coffee.png": tf.io.encode_png(photos["coffee"]).numpy(),
            "astronaut.jpg": tf.io.encode_jpeg(photos["astronaut"]).numpy()}


# ------------------------------------------------------------------------------------------- BatchNorm folding


@pytest.mark.parametrize("variant", ["EfficientNetB0", "EfficientNetV2B0"])  # MBConv, and Fused-MBConv stages
def test_fold_batchnorm_removes_every_batchnorm_and_keeps_outputs(variant):
    # V1's input normalization is weights (set here as the official sets do): the fold must carry them over.
    model = randomize_batchnorm(create_model(variant, weights=None, classifier_activation=None,
                                              normalization="imagenet"))
    folded = export.fold_batchnorm(model)
    assert not [layer for layer in folded.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert [layer.name for layer in folded.layers] == [layer.name for layer in model.layers]
    x = random_images(2, 224)
    expected = model(x, training=False).numpy()
    # float32 rounding of the folded kernels, compounded over the depth: up to 7e-4 of the largest logit seen
    # with unseeded random networks (logits of +-50).
    np.testing.assert_allclose(folded(x, training=False).numpy(), expected, atol=2e-3 * np.abs(expected).max())
    assert np.abs(expected).max() > 0.1  # the logits are not trivially small


def test_fold_batchnorm_leaves_what_it_cannot_fold(tmp_path):
    inputs = keras.Input((8, 8, 3))
    conv = keras.layers.Conv2D(4, 3, name="shared_conv")(inputs)
    a = keras.layers.BatchNormalization(name="bn_after_shared")(conv)  # conv output also feeds the add
    dense = keras.layers.BatchNormalization(name="bn_after_dense")(keras.layers.Dense(4, name="dense")(inputs))
    b = keras.layers.BatchNormalization(name="bn_ok")(keras.layers.Conv2D(4, 3, use_bias=False, name="conv")(inputs))
    outputs = keras.layers.Add()([a, conv, b, keras.layers.Cropping2D(1)(dense)])
    model = randomize_batchnorm(keras.Model(inputs, outputs))
    assert export.foldable_pairs(model) == {"bn_ok": "conv"}
    folded = export.fold_batchnorm(model)
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(folded(x).numpy(), model(x).numpy(), atol=1e-5)
    folded.save(tmp_path / "folded.keras")  # the folded model saves and loads like any other
    reloaded = keras.saving.load_model(tmp_path / "folded.keras")
    assert type(reloaded.get_layer("bn_ok")).__name__ == "FoldedBatchNorm"
    np.testing.assert_allclose(reloaded(x).numpy(), model(x).numpy(), atol=1e-5)


# ------------------------------------------------------------------------------------------- SavedModel


def test_serving_default_matches_the_evaluation_pipeline(lite0, lite0_export, encoded_photos, tmp_path):
    """Bytes through the exported signature == the Keras model on the training pipeline's eval batches."""
    root = tmp_path / "photos"
    for split in ("train", "test"):
        for name, encoded in encoded_photos.items():
            (root / split / name.split(".")[0]).mkdir(parents=True)
            (root / split / name.split(".")[0] / name).write_bytes(encoded)
    _, eval_source, info = data_lib.load_source(str(root))
    eval_ds = data_lib.make_eval_dataset(eval_source, info, lite0.image_size, batch_size=8)
    batches = list(eval_ds.as_numpy_iterator())
    images = np.concatenate([x for x, _ in batches])
    expected = lite0.model.predict(images, verbose=0)
    by_class = {name.split(".")[0]: name for name in encoded_photos}
    files = [by_class[info.class_names[label]] for label in np.concatenate([y for _, y in batches]).argmax(-1)]
    loaded = tf.saved_model.load(lite0_export)
    out = loaded.signatures[export.SERVING_DEFAULT](image_bytes=tf.constant([encoded_photos[f] for f in files]))
    top5 = np.argsort(-expected, axis=-1)[:, :5]
    np.testing.assert_array_equal(out["class_ids"].numpy(), top5)
    np.testing.assert_allclose(out["probabilities"].numpy(), np.take_along_axis(expected, top5, -1), atol=1e-5)
    names = out["class_names"].numpy()
    assert names[files.index("chelsea.jpg"), 0] == b"Egyptian_cat"
    assert names[files.index("coffee.png"), 0] == b"espresso"


def test_serving_images_signature_and_bad_top_k(lite0, lite0_export):
    loaded = tf.saved_model.load(lite0_export)
    x = random_images(2, 224)
    out = loaded.signatures[export.SERVING_IMAGES](images=tf.constant(x))
    probs = lite0.model.predict(x, verbose=0)
    np.testing.assert_allclose(out["probabilities"].numpy(), -np.sort(-probs, -1)[:, :5], atol=1e-5)
    with pytest.raises(ValueError, match="top_k=1001 is outside 1..1000"):
        export.export_saved_model(lite0, lite0_export + "_unused", top_k=1001)


@pytest.mark.slow
def test_served_in_a_fresh_process_like_tf_serving(lite0_export, encoded_photos, tmp_path):
    """A new process loads the export, gets a REST body and a gRPC PredictRequest through the default signature,
    answers a corrupt image with an error and keeps serving; ``saved_model_cli`` inspects and runs it."""
    # TF Serving's REST "instances" format: binary inputs are {"b64": ...} objects (its docs, "Encoding binary values").
    body = json.dumps({"signature_name": "serving_default",
                       "instances": [{"b64": base64.b64encode(encoded_photos[f]).decode()}
                                     for f in ("chelsea.jpg", "coffee.png")]})
    (tmp_path / "body.json").write_text(body)
    script = textwrap.dedent(f"""
        import base64, json, sys
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2
        model = tf.saved_model.load({lite0_export!r})
        sig = model.signatures["serving_default"]
        (key,) = sig.structured_input_signature[1]

        def rest(body):  # what the REST handler does with a row-format body whose only input is bytes
            request = json.loads(body)
            fn = model.signatures[request.get("signature_name", "serving_default")]
            values = [base64.b64decode(i["b64"]) for i in request["instances"]]
            out = fn(**{{key: tf.constant(values)}})
            return {{"predictions": [{{k: (v.numpy()[i].tolist() if v.dtype != tf.string else
                                         [s.decode() for s in v.numpy()[i]]) for k, v in out.items()}}
                                    for i in range(len(values))]}}

        answer = rest(open({str(tmp_path / "body.json")!r}).read())
        print("REST", json.dumps([p["class_names"][0] for p in answer["predictions"]]))

        request = predict_pb2.PredictRequest()
        request.model_spec.name = "lite0"
        request.model_spec.signature_name = "serving_default"
        request.inputs[key].CopyFrom(tf.make_tensor_proto([base64.b64decode(i["b64"])
                                                           for i in json.loads(open({str(tmp_path / "body.json")!r}).read())["instances"]]))
        received = predict_pb2.PredictRequest.FromString(request.SerializeToString())  # over the wire
        out = model.signatures[received.model_spec.signature_name](
            **{{k: tf.constant(tf.make_ndarray(v)) for k, v in received.inputs.items()}})
        response = predict_pb2.PredictResponse()
        for k, v in out.items():
            response.outputs[k].CopyFrom(tf.make_tensor_proto(v))
        print("GRPC", [s.decode() for s in tf.make_ndarray(response.outputs["class_names"])[:, 0]])
        try:
            sig(**{{key: tf.constant([b"this is not an image"])}})
            print("CORRUPT accepted")
        except tf.errors.InvalidArgumentError as e:
            print("CORRUPT error:", e.message.splitlines()[0] if "Unknown image" in e.message.splitlines()[0]
                  else [l for l in e.message.splitlines() if "Unknown image" in l][0])
        print("AFTER", sig(**{{key: tf.constant([base64.b64decode(json.loads(open({str(tmp_path / "body.json")!r})
                                                                           .read())["instances"][0]["b64"])])}})
              ["class_names"].numpy()[0, 0].decode())
    """)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if line.split(" ")[0].isupper())
    assert json.loads(lines["REST"]) == ["Egyptian_cat", "espresso"]
    assert lines["GRPC"] == "['Egyptian_cat', 'espresso']"
    assert lines["CORRUPT"].startswith("error:") and "Unknown image file format" in lines["CORRUPT"]
    assert lines["AFTER"] == "Egyptian_cat"

    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    show = subprocess.run([cli, "show", "--dir", lite0_export, "--all"], capture_output=True, text=True, env=env,
                          timeout=300)
    assert show.returncode == 0, show.stderr[-2000:]
    assert "signature_def['serving_default']" in show.stdout and "signature_def['serving_images']" in show.stdout
    assert "inputs['image_bytes'] tensor_info:\n        dtype: DT_STRING\n        shape: (-1)" in show.stdout
    np.save(tmp_path / "grey.npy", np.full((1, 224, 224, 3), 128, np.float32))
    run = subprocess.run([cli, "run", "--dir", lite0_export, "--tag_set", "serve", "--signature_def", "serving_images",
                          "--inputs", f"images={tmp_path / 'grey.npy'}"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Result for output key class_ids" in run.stdout and "Result for output key probabilities" in run.stdout


def test_versions_and_overwrite(tmp_path):
    model = build_efficientnet(TINY_BLOCKS, 1.0, 1.0, 32, family="v2", classes=3, classifier_activation=None,
                               input_shape=(32, 32, 3))
    servable = export.Servable(model, 32, ["a", "b", "c"])
    assert not servable.outputs_probabilities  # logits: the signature applies softmax
    base = str(tmp_path / "exports")
    assert export.export_saved_model(servable, base, top_k=3).endswith(os.path.join("exports", "1"))
    assert export.export_saved_model(servable, base, top_k=3).endswith(os.path.join("exports", "2"))
    with pytest.raises(ValueError, match="already exists and is not empty; pass overwrite=True"):
        export.export_saved_model(servable, base, version=2, top_k=3)
    path = export.export_saved_model(servable, base, version=2, top_k=2, overwrite=True)
    out = tf.saved_model.load(path).signatures[export.SERVING_IMAGES](images=tf.constant(random_images(2, 32)))
    np.testing.assert_allclose(out["probabilities"].numpy(),
                               -np.sort(-keras.ops.softmax(model(random_images(2, 32))).numpy(), -1)[:, :2], atol=1e-5)
    assert set(out["class_names"].numpy().ravel()) <= {b"a", b"b", b"c"}


def test_load_servable_sources_and_errors(tmp_path):
    model = build_efficientnet(TINY_BLOCKS, 1.0, 1.0, 32, family="v2", classes=3, input_shape=(None, None, 3))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    model.save(run_dir / "model.keras")
    (run_dir / "results.json").write_text(json.dumps({"eval_size": 40, "crop_fraction": 0.9,
                                                      "class_names": ["x", "y", "z"]}))
    servable = export.load_servable(str(run_dir))
    assert (servable.image_size, servable.crop_fraction, servable.class_names) == (40, 0.9, ["x", "y", "z"])
    beside = export.load_servable(str(run_dir / "model.keras"))  # a run's model.keras: the run's record beside it
    assert (beside.image_size, beside.crop_fraction, beside.class_names) == (40, 0.9, ["x", "y", "z"])
    model.save(tmp_path / "tiny.keras")  # a .keras file on its own
    assert export.load_servable(str(tmp_path / "tiny.keras"), image_size=48).class_names == ["0", "1", "2"]
    with pytest.raises(ValueError, match="takes images of any size; pass image_size"):
        export.load_servable(str(tmp_path / "tiny.keras"))
    with pytest.raises(ValueError, match="Unknown model or checkpoint 'EfficientNetB9'"):
        export.load_servable("EfficientNetB9")
    with pytest.raises(ValueError, match="Model file not found"):
        export.load_servable(str(tmp_path / "missing.keras"))
    with pytest.raises(ValueError, match="without model.keras: not a finished training run"):
        export.load_servable(str(tmp_path))
    with pytest.raises(ValueError, match="2 class names for a model with 3 classes"):
        export.Servable(model, 32, ["a", "b"])


@pytest.mark.slow
def test_cli_exports_a_folded_model(tmp_path):
    model = randomize_batchnorm(build_efficientnet(TINY_BLOCKS, 1.0, 1.0, 32, family="v2", classes=3,
                                                    input_shape=(None, None, 3)))
    model.save(tmp_path / "tiny.keras")
    cmd = [sys.executable, "-m", "efficientnet_keras.export", f"--model={tmp_path / 'tiny.keras'}",
           f"--export_dir={tmp_path / 'serving'}", "--image_size=48", "--top_k=3", "--fold_batchnorm"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Wrote {tmp_path / 'serving' / '1'}" in result.stdout
    x = random_images(2, 48)
    out = tf.saved_model.load(str(tmp_path / "serving" / "1")).signatures[export.SERVING_IMAGES](images=tf.constant(x))
    probs = model.predict(x, verbose=0)
    np.testing.assert_allclose(out["probabilities"].numpy(), -np.sort(-probs, -1), atol=1e-5)
    again = subprocess.run(cmd + ["--version=1"], capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 1 and "already exists and is not empty" in again.stderr


# ------------------------------------------------------------------------------------------- TFLite


@pytest.mark.slow
def test_tflite_float_logits_match_keras(tmp_path):
    servable = export.Servable(create_model("EfficientNetLite0", classifier_activation=None), 224,
                               export.default_class_names(1000))
    path = export.export_tflite(servable, str(tmp_path / "lite0.tflite"))
    photos = _photos()
    images = np.stack([center_crop(photos[p], 224).numpy() for p in ("chelsea", "coffee", "rocket")])
    logits = servable.model.predict(images, verbose=0)
    np.testing.assert_allclose(export.run_tflite(path, images), logits, atol=1e-4, rtol=0)
    assert np.abs(logits).max() > 5


@pytest.mark.slow
def test_tflite_int8_agrees_with_float(lite0, tmp_path):
    """Full-integer Lite0, calibrated on random crops of the photos, evaluated on their central crops and flips."""
    photos = _photos()
    rng = np.random.default_rng(0)
    calibration = [data_lib.inception_crop(photo, 224, tf.constant(rng.integers(0, 2**31, 2)), (0.25, 1.0)).numpy()
                   for photo in photos.values() for _ in range(4)]
    path = export.export_tflite(lite0, str(tmp_path / "lite0_int8.tflite"), "int8", calibration)
    centre = np.stack([center_crop(photo, 224).numpy() for photo in photos.values()])
    images = np.concatenate([centre, centre[:, :, ::-1]])
    float_top1 = lite0.model.predict(images, verbose=0).argmax(-1)
    int8 = export.run_tflite(path, images)
    agreement = float((int8.argmax(-1) == float_top1).mean())
    print(f"int8 vs float top-1 agreement on {len(images)} photos (14 skimage photos + flips): {agreement:.0%}")
    assert agreement >= 0.75
    names = list(photos)
    assert int8[names.index("chelsea")].argmax() in (281, 282, 285)  # tabby / tiger cat / Egyptian cat
    assert int8[names.index("coffee")].argmax() == 967  # espresso
    with pytest.raises(ValueError, match=r"representative image 0 has shape \(32, 32, 3\); the model takes"):
        export.export_tflite(lite0, str(tmp_path / "bad.tflite"), "int8", [np.zeros((32, 32, 3))])
    with pytest.raises(ValueError, match="already exists"):
        export.export_tflite(lite0, path, "int8", calibration)
    with pytest.raises(ValueError, match="needs representative_images"):
        export.export_tflite(lite0, str(tmp_path / "bad.tflite"), "int8")
    with pytest.raises(ValueError, match="must end with .tflite"):
        export.export_tflite(lite0, str(tmp_path / "bad.tfl"))


@pytest.mark.slow
def test_tflite_float16_is_half_the_file_and_agrees_with_float32(lite0, tmp_path):
    """Float16 weights: the file is about half the float32 one, and the classes of the 14 scikit-image photos
    (central crops and flips) agree with float32."""
    float32 = export.export_tflite(lite0, str(tmp_path / "lite0.tflite"))
    float16 = export.export_tflite(lite0, str(tmp_path / "lite0_fp16.tflite"), "float16")
    sizes = os.path.getsize(float32), os.path.getsize(float16)
    photos = _photos()
    centre = np.stack([center_crop(photo, 224).numpy() for photo in photos.values()])
    images = np.concatenate([centre, centre[:, :, ::-1]])
    full, half = export.run_tflite(float32, images), export.run_tflite(float16, images)
    agreement = float((half.argmax(-1) == full.argmax(-1)).mean())
    print(f"float16 TFLite: {sizes[1] / 2**20:.2f} MiB vs {sizes[0] / 2**20:.2f} MiB float32; top-1 agreement on "
          f"{len(images)} photos (14 skimage photos + flips): {agreement:.0%}; largest probability difference "
          f"{np.abs(half - full).max():.2e}")
    assert 0.45 < sizes[1] / sizes[0] < 0.6
    assert agreement == 1.0 and np.abs(half - full).max() < 0.02
    with pytest.raises(ValueError, match="quantize must be None \\(float32\\), 'float16' or 'int8', got 'fp8'"):
        export.export_tflite(lite0, str(tmp_path / "bad.tflite"), "fp8")


def test_calibration_images_from_a_folder_and_a_dataset(tmp_path, encoded_photos):
    for name, encoded in encoded_photos.items():
        (tmp_path / "sub").mkdir(exist_ok=True)
        (tmp_path / "sub" / name).write_bytes(encoded)
    images = export.calibration_images(str(tmp_path), 64)
    assert images.shape == (3, 64, 64, 3) and images.dtype == np.float32 and 0 <= images.min() < images.max() <= 255
    digits = export.calibration_images("digits", 32, limit=5)
    # The first 5 training digits through the evaluation pipeline's transform (the dataset's own crop).
    train, _, info = data_lib.load_source("digits")
    expected = next(iter(data_lib.make_eval_dataset(data_lib.limit(train, 5), info, 32, 5)))[0].numpy()
    np.testing.assert_allclose(digits, expected, atol=1e-4)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="No JPEG/PNG/BMP/GIF images below"):
        export.calibration_images(str(tmp_path / "empty"), 32)


def test_a_model_with_fewer_than_five_classes_exports_with_default_flags(tmp_path):
    """top_k defaults to min(5, classes): a 2-class model returns both classes."""
    model = build_efficientnet(TINY_BLOCKS, 1.0, 1.0, 32, family="v2", classes=2, classifier_activation=None,
                               input_shape=(32, 32, 3))
    path = export.export_saved_model(export.Servable(model, 32, ["cat", "dog"]), str(tmp_path / "exports"))
    out = tf.saved_model.load(path).signatures[export.SERVING_IMAGES](images=tf.constant(random_images(3, 32)))
    assert out["class_ids"].shape == (3, 2) and sorted(out["class_names"].numpy()[0]) == [b"cat", b"dog"]
    with open(os.path.join(path, "assets.extra.json")) as f:
        assert json.load(f)["top_k"] == 2


@pytest.mark.slow
def test_a_hostile_image_is_refused_and_the_server_keeps_serving(lite0_export, encoded_photos, tmp_path):
    """A 1.1 MB PNG of 20000x20000 pixels and a JPEG whose header claims 30000x30000: answered INVALID_ARGUMENT
    naming the size and the limit before any decoding (peak memory of the serving process grows < 200 MB), and the
    next request is classified."""
    (tmp_path / "huge.png").write_bytes(oversized_png())
    (tmp_path / "claims.jpg").write_bytes(jpeg_claiming())
    (tmp_path / "cat.jpg").write_bytes(encoded_photos["chelsea.jpg"])
    script = textwrap.dedent(f"""
        import resource, time
        import tensorflow as tf
        sig = tf.saved_model.load({lite0_export!r}).signatures["serving_default"]
        read = lambda name: open({str(tmp_path)!r} + "/" + name, "rb").read()
        sig(image_bytes=tf.constant([read("cat.jpg")]))  # warm: every op traced and allocated once
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        for name in ("huge.png", "claims.jpg"):
            started = time.perf_counter()
            try:
                sig(image_bytes=tf.constant([read(name)]))
                print("ACCEPTED", name)
            except tf.errors.InvalidArgumentError as e:
                line = [l for l in e.message.splitlines() if "The image is" in l][0]
                print("REFUSED", name, f"{{time.perf_counter() - started:.2f}}", line[line.index("The image is"):])
        grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
        print("GROWN", f"{{grown:.0f}}")
        print("AFTER", sig(image_bytes=tf.constant([read("cat.jpg")]))["class_names"].numpy()[0, 0].decode())
    """)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    refused = [line.split(" ", 3) for line in result.stdout.splitlines() if line.startswith(("REFUSED", "ACCEPTED"))]
    assert [(r[0], r[1]) for r in refused] == [("REFUSED", "huge.png"), ("REFUSED", "claims.jpg")], result.stdout
    print("seconds to refuse:", [r[2] for r in refused])  # reported, not asserted (no wall-clock asserts)
    assert refused[0][3].startswith("The image is 20000x20000 pixels (width x height, from its header): above the "
                                    "limit of 40000000 pixels")
    assert refused[1][3].startswith("The image is 30000x30000 pixels")
    grown = float(next(line for line in result.stdout.splitlines() if line.startswith("GROWN")).split()[1])
    assert grown < 200, f"peak RSS grew by {grown} MB"
    assert "AFTER Egyptian_cat" in result.stdout


def test_large_jpegs_are_decoded_scaled_and_classified_as_when_decoded_whole(lite0, lite0_export, tmp_path):
    """12-megapixel JPEGs of real photos: the default export decodes them at 1/4 scale; top-1 equals the export
    that decodes every image at full scale (--nojpeg_scaling), and each records its setting."""
    whole = export.export_saved_model(lite0, str(tmp_path / "whole"), top_k=5, jpeg_scaling=False)
    photos = [enlarged_jpeg(p, 3000, 4000) for p in real_photos()]
    answers = [tf.saved_model.load(path).signatures["serving_default"](image_bytes=tf.constant(photos))
               for path in (lite0_export, whole)]
    top1 = [a["class_ids"].numpy()[:, 0].tolist() for a in answers]
    assert top1[0] == top1[1], top1
    print("top-1 probability, scaled vs whole:", answers[0]["probabilities"].numpy()[:, 0],
          answers[1]["probabilities"].numpy()[:, 0])
    settings = [json.loads(open(os.path.join(path, "assets.extra.json")).read())["jpeg_scaling"]
                for path in (lite0_export, whole)]
    assert settings == [True, False]


def test_the_pixel_limit_is_an_export_setting(lite0, tmp_path):
    with pytest.raises(ValueError, match="max_pixels must be a positive number of pixels"):
        export.export_saved_model(lite0, str(tmp_path / "unused"), max_pixels=0)
    assert not (tmp_path / "unused").exists()
    strict = tf.saved_model.load(export.export_saved_model(lite0, str(tmp_path / "strict"), max_pixels=100 * 100))
    photo = tf.io.encode_png(_photos()["coffee"][:101, :100]).numpy()
    with pytest.raises(tf.errors.InvalidArgumentError, match="The image is 100x101 pixels"):
        strict.signatures["serving_default"](image_bytes=tf.constant([photo]))
