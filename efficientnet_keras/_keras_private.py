"""Every private Keras API this package relies on, in one place (Keras 3.15).

Each is used because Keras offers no public way to do the thing; tests/test_keras_private.py checks each one's
existence and meaning, so a Keras release that changes one fails there, by name, instead of somewhere deep.
"""

from __future__ import annotations

import keras

__all__ = ["backup_files", "BACKUP_SAVE_METHOD", "flatten_layers", "inbound_nodes", "producer", "ema_variables",
           "optimizer_trainable_variables", "source_inputs", "variable_index", "rmsprop_slots", "EMA_UPDATE_METHOD", "clear_initial_epoch"]

# The optimizer method that updates the EMA of the trainable weights after each step (Keras calls it when
# use_ema=True); our optimizers override it (training/optimizers.py) to run the official EMA of weights and
# BatchNorm statistics.
EMA_UPDATE_METHOD = "_update_model_variables_moving_average"


def flatten_layers(layer: keras.layers.Layer, include_self: bool = True):
    """Every layer nested in ``layer`` (depth first), sublayers of custom layers included."""
    return list(layer._flatten_layers(include_self=include_self))


def inbound_nodes(layer: keras.layers.Layer) -> list:
    """The Functional-graph nodes at which ``layer`` is called (one per call)."""
    return layer._inbound_nodes


def source_inputs(tensor) -> list:
    """The Input tensors a symbolic tensor derives from (keras.applications builds on ``input_tensor`` so)."""
    from keras.src.ops.operation_utils import get_source_inputs  # keras.src is only read when this is called

    return get_source_inputs(tensor)


def producer(tensor) -> keras.layers.Layer:
    """The layer (operation) whose output a symbolic Keras tensor is."""
    return tensor._keras_history.operation


def ema_variables(optimizer: keras.optimizers.Optimizer) -> list:
    """The optimizer's EMA copies of the trainable weights (``use_ema=True``), in the weights' order."""
    return optimizer._model_variables_moving_average


def optimizer_trainable_variables(optimizer: keras.optimizers.Optimizer) -> list:
    """The variables the optimizer was built for, in the order of its EMA copies."""
    return optimizer._trainable_variables


def variable_index(optimizer: keras.optimizers.Optimizer, variable) -> int:
    """The position of ``variable`` among the optimizer's trainable variables; ``variable`` may be the backend
    variable that ``update_step`` receives under tf.distribute."""
    return optimizer._get_variable_index(variable)


def rmsprop_slots(optimizer: keras.optimizers.RMSprop, variable) -> tuple:
    """RMSprop's (mean square, momentum or None) accumulators of ``variable``."""
    index = variable_index(optimizer, variable)
    momentum = optimizer._momentums[index] if optimizer.momentum > 0 else None
    return optimizer._velocities[index], momentum


def clear_initial_epoch(model: keras.Model) -> None:
    """Forget the start epoch that BackupAndRestore set on restore: Keras never clears it, so without this the next
    ``fit()`` of a run made of several would start at the restored epoch again."""
    model._initial_epoch = None


# BackupAndRestore's method that writes the backup at an epoch end; overridden by the trainer's backups (a
# non-chief worker's writes nothing; on ram:// the old files are removed first).
BACKUP_SAVE_METHOD = "_save_model"


def backup_files(callback: keras.callbacks.BackupAndRestore) -> tuple[str, str]:
    """The (weights, training metadata) files a BackupAndRestore writes."""
    return callback._weights_path, callback._training_metadata_path
