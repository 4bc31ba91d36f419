"""``python -m efficientnet_keras.train``: the training command line (``efficientnet_keras.training.cli``).

Also re-exports the Python API, ``from efficientnet_keras.train import TrainConfig, train, evaluate``.
"""

from efficientnet_keras.training.cli import run
from efficientnet_keras.training.optimizers import AdamWEMA, RMSpropEMA, WarmupExponentialDecay
from efficientnet_keras.training.trainer import TrainConfig, evaluate, train

__all__ = ["TrainConfig", "train", "evaluate", "run", "WarmupExponentialDecay", "RMSpropEMA", "AdamWEMA"]

if __name__ == "__main__":
    run()
