"""The trainer end to end, through its CLI as a user runs it: learning, resume after SIGKILL, strategies, errors."""

import csv
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from conftest import count_traces, oversized_png, real_photos
from efficientnet_keras.train import TrainConfig, WarmupExponentialDecay, evaluate, train
from efficientnet_keras.transforms import saved_eval_transform

# A few steps per epoch on the embedded digits: 192 training images, batches of 32, and a small custom network
# in the V2 family (Fused-MBConv, MBConv with squeeze-excite), so that tracing does not dominate the tests.
TINY = "r1_k3_s1_e1_i16_o16_c1,r2_k3_s2_e4_i16_o24_c1,r2_k3_s2_e4_i24_o32_se0.25,r2_k3_s2_e4_i32_o48_se0.25," \
       "r1_k3_s2_e4_i48_o64_se0.25"
QUICK = ["--dataset=digits", "--model=EfficientNetV2B0", f"--blocks={TINY}", "--train_examples=192",
         "--eval_examples=96",
         "--batch_size=32", "--epochs=4", "--num_stages=2", "--image_size_min=32", "--image_size_max=40",
         "--optimizer=adamw", "--learning_rate_per_256=0.008", "--bn_momentum=0.9", "--ema_decay=0.99",
         "--verbose=2", "--augment=none"]  # AutoAugment (V2-B0's default) is tested by itself; here it only costs time
# Agreement between strategies: a few steps (2 per epoch, one epoch per stage) without random masks or RandAugment
# (replicas and hosts draw their own streams), and RMSProp, whose first updates are proportional to the gradient, so float-rounding
# differences of the all-reduce stay at rounding size instead of being normalized up to the learning rate.
AGREE_CONFIG = dict(dataset="digits", model="EfficientNetV2B0", blocks=TINY, train_examples=64, eval_examples=96,
                    batch_size=32, epochs=2, num_stages=2, image_size_min=32, image_size_max=40, optimizer="rmsprop",
                    learning_rate_per_256=0.008, bn_momentum=0.9, ema_decay=0.99, verbose=2, augment="none",
                    dropout=0.0, stochastic_depth=0.0, randaug_max=0.0, deterministic=True)


def _flags(config: dict) -> list[str]:
    """The train CLI's flags for a TrainConfig's fields."""
    return [f"--{key}={str(value).lower() if isinstance(value, bool) else value}" for key, value in config.items()]


def _env(**extra):
    return {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "TF_CPP_MIN_LOG_LEVEL": "3", **extra}


def _train(*args, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "efficientnet_keras.train", *args], env=env or _env(),
                          capture_output=True, text=True, timeout=timeout)


def _weights(model_dir):
    model = keras.saving.load_model(os.path.join(model_dir, "model.keras"))
    return model.get_weights()


def _history(model_dir):
    with open(os.path.join(model_dir, "history.csv")) as f:
        return list(csv.DictReader(f))


class _StepLog(keras.callbacks.Callback):
    """Per epoch: the optimizer's step count and learning rate after each batch."""

    def __init__(self):
        super().__init__()
        self.epochs, self.traces = [], None

    def set_model(self, model):  # before fit() makes its train function: count the traces of the whole run
        super().set_model(model)
        if self.traces is None:
            self.traces = count_traces(model)

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append([])

    def on_train_batch_end(self, batch, logs=None):
        optimizer = self.model.optimizer
        self.epochs[-1].append((int(optimizer.iterations.numpy()), float(optimizer.learning_rate.numpy())))

    def on_train_end(self, logs=None):  # the last fit's end comes before the trainer copies the averages in
        bn = self.model.get_layer("stem_bn")
        averages = {v.path: a.numpy().copy() for v, a in self.model.optimizer.averaged_pairs()}
        self.raw_mean, self.average_mean = bn.moving_mean.numpy().copy(), averages[bn.moving_mean.path]


