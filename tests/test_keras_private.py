"""Each private Keras API in efficientnet_keras/_keras_private.py still exists and still means what we use it for.

A Keras release that renames or changes one fails here, by name."""

import os

import keras
import numpy as np
import pytest

from efficientnet_keras import _keras_private as private


def _model():
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(3, name="hidden")(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, name="out")(hidden))


def test_graph_introspection():
    model = _model()
    names = [layer.name for layer in private.flatten_layers(model, include_self=False)]
    assert names[-2:] == ["hidden", "out"] and model not in private.flatten_layers(model, include_self=False)
    assert model in private.flatten_layers(model)
    assert len(private.inbound_nodes(model.get_layer("hidden"))) == 1
    assert private.producer(model.outputs[0]) is model.get_layer("out")
    derived = keras.layers.Dense(2)(keras.layers.Dense(3)(model.inputs[0]))
    assert private.source_inputs(derived) == [model.inputs[0]]


def test_optimizer_ema_and_rmsprop_slots():
    model = _model()
    optimizer = keras.optimizers.RMSprop(0.1, momentum=0.9, use_ema=True, ema_momentum=0.5)
    model.compile(optimizer, "mse")
    model.fit(np.ones((4, 4)), np.ones((4, 2)), epochs=1, verbose=0)
    averages = private.ema_variables(optimizer)
    assert [a.shape for a in averages] == [v.shape for v in model.trainable_variables]
    assert [v.path for v in private.optimizer_trainable_variables(optimizer)] == [
        v.path for v in model.trainable_variables]
    assert hasattr(optimizer, private.EMA_UPDATE_METHOD)
    assert private.variable_index(optimizer, model.trainable_variables[1]) == 1
    velocity, momentum = private.rmsprop_slots(optimizer, model.trainable_variables[0])
    assert velocity.shape == momentum.shape == model.trainable_variables[0].shape
    assert float(np.abs(velocity.numpy()).sum()) > 0  # the mean square was updated by the step


def test_clear_initial_epoch_restarts_from_the_requested_epoch(tmp_path):
    model = _model()
    model.compile("sgd", "mse")
    data = (np.ones((4, 4)), np.ones((4, 2)))
    backup = keras.callbacks.BackupAndRestore(str(tmp_path), delete_checkpoint=False)
    assert hasattr(backup, private.BACKUP_SAVE_METHOD)
    model.fit(*data, epochs=2, verbose=0, callbacks=[backup])
    assert all(os.path.exists(path) for path in private.backup_files(backup))
    epochs = []
    record = keras.callbacks.LambdaCallback(on_epoch_begin=lambda e, logs: epochs.append(e))
    model.fit(*data, epochs=3, verbose=0, callbacks=[keras.callbacks.BackupAndRestore(str(tmp_path)), record])
    assert epochs == [2] and model._initial_epoch == 2  # BackupAndRestore set it, and Keras keeps it
    private.clear_initial_epoch(model)
    epochs.clear()
    model.fit(*data, initial_epoch=0, epochs=1, verbose=0, callbacks=[record])
    assert epochs == [0]
