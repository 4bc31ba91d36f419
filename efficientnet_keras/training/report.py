"""What a training run tells its reader: a header (model, data, stages, run folder), epoch lines with metrics
only, and a closing summary. Every setting still goes to the epoch logs (history.csv, TensorBoard)."""

from __future__ import annotations

import keras

from efficientnet_keras.training.progressive import stage_for_epoch

__all__ = ["SETTING_LOGS", "EpochProgbar", "header", "summary"]

# Epoch-log columns that record settings, not metrics: kept in history.csv and TensorBoard, left out of the
# printed epoch line.
SETTING_LOGS = ("stage", "image_size", "randaug_magnitude", "mixup_alpha", "cutmix_alpha", "dropout",
                "stochastic_depth", "batch_size", "skipped_train_images", "skipped_eval_images")


class EpochProgbar(keras.callbacks.ProgbarLogger):
    """Keras' progress bar and epoch line, without the setting columns."""

    def _update_progbar(self, batch, logs=None):
        super()._update_progbar(batch, _metrics_only(logs))

    def _finalize_progbar(self, logs):
        super()._finalize_progbar(_metrics_only(logs))


def _metrics_only(logs):
    return {k: v for k, v in (logs or {}).items() if k not in SETTING_LOGS}


def _augmentation(stage, augment: str) -> str:
    if augment == "randaugment":
        return f"RandAugment {stage.randaug_magnitude:g}" if stage.randaug_magnitude else "no RandAugment"
    return {"autoaugment": "AutoAugment v0", "none": "no augmentation"}[augment]


def _epochs_of_stage(c, plan, i: int) -> tuple[int, int]:
    """First and last epoch (1-based) of stage ``i``."""
    epochs = [e + 1 for e in range(c.epochs) if stage_for_epoch(e, c.epochs, len(plan.stages)) == i]
    return epochs[0], epochs[-1]


def header(c, info, plan, num_eval: int) -> str:
    """The lines printed before training: what is trained on what, the stages, where the run is written."""
    model = c.model + (" with custom blocks" if c.blocks else "")
    weights = c.weights or "none, from scratch"
    lines = [f"Training {model} (weights: {weights}; recipe: {c.recipe}) on {info.name}: "
             f"{plan.num_train:,} training images, {num_eval:,} evaluation images, {info.num_classes} classes"
             + (" (multi-label)" if info.multi_label else "") + "."]
    for i, stage in enumerate(plan.stages):
        first, last = _epochs_of_stage(c, plan, i)
        mixing = ", ".join(f"{name} {value:g}" for name, value in (("mixup", stage.mixup_alpha),
                                                                   ("CutMix", stage.cutmix_alpha)) if value)
        lines.append(f"  stage {i + 1}/{len(plan.stages)}: epochs {first}-{last}, {stage.image_size} px, "
                     f"{_augmentation(stage, c.augment)}" + (f", {mixing}" if mixing else "")
                     + f", dropout {stage.dropout:g}")
    frozen = f"; frozen: {c.freeze}" + (f" until epoch {c.unfreeze_after + 1}" if c.unfreeze_after else "")
    lines.append(f"Evaluation at {plan.eval_size} px after each of {c.epochs} epochs"
                 + (f" (every {c.eval_every})" if c.eval_every > 1 else "") + (frozen if c.freeze else "")
                 + f". Run folder: {c.model_dir}")
    return "\n".join(lines)


def summary(results: dict, info, num_eval: int, eval_size: int, seconds: float, model_path: str | None) -> str:
    """The closing lines: the final evaluation (which images), the time, what was written."""
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in results.items())
    saved = f"; saved {model_path}" if model_path else ""
    return (f"Final evaluation (averaged weights where EMA is on) on {num_eval:,} evaluation images of "
            f"{info.name} at {eval_size} px: {metrics}. Trained in {seconds / 60:.1f} min{saved}.")