@pytest.mark.slow
def test_progressive_run_on_embedded_dataset_learns(tmp_path):
    """The README's training command, shortened: progressive learning on all real digits (a small network of the
    V2 family: 91% measured, V2-B0 itself 3.7x slower), evaluated and saved."""
    steps = _StepLog()
    result = train(TrainConfig(
        model="EfficientNetV2B0", blocks=TINY, dataset="digits", model_dir=str(tmp_path / "run"), epochs=6, num_stages=3,
        batch_size=32, image_size_min=32, image_size_max=48, optimizer="adamw", learning_rate_per_256=0.008,
        augment="none", bn_momentum=0.9, ema_decay=0.99, verbose=0), callbacks=[steps])
    assert result["eval"]["accuracy"] > 0.6  # chance is 0.1
    # Every optimizer step is a batch: none counted at epoch ends (Keras does that for datasets of unknown length).
    iterations = [i for epoch in steps.epochs for i, _ in epoch]
    assert iterations == list(range(1, len(iterations) + 1)) and len({len(e) for e in steps.epochs}) == 1
    # One trace of the train step for the whole run: stages change the image size, not the traced step, and the
    # optimizer is built before fit (variables created while tracing would make tf.function trace it again).
    assert len(steps.traces) == 1
    assert [s["image_size"] for s in result["stages"]] == [37, 42, 48]  # official: 32 + 16 (i + 1) / 3
    assert os.path.exists(result["model_path"])
    # The saved model holds the EMA of the BatchNorm statistics (as of the weights), not their last raw values.
    saved = keras.saving.load_model(result["model_path"]).get_layer("stem_bn").moving_mean.numpy()
    np.testing.assert_array_equal(saved, steps.average_mean)
    assert not np.allclose(saved, steps.raw_mean)
    rows = _history(str(tmp_path / "run"))
    assert [float(r["image_size"]) for r in rows] == [37, 37, 42, 42, 48, 48]
    # The eval command reloads the saved model and reproduces the final evaluation.
    assert evaluate(str(tmp_path / "run"), batch_size=32)["accuracy"] == pytest.approx(result["eval"]["accuracy"])


# A training process that SIGKILLs itself after the first step of epoch 2 of 4 (the middle of stage 1, epochs
# 1-2): the backup holds epoch 1, the step after it is lost, nothing else is written.
KILLED_MID_STAGE = """
import json, os, signal, sys
import efficientnet_keras
import keras
from efficientnet_keras.training import TrainConfig, train

class KillMidStage(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == 1:
            os.kill(os.getpid(), signal.SIGKILL)

train(TrainConfig(**json.loads(sys.argv[1])), callbacks=[KillMidStage()])
"""


