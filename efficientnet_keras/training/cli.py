"""The training command line: one flag per TrainConfig field (type from its hint, help from its metadata).

    python -m efficientnet_keras.train                                   # embedded digits, V2-B0, progressive
    python -m efficientnet_keras.train --model=EfficientNetV2S --dataset=imagenet2012 \
        --data_dir=gs://bucket/tfds --batch_size=4096 --epochs=350 --strategy=tpu --model_dir=gs://bucket/run1
    python -m efficientnet_keras.train --mode=eval --model_dir=runs/digits
"""

from __future__ import annotations

import dataclasses
import sys
import typing

from efficientnet_keras.training.trainer import TrainConfig, evaluate, train

__all__ = ["define_flags", "main", "run"]


def _base_type(hint) -> type:
    """``int | None`` -> int; ``bool`` -> bool."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def define_flags() -> None:
    """The flags, listed by --help (absl lists the flags of the program being run, sys.argv[0])."""
    from absl import flags

    main = {"module_name": sys.argv[0]}
    flags.DEFINE_enum("mode", "train", ["train", "eval"], "Train, or evaluate a finished run in --model_dir.", **main)
    hints = typing.get_type_hints(TrainConfig)
    for field in dataclasses.fields(TrainConfig):
        kind, default = _base_type(hints[field.name]), field.default
        help_ = field.metadata["help"]
        if field.metadata.get("choices"):
            flags.DEFINE_enum(field.name, default, list(field.metadata["choices"]), help_, **main)
        elif kind is bool:
            flags.DEFINE_boolean(field.name, default, help_, **main)
        elif kind is int:
            flags.DEFINE_integer(field.name, default, help_, **main)
        elif kind is float:
            flags.DEFINE_float(field.name, default, help_, **main)
        else:
            flags.DEFINE_string(field.name, default, help_, **main)


def main(argv) -> None:
    from absl import app, flags, logging

    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    values = flags.FLAGS.flag_values_dict()
    logging.set_verbosity(logging.WARNING)  # quiet: no absl INFO lines (tfds' "Load dataset info ...")
    try:
        if values["mode"] == "eval":
            results = evaluate(values["model_dir"], data_dir=values["data_dir"], batch_size=values["batch_size"],
                               eval_size=values["eval_size"], eval_split=values["eval_split"])
        else:
            summary = train(TrainConfig(**{f.name: values[f.name] for f in dataclasses.fields(TrainConfig)}))
            results = summary["eval"]
            if summary["model_path"]:
                print(f"Saved {summary['model_path']}")
    except ValueError as e:  # configuration and data errors: one clear line, no traceback
        raise SystemExit(f"error: {e}") from None
    print("Evaluation: " + ", ".join(f"{k} {v:.4f}" for k, v in results.items()))


def run() -> None:
    from efficientnet_keras._cli import run_app

    define_flags()
    run_app(main, "efficientnet_keras.train", __doc__)
