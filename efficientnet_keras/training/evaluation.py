"""Evaluation of a finished run: its saved model on its dataset's evaluation split, with the transform it
was trained for."""

from __future__ import annotations

import contextlib
import warnings

import keras

from efficientnet_keras.training import data as data_lib
from efficientnet_keras.training import sources
from efficientnet_keras.training.losses import make_loss, make_metrics
from efficientnet_keras.training.rundir import FINAL_MODEL, RESULTS_FILE, RUN_FILE, RunDir
from efficientnet_keras.transforms import saved_eval_transform

__all__ = ["evaluate", "end_of_data_is_expected", "logits"]


@contextlib.contextmanager
def end_of_data_is_expected():
    """Keras 3.15 warns "Your input ran out of data" whenever a dataset of unknown length ends, which is how every
    evaluation of files ends (their length is unknown: a corrupt image may be skipped)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Your input ran out of data", category=UserWarning)
        yield


def evaluate(model_dir: str, dataset: str | None = None, data_dir: str | None = None, batch_size: int | None = None,
             eval_size: int | None = None, eval_split: str | None = None) -> dict[str, float]:
    """Evaluate a finished run's saved model on its dataset's evaluation split (central crop); ``batch_size``
    (images per evaluation step) defaults to 64."""
    run = RunDir(model_dir)
    if not run.exists(FINAL_MODEL):
        raise ValueError(f"No trained model at {run.join(FINAL_MODEL)}; train first (python -m "
                         "efficientnet_keras.train).")
    config = run.read_json(RUN_FILE)
    config = config.get("config", config)
    results = run.read_json(RESULTS_FILE)
    loss = make_loss(config.get("loss") or "softmax", config.get("label_smoothing", 0.0))
    _, split, info = sources.load_source(dataset or config["dataset"], data_dir or config.get("data_dir"),
                                          config.get("train_split", "train"), eval_split or config.get("eval_split"))
    split = sources.limit(split, None if dataset else config.get("eval_examples"))
    model = keras.saving.load_model(run.join(FINAL_MODEL))
    logits(model)  # the loss takes logits; model.keras returns probabilities
    model.compile(loss=loss, metrics=make_metrics(config.get("loss") or "softmax"))
    crop_fraction, preprocessing = saved_eval_transform(results)
    ds = data_lib.make_eval_dataset(split, info, eval_size or results["eval_size"], batch_size or 64,
                                    crop_fraction=crop_fraction, preprocessing=preprocessing)
    with end_of_data_is_expected():
        return model.evaluate(ds, return_dict=True, verbose=0)


def logits(model: keras.Model) -> None:
    """Make a saved model's classifier return logits again, for the loss (models saved by earlier versions
    return logits already)."""
    classifier = model.get_layer("predictions")
    if getattr(classifier.activation, "__name__", "linear") != "linear":
        classifier.activation = keras.activations.linear