@pytest.mark.slow
def test_sigkill_mid_stage_then_resume_gives_the_same_weights(tmp_path):
    plain, killed = str(tmp_path / "plain"), str(tmp_path / "killed")
    config = {**QUICK_CONFIG, "deterministic": True, "seed": 7, "model_dir": killed}
    process = subprocess.run([sys.executable, "-c", KILLED_MID_STAGE, json.dumps(config)], env=_env(),
                             capture_output=True, text=True, timeout=600)
    assert process.returncode == -signal.SIGKILL, process.stderr[-3000:]
    with open(os.path.join(killed, "backup", "training_metadata.json")) as f:
        assert json.load(f)["epoch"] == 1  # epoch 1's backup, written before the kill: resume at epoch 2
    assert not os.path.exists(os.path.join(killed, "model.keras"))

    with pytest.raises(ValueError, match="Pass --resume"):  # without resume nothing is touched
        train(TrainConfig(**config))
    train(TrainConfig(**{**config, "model_dir": plain}))
    train(TrainConfig(**config, resume=True))
    rows_plain, rows_killed = _history(plain), _history(killed)
    assert [r["epoch"] for r in rows_killed] == ["0", "1", "2", "3"]  # each epoch once: resumed at epoch 2
    for a, b in zip(rows_plain, rows_killed, strict=True):
        assert (a["stage"], a["image_size"], a["dropout"]) == (b["stage"], b["image_size"], b["dropout"])
        assert float(a["loss"]) == pytest.approx(float(b["loss"]), rel=1e-5)
    for a, b in zip(_weights(plain), _weights(killed), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_schedule_segments_keep_warmup_and_decay_in_epochs():
    plain = WarmupExponentialDecay(0.1, 10, 20, 0.5)
    one = WarmupExponentialDecay(0.1, 10, 20, 0.5, segments=[[0, 1.0, 1.0]])
    assert [float(one(i)) for i in range(60)] == pytest.approx([float(plain(i)) for i in range(60)])
    # 5 steps of a double batch (each worth 2 base steps, learning rate x2), then the base batch.
    double_first = WarmupExponentialDecay(0.1, 10, 20, 0.5, segments=[[0, 2.0, 2.0], [5, 1.0, 1.0]])
    assert float(double_first(2)) == pytest.approx(2 * float(plain(4)))
    assert float(double_first(5)) == pytest.approx(float(plain(10)))
    assert float(double_first(30)) == pytest.approx(float(plain(35)))
    assert WarmupExponentialDecay.from_config(double_first.get_config()).segments == double_first.segments
    with pytest.raises(ValueError, match="start at step 0"):
        WarmupExponentialDecay(0.1, 10, 20, 0.5, segments=[[3, 1.0, 1.0]])


@pytest.mark.slow
def test_larger_batch_at_small_sizes(tmp_path):
    """32 px trains with batch 64, 48 px with 32: fewer steps per epoch at the small size, the learning rate scaled
    with the batch, warm-up and decay still in epochs, and the run still one run (epochs, logs, no extra steps)."""
    steps = _StepLog()
    result = train(TrainConfig(**{**QUICK_CONFIG, "model_dir": str(tmp_path / "run"), "image_size_max": 48,
                                  "max_batch_scale": 2.0, "warmup_epochs": 1.0, "progression": "paper"}),
                   callbacks=[steps])
    assert [len(epoch) for epoch in steps.epochs] == [3, 3, 6, 6]  # 192 images: batches of 64, then of 32
    assert [i for epoch in steps.epochs for i, _ in epoch] == list(range(1, 19))
    assert result["history"]["batch_size"] == [64, 64, 32, 32]
    assert [r["batch_size"] for r in _history(str(tmp_path / "run"))] == ["64.0", "64.0", "32.0", "32.0"]
    # Peak 0.016 / 256 per image: 0.004 at batch 64 after the 1-epoch warm-up, 0.002 at batch 32 (before the
    # first decay at 2.4 epochs).
    assert steps.epochs[0][-1][1] == pytest.approx(0.004)
    assert steps.epochs[2][0][1] == pytest.approx(0.002)
    assert os.path.exists(result["model_path"])


@pytest.fixture(scope="session")
def one_device_run(tmp_path_factory):
    """The single-device reference run that each strategy must agree with."""
    model_dir = str(tmp_path_factory.mktemp("one"))
    train(TrainConfig(**AGREE_CONFIG, model_dir=model_dir, strategy="default"))  # in this process
    return model_dir


@pytest.fixture(scope="session")
def mirrored_run(tmp_path_factory):
    two = str(tmp_path_factory.mktemp("two"))
    mirrored = _train(*_flags(AGREE_CONFIG), f"--model_dir={two}", "--strategy=mirrored", "--cpu_devices=2")
    assert mirrored.returncode == 0, mirrored.stderr[-3000:]
    return two


@pytest.mark.slow
@pytest.mark.xdist_group("one_device_run")
def test_mirrored_strategy_on_two_cpu_devices_agrees_with_one_device(one_device_run, mirrored_run):
    assert json.load(open(os.path.join(mirrored_run, "results.json")))["replicas"] == 2
    _assert_agree(one_device_run, mirrored_run)


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:  # all bound at once, so the ports differ
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _run_workers(command, num_workers=2, timeout=300):
    """Start ``command`` once per worker of a localhost cluster (TF_CONFIG); bounded: none outlives the timeout.
    Returns [(returncode, output)] by worker index."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(num_workers)]}
    workers = [subprocess.Popen(
        command, env=_env(TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(num_workers)]
    deadline = time.time() + timeout
    try:
        outputs = [w.communicate(timeout=max(1, deadline - time.time()))[0] for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
    return [(w.returncode, out) for w, out in zip(workers, outputs, strict=True)]


@pytest.mark.slow
@pytest.mark.xdist_group("one_device_run")
def test_multiworker_on_localhost_agrees_with_one_device(tmp_path, one_device_run):
    """Two worker processes on 127.0.0.1 share one model_dir: the chief writes it, the other writes nothing."""
    two = tmp_path / "two"
    command = [sys.executable, "-m", "efficientnet_keras.train", *_flags(AGREE_CONFIG), f"--model_dir={two}",
               "--strategy=multiworker"]
    (chief_rc, chief_out), (worker_rc, worker_out) = _run_workers(command)
    assert chief_rc == 0, chief_out[-3000:]
    assert worker_rc == 0, worker_out[-3000:]
    assert f"Saved {two / 'model.keras'}" in chief_out and "Saved" not in worker_out
    assert json.load(open(two / "results.json"))["replicas"] == 2
    _assert_agree(one_device_run, str(two))
    # Each worker saw the same final evaluation (metrics are all-reduced over the workers).
    evaluations = [re.findall(r"Evaluation: .*", out)[-1] for out in (chief_out, worker_out)]
    assert evaluations[0] == evaluations[1]


def test_workers_stop_when_the_chief_refuses_model_dir(tmp_path):
    """The chief alone checks model_dir; the other workers must stop with it, not wait for it forever."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "run_config.json").write_text(json.dumps({"model": "EfficientNetB3", "dataset": "digits"}))
    (chief_rc, chief_out), (worker_rc, worker_out) = _run_workers(  # a worker left waiting is killed: rc -9
        [sys.executable, "-m", "efficientnet_keras.train", *QUICK, f"--model_dir={run}", "--strategy=multiworker"],
        timeout=120)
    assert chief_rc == 1 and "holds a run of another configuration" in chief_out, chief_out[-2000:]
    assert worker_rc == 1 and f"The chief worker refused model_dir '{run}'" in worker_out, worker_out[-2000:]
    assert json.loads((run / "run_config.json").read_text())["model"] == "EfficientNetB3"  # untouched


def _assert_agree(single_dir, distributed_dir):
    """Same losses per epoch and same final weights (EMA included) as the single-device run, up to rounding."""
    # The all-reduce's summation order on CPU depends on which replica arrives first: measured up to 3e-4 relative
    # under load. A wrong per-replica batch or learning-rate scaling shows up as percent-size differences.
    for a, b in zip(_history(single_dir), _history(distributed_dir), strict=True):
        assert float(a["loss"]) == pytest.approx(float(b["loss"]), rel=1e-3)
    # Weights: up to 8e-4 measured for MirroredStrategy with per-replica input pipelines (5e-4 before them). The
    # averaged BatchNorm statistics differ more, up to 0.8% (unexplained; open): compared at 1e-2.
    single, distributed = (keras.saving.load_model(os.path.join(d, "model.keras")) for d in (single_dir, distributed_dir))
    for a, b in zip(single.weights, distributed.weights, strict=True):
        statistic = a.path.endswith(("moving_mean", "moving_variance"))
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-2 if statistic else 1e-3, rtol=1e-2 if statistic else 0,
                                   err_msg=a.path)


