"""Experiment tracking through accelerate's trackers (TensorBoard by default, offline, no account).

``train.log_with`` names one tracker or several (``tensorboard``, ``wandb``, ``mlflow``, ``aim``,
``trackio``, ``comet_ml``, ..., whatever accelerate knows) or ``none``. Event files go to
``<paths.log_dir>/<run id>/``; the run's resolved config is logged as hyperparameters. What is logged
and when is the loop's business (``pst_bench.run.loop``); this module only opens, writes and closes.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from ..errors import ConfigError

OFF = ("none", "null", "")


def tracker_names(log_with) -> list[str]:
    """``train.log_with`` as a list of tracker names ([] = off); a string may list several, comma-separated."""
    if log_with is None:
        return []
    names = [str(name).strip() for name in (log_with.split(",") if isinstance(log_with, str) else log_with)]
    names = [name for name in names if name.lower() not in OFF]
    known = _known_trackers()
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ConfigError(f"train.log_with={log_with!r}: unknown tracker {unknown}; accelerate knows {sorted(known)}")
    return names


def _known_trackers() -> set[str]:
    from accelerate.utils import LoggerType

    return {member.value for member in LoggerType} - {"all"}


def flat_hparams(cfg) -> dict:
    """The resolved config as {dotted.key: scalar} (lists and None as text), what every tracker accepts."""
    flat = {}

    def walk(prefix: str, node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(f"{prefix}.{key}" if prefix else str(key), value)
        elif isinstance(node, (bool, int, float, str)):
            flat[prefix] = node
        else:
            flat[prefix] = str(node)

    walk("", OmegaConf.to_container(cfg, resolve=True, enum_to_str=True) if OmegaConf.is_config(cfg) else cfg)
    return flat


def tracking_dir(cfg) -> Path:
    return Path(cfg.paths.get("log_dir") or "logs")


class RunTracker:
    """The trackers of one run (a no-op when ``train.log_with`` is off)."""

    def __init__(self, accelerator, cfg, rid: str):
        self.accelerator = accelerator
        self.enabled = bool(tracker_names(cfg.train.get("log_with")))
        if self.enabled:
            accelerator.init_trackers(project_name=rid, config=flat_hparams(cfg))

    def log(self, values: dict, step: int) -> None:
        if self.enabled:
            self.accelerator.log(values, step=int(step))

    def close(self) -> None:
        # each tracker's finish(), not accelerator.end_training(): that also destroys the process group,
        # which a multi-process run still needs (its ranks meet again before the record is written)
        if self.enabled:
            for tracker in self.accelerator.trackers:
                tracker.finish()
