"""The run folder on any storage: ram:// (TensorFlow's in-memory file system) stands in for gs://."""

import csv
import io

import keras
import numpy as np
import tensorflow as tf

from efficientnet_keras.training.rundir import HistoryCSV, RunDir


def test_json_and_writability_through_gfile():
    run = RunDir("ram://rundir-test/run/")
    assert run.join("a.json") == "ram://rundir-test/run/a.json" and run.is_empty()
    run.check_writable()
    run.write_json("a.json", {"x": 1})
    assert run.read_json("a.json") == {"x": 1} and tf.io.gfile.listdir(run.path) == ["a.json"]
    run.delete()
    assert not run.exists()


def test_history_csv_on_remote_storage_keeps_earlier_epochs_on_resume():
    path = "ram://rundir-test/history.csv"
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    data = (np.ones((4, 2)), np.ones((4, 1)))
    model.fit(*data, epochs=3, verbose=0, callbacks=[HistoryCSV(path)])
    model.fit(*data, initial_epoch=1, epochs=2, verbose=0, callbacks=[HistoryCSV(path)])  # a resume at epoch 1
    rows = list(csv.DictReader(io.StringIO(tf.io.gfile.GFile(path).read())))
    assert [r["epoch"] for r in rows] == ["0", "1"] and all(float(r["loss"]) >= 0 for r in rows)