# The smallest Model.fit under the stock MultiWorkerMirroredStrategy: Keras 3.15 fails it
# (tensorflow/tensorflow#72388), which distribute._multi_worker_strategy works around. When a Keras upgrade fixes
# it, this strict xfail fails: then drop the workaround (the test above keeps the strategy covered).
MULTIWORKER_FIT = """
import numpy as np, tensorflow as tf, keras
strategy = tf.distribute.MultiWorkerMirroredStrategy()
with strategy.scope():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile("sgd", "mse", metrics=["mae"])
data = tf.data.Dataset.from_tensor_slices((np.ones((16, 4), "float32"), np.ones((16, 2), "float32"))).batch(8)
model.fit(data, epochs=1, verbose=0)
print("TRAINED")
"""


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="Keras 3.15's Model.fit does not run under the stock "
                   "MultiWorkerMirroredStrategy (tensorflow/tensorflow#72388); drop the workaround when it does.")
def test_keras_fit_runs_under_stock_multiworker_on_localhost():
    results = _run_workers([sys.executable, "-c", MULTIWORKER_FIT], timeout=240)
    assert [rc for rc, _ in results] == [0, 0], results[0][1][-3000:]
    assert all("TRAINED" in out for _, out in results)


@pytest.mark.slow
def test_a_few_steps_under_the_torch_backend(tmp_path):
    pytest.importorskip("torch")
    result = _train(*QUICK, "--epochs=2", f"--model_dir={tmp_path}", "--strategy=default",
                    env=_env(KERAS_BACKEND="torch"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert os.path.exists(tmp_path / "model.keras")
    refused = _train(*QUICK, f"--model_dir={tmp_path / 'x'}", "--strategy=mirrored", env=_env(KERAS_BACKEND="torch"))
    assert refused.returncode != 0 and "needs the TensorFlow backend" in refused.stderr


QUICK_CONFIG = dict(dataset="digits", model="EfficientNetV2B0", blocks=TINY.replace(",", ", "), train_examples=192,
                    eval_examples=96, batch_size=32, epochs=4, num_stages=2, image_size_min=32, image_size_max=40,
                    optimizer="adamw", verbose=0, augment="none")


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"dataset": "no_such_dataset_xyz"}, "Unknown dataset 'no_such_dataset_xyz'"),
        ({"model": "EfficientNetB9"}, "Unknown EfficientNet variant 'EfficientNetB9'"),
        ({"data_dir": "/nonexistent/tfds"}, "data_dir '/nonexistent/tfds' does not exist"),
        ({"image_size_min": 16}, "image_size_min=16 is smaller than the network allows"),
        ({"image_size_min": 64, "image_size_max": 48}, "image_size_min=64 is larger than image_size_max=48"),
        ({"epochs": 3, "num_stages": 4}, "needs epochs >= 4"),
        ({"optimizer": "sgd"}, "optimizer must be one of rmsprop, adamw; got 'sgd'"),
        ({"max_batch_scale": 0.5}, "max_batch_scale must be >= 1"),
        ({"max_batch_scale": 8.0, "image_size_max": 96, "progression": "paper"},
         "Stage 1's batch of 256 (max_batch_scale=8) is larger than"),
        ({"recipe": "imagenet2"}, "Unknown recipe 'imagenet2'; choose one of imagenet, finetune, imagenet21k, coatnet"),
        ({"recipe": "coatnet"}, "--recipe=coatnet is the CoAtNet paper's training (AdamW, mixup 0.8, 300 epochs); "
                                "EfficientNetV2B0 is an EfficientNet"),
        ({"recipe": "imagenet21k"}, "--loss=multilabel_softmax (the imagenet21k recipe's) normalizes multi-hot labels, "
                                    "but 'digits' has one label per image"),
        ({"loss": "sigmoid"}, "--loss=sigmoid trains multi-hot labels, but 'digits' has one label per image"),
        ({"freeze": "block9"}, "freeze='block9' names no stage of EfficientNetV2B0-custom; it has backbone (all but "
                               "the classifier) or a stage: stem, block1, block2, block3, block4"),
        ({"dataset": "tfrecord:/nonexistent/imagenet"}, "tfrecord:/nonexistent/imagenet matches no files for split "
                                                        "'train' (looked for '/nonexistent/imagenet/train-*'"),
        ({"lr_min": 1.0}, "lr_min=1 is not below the peak learning rate"),
        ({"recipe": "finetune"}, "--recipe=finetune fine-tunes pretrained weights: pass --weights=imagenet"),
        ({"blocks": None, "model": "EfficientNetLite0", "weights": "advprop"},
         'EfficientNetLite0 has no weights="advprop"; its weight sets: imagenet.'),
        ({"blocks": None, "weights": "/nonexistent/w.weights.h5"}, "'/nonexistent/w.weights.h5' does not exist"),
        ({"augment": "autoaug"}, "augment must be one of randaugment, autoaugment, none; got 'autoaug'"),
        ({"randaug_max": 10, "augment": None}, "randaug_max=10 sets RandAugment's magnitude, but this run's augmentation is "
                              "'autoaugment' (EfficientNetV2B0 with the imagenet recipe"),
        ({"randaug_max": 35}, "RandAugment magnitude must be in [0, 30]"),
        ({"mixup_max": -0.2}, "mixup_max=-0.2 is out of range"),
        ({"cutmix_max": 20}, "cutmix_max=20 is out of range"),
        ({"blocks": "r1_k3_s1_e1_x16"}, "token 5 'x16'"),
        ({"strategy": "multiworker"}, "strategy='multiworker' needs TF_CONFIG"),
    ],
)
def test_bad_configuration_fails_before_training(tmp_path, monkeypatch, changes, message):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match=re.escape(message)):
        train(TrainConfig(**{**QUICK_CONFIG, "model_dir": str(tmp_path / "run"), **changes}))
    assert not os.path.exists(tmp_path / "run" / "model.keras")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--strategy=tpu"], "no TPU was found"),
        (["--strategy=mirrored", "--cpu_devices=3", "--batch_size=32"], "not divisible by the 3 replicas"),
    ],
)
def test_bad_command_line_fails_fast_with_a_message(tmp_path, args, message):
    """Through the CLI (these two configure devices, so they run in their own process): no traceback, no hang."""
    result = _train(*QUICK, f"--model_dir={tmp_path / 'run'}", *args, timeout=120)  # never hangs (TPU detection)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert not os.path.exists(tmp_path / "run" / "model.keras")


