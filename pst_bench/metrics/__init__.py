"""Task metrics, computed by the package's own ``evaluate`` module (glue_metric/).

The module is loaded from this package's files by absolute path, so no Hub
access is ever needed (it works with HF_HUB_OFFLINE=1). evaluate copies the
script into its modules cache (HF_MODULES_CACHE) to import it; the package
folder itself may be read-only.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pst_bench.errors import ConfigError

__all__ = ["GLUE_METRIC_DIR", "compute_task_metrics", "load_task_metric"]

# Absolute, so that evaluate.load never mistakes it for a Hub module name.
GLUE_METRIC_DIR = Path(__file__).resolve().parent / "glue_metric"


def load_task_metric(task_cfg: Any):
    """The loaded ``evaluate`` module for a task (classification or regression)."""
    return _load_glue_metric(_config_name(task_cfg))


def compute_task_metrics(task_cfg: Any, predictions: Sequence, references: Sequence) -> dict[str, float]:
    """All of the task's metrics, plus ``"main"`` = the value of ``task_cfg.metric``."""
    metric = load_task_metric(task_cfg)
    extra = {} if task_cfg["is_regression"] else {"num_labels": int(task_cfg["num_labels"])}
    scores = metric.compute(predictions=list(predictions), references=list(references), **extra)
    main_name = task_cfg["metric"]
    if main_name not in scores:
        raise ConfigError(
            f"task.metric={main_name!r} is not computed for task {task_cfg['name']}; choose one of {sorted(scores)}."
        )
    return {**scores, "main": scores[main_name]}


def _config_name(task_cfg: Any) -> str:
    return "regression" if task_cfg["is_regression"] else "classification"


@functools.cache
def _load_glue_metric(config_name: str):
    # Imported here: evaluate pulls in datasets and friends (about a second),
    # which callers that never score anything should not pay for.
    import evaluate

    # keep_in_memory: no temporary Arrow files in the metrics cache folder.
    return evaluate.load(str(GLUE_METRIC_DIR), config_name, keep_in_memory=True)
