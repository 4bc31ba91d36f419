"""Training: the EfficientNetV2 recipe with progressive learning on Model.fit.

Modules: ``data`` (tf.data input pipelines), ``augment`` (RandAugment, Mixup, CutMix per stage), ``progressive``
(stages and the callback), ``distribute`` (strategies, precision, XLA), ``optimizers`` (schedule, EMA
optimizers), ``rundir`` (the run folder on any storage), ``config`` (``TrainConfig`` and its checks), ``trainer``
(``train``), ``evaluation`` (``evaluate``), ``cli`` (the command line). The models never import this package.
"""

from efficientnet_keras.training.trainer import TrainConfig, evaluate, inference_model, train

__all__ = ["TrainConfig", "train", "evaluate", "inference_model"]