def test_model_dir_with_another_models_run_is_refused(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run_config.json").write_text(json.dumps({"model": "EfficientNetB3", "dataset": "digits"}))
    result = _train(*QUICK, f"--model_dir={run}")
    assert result.returncode != 0
    assert "holds a run of another configuration" in result.stderr and "EfficientNetB3" in result.stderr
    assert json.loads((run / "run_config.json").read_text())["model"] == "EfficientNetB3"  # untouched


def test_non_empty_foreign_model_dir_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = _train(*QUICK, f"--model_dir={tmp_path}")
    assert result.returncode != 0 and "is not empty and holds no run of ours" in result.stderr
    assert (tmp_path / "notes.txt").read_text() == "mine"


# ---------------------------------------------------------------------------------------------- real runs

TINY_CONFIG = dict(QUICK_CONFIG, epochs=2, num_stages=2, batch_size=16, train_examples=48, eval_examples=20)


@pytest.fixture
def float32_after():
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.slow
def test_tfds_imagenet2012_through_mock_data(tmp_path):
    """imagenet2012 as tfds serves it (1000 classes, encoded JPEGs of varied sizes), offline through tfds' mock."""
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=40):
        result = train(TrainConfig(**{**TINY_CONFIG, "dataset": "imagenet2012", "train_examples": None,
                                      "eval_examples": None, "model_dir": str(tmp_path / "run")}))
    assert result["model"].output_shape[-1] == 1000 and len(result["class_names"]) == 1000
    assert result["history"]["image_size"] == [36, 40] and np.isfinite(result["eval"]["loss"])  # official stages
    assert [r["skipped_train_images"] for r in _history(str(tmp_path / "run"))] == ["0.0", "0.0"]


