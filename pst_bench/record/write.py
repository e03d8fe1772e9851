"""What a finished run writes: ``build_record`` (the JSON record, written atomically by the run), with the
library versions and the git state of the code that made it."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from omegaconf import OmegaConf

from ..checkout import has_uncommitted_changes, head_commit
from ..methods import find_method
from .format import FINISHED, SCHEMA_VERSION

_VERSIONED = (
    "torch",
    "transformers",
    "datasets",
    "accelerate",
    "evaluate",
    "hydra-core",
    "omegaconf",
    "scikit-learn",
    "scipy",
    "numpy",
    "pst-bench",
)


def library_versions() -> dict:
    versions = {"python": platform.python_version()}
    for dist in _VERSIONED:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return versions


def git_state() -> dict:
    """Commit of the checkout pst-bench runs from (the current folder, else the package's)."""
    for where in (Path.cwd(), Path(__file__).resolve().parent):
        try:
            return {"commit": head_commit(where), "dirty": has_uncommitted_changes(where)}
        except (OSError, subprocess.SubprocessError):
            continue
    # no checkout: a copy of one whose files `python -m pst_bench.install.device verify` matched to this commit
    if os.environ.get("PST_GIT_COMMIT"):
        return {"commit": os.environ["PST_GIT_COMMIT"], "dirty": False}
    return {"commit": None, "dirty": None}


def _epoch_summary(entry: dict | None, main_split: str) -> dict | None:
    if entry is None:
        return None
    return {"epoch": entry["epoch"], "main": entry["eval"][main_split]["main"], "eval": entry["eval"]}


def build_record(
    cfg,
    *,
    rid: str,
    metric: str,
    history: list[dict],
    final: dict,
    best: dict | None,
    steps: dict,
    train_examples: int,
    eval_examples: dict,
    params: dict,
    sparsity_achieved: dict,
    wall_time_s: float,
    device: str,
    num_processes: int,
    checkpoint_dir: str,
    extra: dict | None = None,
    diagnostics: list | None = None,
) -> dict:
    """The record of a finished run (schema ``SCHEMA_VERSION``), before exports are added.

    ``final`` and ``best`` are entries of ``history`` (``best``: the best epoch in the
    final window, or None); ``extra`` holds what the task runner adds (NLG: ``generation``);
    ``diagnostics`` the loop's averaged mask and score measurements ({step, mean}, every N steps).
    """
    main_split = str(cfg.task.main_split)
    method = find_method(str(cfg.method.kind))
    control = method.sparsity_control if method is not None else "schedule"
    return {
        "schema": SCHEMA_VERSION,
        "status": FINISHED,
        "run_id": rid,
        "task": cfg.task.name,
        "model": cfg.model.name,
        "method": cfg.method.name,
        "method_kind": cfg.method.kind,
        "paper_label": cfg.method.get("paper_label"),
        "sparsity": float(cfg.method.sparsity),
        "seed": int(cfg.train.seed),
        "metric": metric,
        "main_split": main_split,
        "final": _epoch_summary(final, main_split),
        "best_in_final_window": _epoch_summary(best, main_split),
        "epochs": history,
        "diagnostics": diagnostics or [],
        "steps": steps,
        "train_examples": train_examples,
        "eval_examples": eval_examples,
        "params": params,
        "sparsity_achieved": sparsity_achieved,
        # a penalty sets the sparsity (soft movement pruning): the achieved one decides the run's cell
        **({"sparsity_control": control} if control != "schedule" else {}),
        "wall_time_s": round(wall_time_s, 2),
        "device": device,
        "num_processes": num_processes,
        "versions": library_versions(),
        "git": git_state(),
        "config": OmegaConf.to_container(cfg, resolve=True, enum_to_str=True),
        **(extra or {}),
        "checkpoint_dir": checkpoint_dir,
        "export_dir": None,
        "export_compressed": None,
    }


def read_record(path: Path) -> dict | None:
    """The raw JSON of a record file, or None when it is missing or unreadable (resume checks)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
