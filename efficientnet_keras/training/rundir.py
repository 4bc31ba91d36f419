"""A training run's folder on any storage (local, gs://, ram://): every read and write goes through tf.io.gfile.

Layout: ``run_config.json`` (the whole TrainConfig), ``backup/`` (Keras BackupAndRestore), ``history.csv``,
``logs/`` (TensorBoard), ``model.keras`` (the trained model, EMA weights, no optimizer), ``results.json``.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from typing import Any, Iterable

import keras
import tensorflow as tf

from efficientnet_keras import _keras_private as private

__all__ = ["RunDir", "HistoryCSV", "Backup", "RUN_FILE", "FINAL_MODEL", "RESULTS_FILE"]

RUN_FILE = "run_config.json"
FINAL_MODEL = "model.keras"
RESULTS_FILE = "results.json"


class RunDir:
    """Paths and JSON files of one run folder."""

    def __init__(self, path: str):
        if not path:
            raise ValueError("model_dir is empty; name the run's folder (local path or gs://bucket/...).")
        self.path = path.rstrip("/") or "/"

    def join(self, *parts: str) -> str:
        return "/".join([self.path, *parts])

    def exists(self, name: str = "") -> bool:
        return tf.io.gfile.exists(self.join(name) if name else self.path)

    def read_json(self, name: str) -> dict:
        with tf.io.gfile.GFile(self.join(name)) as f:
            return json.load(f)

    def write_json(self, name: str, value: Any) -> None:
        write_text(self.join(name), json.dumps(value, indent=2))

    def is_empty(self) -> bool:
        return not self.exists() or not tf.io.gfile.listdir(self.path)

    def check_writable(self) -> None:
        """Create the folder and write and delete a probe file, so an unwritable model_dir fails before training."""
        probe = self.join(f".write-check-{uuid.uuid4().hex}")
        try:
            tf.io.gfile.makedirs(self.path)
            write_text(probe, "ok")
            tf.io.gfile.remove(probe)
        except (tf.errors.OpError, OSError) as e:
            message = getattr(e, "message", str(e))
            raise ValueError(f"model_dir {self.path!r} cannot be written ({message}); choose a folder you can write "
                             "(for gs://, check the bucket and its permissions).") from None

    def delete(self) -> None:
        if self.exists():
            tf.io.gfile.rmtree(self.path)


def write_text(path: str, text: str) -> None:
    """Write a whole file: to a temporary name, then renamed over the target, so a reader never sees half of it."""
    temporary = f"{path}.tmp-{uuid.uuid4().hex}"
    with tf.io.gfile.GFile(temporary, "w") as f:
        f.write(text)
    tf.io.gfile.rename(temporary, path, overwrite=True)


class HistoryCSV(keras.callbacks.Callback):
    """One row of logs per epoch in a CSV file, rewritten whole at each epoch end.

    Keras' CSVLogger appends through an open file handle, which fails on GFile (no ``closed``) and which object
    stores such as GCS cannot do; rewriting the small file works on any storage. A resumed run keeps the rows of
    the epochs before the one it starts at and replaces the others."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path
        self.rows: list[dict] = []

    def on_train_begin(self, logs=None):
        if not self.rows and tf.io.gfile.exists(self.path):
            with tf.io.gfile.GFile(self.path) as f:
                self.rows = list(csv.DictReader(f))

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": str(epoch), **{k: _format(v) for k, v in (logs or {}).items()}}
        self.rows = [r for r in self.rows if int(r["epoch"]) < epoch] + [row]
        write_text(self.path, _to_csv(self.rows))


def _format(value) -> str:
    try:
        return repr(float(value))
    except (TypeError, ValueError):
        return str(value)


def _to_csv(rows: Iterable[dict]) -> str:
    rows = list(rows)
    keys = ["epoch"] + sorted({k for r in rows for k in r} - {"epoch"})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=keys, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


class Backup(keras.callbacks.BackupAndRestore):
    """Keras' BackupAndRestore; on TensorFlow's ram:// file system it first removes the files it replaces, since
    ram:// appends on "w" where local disks and object stores (gs://) replace the whole file."""

    def _save_model(self):
        if self.backup_dir.startswith("ram://"):
            for path in private.backup_files(self):
                if tf.io.gfile.exists(path):
                    tf.io.gfile.remove(path)
        super()._save_model()