@pytest.mark.slow
def test_image_folder_of_real_photos_with_a_corrupt_file(tmp_path, capsys):
    from PIL import Image

    for split, count in (("train", 8), ("val", 3)):
        for label, photo in enumerate(real_photos()[:2]):
            folder = tmp_path / "photos" / split / f"class{label}"
            folder.mkdir(parents=True)
            for i in range(count):
                image = Image.fromarray(photo).resize((150 + 37 * i, 100 + 23 * i))
                image.convert("L" if i % 3 == 2 else "RGB").save(folder / f"{i}.{'png' if i % 2 else 'jpg'}")
    (tmp_path / "photos" / "train" / "class0" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    # 20000x20000 pixels: refused from its header (the decode would take 1.2 GB), skipped as the broken file is
    (tmp_path / "photos" / "train" / "class1" / "huge.png").write_bytes(oversized_png())
    result = train(TrainConfig(**{**TINY_CONFIG, "dataset": str(tmp_path / "photos"), "train_examples": None,
                                  "eval_examples": None, "batch_size": 4, "model_dir": str(tmp_path / "run"),
                                  "verbose": 1}))
    rows = _history(str(tmp_path / "run"))
    assert sum(float(r["skipped_train_images"]) for r in rows) == 4  # the two files, once per epoch
    out = capsys.readouterr().out
    for name in ("class0/broken.jpg", "class1/huge.png"):
        assert out.count(f"Warning: skipped {tmp_path / 'photos' / 'train' / name}: it could not be decoded") == 1
    assert result["class_names"] == ["class0", "class1"] and np.isfinite(result["eval"]["loss"])


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_mixed_precision_with_randaugment_mixup_and_cutmix(tmp_path, precision, float32_after):
    result = train(TrainConfig(**{**TINY_CONFIG, "mixed_precision": precision, "augment": "randaugment", "randaug_max": 10.0,
                                  "mixup_max": 0.4, "cutmix_max": 1.0, "model_dir": str(tmp_path / "run")}))
    assert result["stages"][-1]["mixup_alpha"] == 0.4 and result["stages"][-1]["cutmix_alpha"] == 1.0
    assert result["dtype_policy"] == f"mixed_{precision}"
    assert np.isfinite(result["history"]["loss"]).all() and np.isfinite(result["eval"]["loss"])
    model = keras.saving.load_model(str(tmp_path / "run" / "model.keras"))
    assert model(np.zeros((1, 32, 32, 3), "float32")).dtype == "float32"  # logits stay float32
    if precision == "float16":  # Keras wraps the optimizer in loss scaling
        assert isinstance(result["model"].optimizer, keras.optimizers.LossScaleOptimizer)


REMOTE_RUN = """
import json, sys
import efficientnet_keras
import keras, numpy as np, tensorflow as tf
from efficientnet_keras import export
from efficientnet_keras.training import TrainConfig, evaluate, train

config = TrainConfig(**json.loads(sys.argv[1]))

class Die(keras.callbacks.Callback):  # the process "dies" after epoch 2's backup (ram:// lives in this process)
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt

try:
    train(config, callbacks=[Die()])
except KeyboardInterrupt:
    pass
assert not tf.io.gfile.exists(config.model_dir + "/model.keras")
config.resume = True
result = train(config)
rows = tf.io.gfile.GFile(config.model_dir + "/history.csv").read().splitlines()
print("EPOCHS", [r.split(",")[0] for r in rows[1:]])
print("EVAL", result["eval"]["accuracy"], evaluate(config.model_dir, batch_size=32)["accuracy"])
path = export.export_saved_model(export.load_servable(config.model_dir), "ram://exports/digits")
served = tf.saved_model.load(path).signatures["serving_default"](
    image_bytes=tf.constant([tf.io.encode_png(np.full((30, 20, 3), 200, np.uint8)).numpy()]))
print("SERVED", served["class_names"].shape, path, sorted(tf.io.gfile.listdir(config.model_dir)))
"""


@pytest.mark.slow
def test_remote_storage_train_interrupt_resume_eval_export(tmp_path):
    """TensorFlow's in-memory ram:// file system stands in for gs://: every file of the run goes through gfile."""
    work, temp = tmp_path / "cwd", tmp_path / "tmp"
    work.mkdir(), temp.mkdir()
    config = {**TINY_CONFIG, "epochs": 4, "model_dir": "ram://runs/digits"}
    result = subprocess.run([sys.executable, "-c", REMOTE_RUN, json.dumps(config)], cwd=work, capture_output=True,
                            text=True, timeout=600, env=_env(TMPDIR=str(temp), KERAS_HOME=str(tmp_path / "keras")))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "EPOCHS ['0', '1', '2', '3']" in result.stdout  # resumed at epoch 3, each epoch once
    accuracies = re.search(r"EVAL (\S+) (\S+)", result.stdout).groups()
    assert float(accuracies[0]) == pytest.approx(float(accuracies[1]))
    assert "SERVED (1, 5) ram://exports/digits/1" in result.stdout
    assert "'backup', 'history.csv', 'logs', 'model.keras', 'results.json', 'run_config.json'" in result.stdout
    assert list(work.iterdir()) == [] and list(temp.iterdir()) == []  # nothing on the local disk


LOAD_ANYWHERE = """
import sys
import efficientnet_keras
import keras, numpy as np
x = np.load(sys.argv[1])
for path in sys.argv[2:]:
    model = keras.models.load_model(path)
    np.save(path + "." + keras.backend.backend() + ".npy", keras.ops.convert_to_numpy(model(x, training=False)))
"""


@pytest.mark.slow
@pytest.mark.xdist_group("one_device_run")
def test_runs_of_each_optimizer_and_mirrored_export_and_load_anywhere(tmp_path, one_device_run, mirrored_run):
    from efficientnet_keras import export

    adamw = str(tmp_path / "adamw")
    train(TrainConfig(**{**QUICK_CONFIG, "epochs": 2, "model_dir": adamw}))  # AdamW; the other runs RMSProp
    runs = [one_device_run, mirrored_run, adamw]
    x = np.random.default_rng(0).uniform(0, 255, (2, 40, 40, 3)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    models = [os.path.join(run, "model.keras") for run in runs]
    # The mirrored run (synchronized BatchNorm) exports, in this process: the export CLI has its own test.
    path = export.export_saved_model(export.load_servable(mirrored_run), str(tmp_path / "export"))
    assert os.path.exists(os.path.join(path, "saved_model.pb"))
    backends = [b for b in ("torch", "jax") if _importable(b)]
    for backend in backends:  # a fresh process per backend
        loaded = subprocess.run([sys.executable, "-c", LOAD_ANYWHERE, str(tmp_path / "x.npy"), *models],
                                env=_env(KERAS_BACKEND=backend), capture_output=True, text=True, timeout=300)
        assert loaded.returncode == 0, loaded.stderr[-3000:]
    for path in models:
        expected = keras.saving.load_model(path)(x, training=False).numpy()
        for backend in backends:
            np.testing.assert_allclose(np.load(f"{path}.{backend}.npy"), expected, atol=2e-4, rtol=1e-4)
    # Without `import efficientnet_keras` Keras cannot know our layers, and its error names our package.
    bare = subprocess.run([sys.executable, "-c", f"import keras; keras.models.load_model({models[0]!r})"],
                          env=_env(), capture_output=True, text=True, timeout=300)
    assert bare.returncode != 0 and "efficientnet_keras>" in bare.stderr


def _importable(module):
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_resume_refuses_a_changed_setting_and_names_it(tmp_path):
    from efficientnet_keras.training.claim import prepare_model_dir

    base = TrainConfig(**{**QUICK_CONFIG, "model_dir": str(tmp_path / "run")})
    prepare_model_dir(base, 10)
    for field, value in (("learning_rate_per_256", 0.1), ("optimizer", "rmsprop"), ("weight_decay", 0.0),
                         ("ema_decay", 0.5), ("mixed_precision", "bfloat16")):
        changed = TrainConfig(**{**QUICK_CONFIG, "model_dir": str(tmp_path / "run"), "resume": True, field: value})
        with pytest.raises(ValueError, match=f"{field}: .* there vs {value!r} now"):
            prepare_model_dir(changed, 10)
    # Settings that leave the training's math alone may change on resume.
    prepare_model_dir(TrainConfig(**{**QUICK_CONFIG, "model_dir": str(tmp_path / "run"), "resume": True,
                                      "verbose": 2, "eval_every": 2, "strategy": "default"}), 10)


def test_unwritable_model_dir_is_refused_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ValueError, match="cannot be written"):
        train(TrainConfig(**{**QUICK_CONFIG, "model_dir": str(blocker / "run")}))


@pytest.mark.slow
def test_finetune_recipe_trains_its_minimum_number_of_examples(tmp_path):
    """main.py trains max(min_steps, epochs x steps) steps: the fine-tuning recipe's minimum raises the epochs."""
    pytest.importorskip("torch")  # Lite0's pretrained weights come as a PyTorch file
    run = str(tmp_path / "run")
    config = TrainConfig(dataset="digits", model="EfficientNetLite0", recipe="finetune", weights="imagenet",
                         model_dir=run, epochs=1, min_examples=100, train_examples=48, eval_examples=32,
                         batch_size=16, image_size_max=32, eval_size=32, verbose=0)
    train(config)
    assert len(_history(run)) == 3  # ceil(100 / 48)
    with open(os.path.join(run, "run_config.json")) as f:
        record = json.load(f)["config"]
    assert record["epochs"] == 3 and record["augment"] == "none" and record["ema_decay"] == 0.9996
    # preprocess_for_finetune evaluates as it trains: the whole image resized (bilinear), not the dataset's crop,
    # and what export and predict read back is that transform.
    with open(os.path.join(run, "results.json")) as f:
        results = json.load(f)
    crop_fraction, preprocessing = saved_eval_transform(results)
    assert crop_fraction is None and preprocessing.crop_fraction(32) is None and preprocessing.resize == "bilinear"
    train(TrainConfig(**{**config.__dict__, "resume": True}))  # the raised count is this run's, not a change


@pytest.mark.slow
def test_a_trained_model_keras_returns_probabilities_as_the_zoo_model_does(tmp_path):
    """keras.applications' convention: softmax unless asked. The trained model.keras and the zoo model of the same
    variant both return probabilities; evaluation still computes its loss on logits."""
    from efficientnet_keras import EfficientNetV2B0

    run = str(tmp_path / "run")
    result = train(TrainConfig(**{**TINY_CONFIG, "epochs": 1, "progressive": False, "image_size_max": 32},
                               model_dir=run))
    saved = keras.saving.load_model(os.path.join(run, "model.keras"))
    zoo = EfficientNetV2B0(weights=None, input_shape=(32, 32, 3), classes=10)
    x = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    for model in (saved, zoo):
        probabilities = model.predict(x, verbose=0)
        assert probabilities.min() >= 0 and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    with open(os.path.join(run, "results.json")) as f:
        assert json.load(f)["output"] == "probabilities (softmax of the classifier's logits)"
    again = evaluate(run)
    assert again["loss"] == pytest.approx(result["eval"]["loss"], rel=1e-4)
    assert again["accuracy"] == pytest.approx(result["eval"]["accuracy"])


@pytest.mark.slow
def test_the_training_log_has_a_header_stage_lines_metric_only_epoch_lines_and_a_summary(tmp_path, capsys):
    run = str(tmp_path / "run")
    train(TrainConfig(**{**TINY_CONFIG, "verbose": 2, "eval_examples": 20}, model_dir=run))
    out = capsys.readouterr().out
    assert out.index("Training EfficientNetV2B0 with custom blocks (weights: none, from scratch; recipe: imagenet) "
                     "on digits: 48 training images, 20 evaluation images, 10 classes.") == 0
    assert "  stage 1/2: epochs 1-1, 36 px" in out and "  stage 2/2: epochs 2-2, 40 px" in out
    assert f"Run folder: {run}" in out
    assert out.count("Progressive learning: stage ") == 2  # a line when each stage begins
    epoch_lines = [line for line in out.splitlines() if " - loss: " in line]
    assert len(epoch_lines) == 2 and not any("image_size" in line or "stage:" in line for line in epoch_lines)
    assert re.search(r"Final evaluation .* on 20 evaluation images of digits at 40 px: accuracy 0\.\d{4}, loss "
                     rf"\d+\.\d{{4}}\. Trained in \d+\.\d min; saved {re.escape(run)}/model\.keras\.", out)
    assert "image_size" in _history(run)[0]  # the CSV keeps every column
