"""The run record (``run_config.json``): the chief worker claims ``model_dir`` for one run and refuses to mix runs
(a setting that changes the training math, another run, a foreign folder)."""

from __future__ import annotations

import dataclasses
from typing import Any

from efficientnet_keras.training import distribute
from efficientnet_keras.training.config import TrainConfig
from efficientnet_keras.training.rundir import RUN_FILE, RunDir

__all__ = ["run_record", "changed_fields", "prepare_model_dir", "claim_model_dir"]


def run_record(c: TrainConfig, num_classes: int) -> dict[str, Any]:
    return {"config": dataclasses.asdict(c), "num_classes": num_classes}


def changed_fields(previous: dict, current: dict) -> dict[str, tuple]:
    """Fields that change the training math and differ between two run records. Records of older versions (a
    flat dict of some fields) compare on the fields they have."""
    old = previous.get("config", previous)
    new = {**current["config"], "num_classes": current["num_classes"]}
    if "config" in previous:
        old = {**old, "num_classes": previous.get("num_classes")}
    resumable = {f.name for f in dataclasses.fields(TrainConfig) if f.metadata["resumable"]}
    return {k: (old[k], v) for k, v in new.items() if k in old and k not in resumable and old[k] != v}


def prepare_model_dir(c: TrainConfig, num_classes: int) -> None:
    """Write the run record; refuse to mix runs (a changed setting, another run, a foreign folder)."""
    run = RunDir(c.model_dir)
    record = run_record(c, num_classes)
    if run.exists(RUN_FILE):
        if c.overwrite:
            run.delete()
        else:
            changed = changed_fields(run.read_json(RUN_FILE), record)
            if changed:
                raise ValueError(
                    f"model_dir {c.model_dir!r} holds a run of another configuration: "
                    + ", ".join(f"{k}: {old!r} there vs {new!r} now" for k, (old, new) in changed.items())
                    + ". These change the training, so the run cannot continue with them. Use the run's settings, "
                    "another --model_dir, or --overwrite to delete it."
                )
            if not c.resume:
                raise ValueError(
                    f"model_dir {c.model_dir!r} already holds this run. Pass --resume to continue it (or to re-run "
                    "its final evaluation), or --overwrite to start over; nothing was changed."
                )
    elif not run.is_empty() and not c.overwrite:
        raise ValueError(f"model_dir {c.model_dir!r} is not empty and holds no run of ours; choose another folder.")
    run.check_writable()
    run.write_json(RUN_FILE, record)


def claim_model_dir(c: TrainConfig, strategy, num_classes: int) -> bool:
    """The chief prepares model_dir (all workers share it); the others wait and stop if it refused. Returns
    whether this process is the chief (the one that writes)."""
    chief = distribute.is_chief(strategy)
    refused = None
    if chief:
        try:
            prepare_model_dir(c, num_classes)
        except ValueError as e:
            refused = e
    if not distribute.all_workers_ok(strategy, refused is None):
        raise refused or ValueError(f"The chief worker refused model_dir {c.model_dir!r}; its output says why.")
    return chief
