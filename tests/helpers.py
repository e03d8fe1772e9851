"""Helpers shared by the tests: the real data's folder, Hydra compose, runs in process and through the
console script, synthetic data, tiny-run overrides, fake records.

Imported as ``from helpers import ...`` (pytest puts tests/ on sys.path); fixtures live in conftest.py.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The real data next to the checkout (../shared/data: GLUE under glue/, E2E/WebNLG/DART under nlg/), or
#: $PST_SHARED_DATA. Tests reach it through conftest's ``shared_data`` fixture or the ``needs_shared`` mark.
SHARED_DATA = Path(os.environ.get("PST_SHARED_DATA") or ROOT.parent / "shared" / "data")
#: The installed console script, next to this interpreter.
SCRIPT = shutil.which("pst-bench") or str(Path(sys.executable).with_name("pst-bench"))


def shared_data_missing(part: str = "glue") -> str | None:
    """Why a test of the real data ``part`` (glue, nlg) cannot run here, or None when it can."""
    if (SHARED_DATA / part).is_dir():
        return None
    return f"real data not found at {SHARED_DATA / part} (set PST_SHARED_DATA to the shared data folder)"


def needs_shared(part: str = "glue"):
    """A mark that skips a test when the shared real data ``part`` is not here."""
    import pytest

    reason = shared_data_missing(part)
    return pytest.mark.skipif(reason is not None, reason=reason or "")


def run(cfg) -> dict:
    """One run of the benchmark in this process (what `pst-bench` runs for a composed config)."""
    from pst_bench.run.experiment import run_experiment

    return run_experiment(cfg)


def run_cli(*args, cwd=None, env_extra=None, timeout=300) -> subprocess.CompletedProcess:
    """The installed `pst-bench` script with ``args`` in a subprocess, offline, without PST_DATA_DIR."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", **(env_extra or {})}
    env.pop("PST_DATA_DIR", None)
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)


def compose_cfg(overrides=(), tmp_path: Path | None = None):
    """The config `pst-bench <overrides>` would run, with outputs redirected to tmp_path."""
    from hydra import compose, initialize_config_module

    extra = []
    if tmp_path is not None:
        extra = [
            f"paths.results_dir={tmp_path}/results/runs",
            f"paths.checkpoint_dir={tmp_path}/checkpoints",
            f"paths.export_dir={tmp_path}/exports",
            f"paths.log_dir={tmp_path}/logs",
            "train.progress_bar=false",
        ]
    with initialize_config_module(config_module="pst_bench.conf", version_base="1.3"):
        return compose(config_name="config", overrides=[*overrides, *extra])


def expand_sweep(sweep: str) -> list[list[str]]:
    """The job override lists Hydra's basic sweeper makes of `-m sweep=<sweep>` (composed once per session)."""
    return [list(job) for job in _expanded(sweep)]


@functools.cache
def _expanded(sweep: str) -> tuple[tuple[str, ...], ...]:
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="pst_bench.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"sweep={sweep}"], return_hydra_config=True)
    return tuple(tuple(job) for job in expand_params(cfg.hydra.sweeper.params))


def expand_params(params) -> list[list[str]]:
    """The jobs of one grid ({key: "a,b"}), as Hydra's basic sweeper makes them."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    overrides = OverridesParser.create().parse_overrides([f"{key}={value}" for key, value in params.items()])
    return BasicSweeper.split_arguments(overrides, None)[0]


def taking_turns(jobs: list[list[str]]) -> list[list[str]]:
    """The jobs of a grid, each kept only where it brings a value of some axis no earlier kept job had: every
    value of every axis is in one of them, at a fraction of the product (the quick test of a grid; the whole
    product runs under the ``slow`` mark)."""
    seen: set[str] = set()
    kept = []
    for job in jobs:
        if not seen.issuperset(job):
            kept.append(job)
            seen.update(job)
    return kept


def write_synthetic_sst2(folder: Path, n_train: int = 96, n_dev: int = 32) -> Path:
    """A learnable SST-2-layout task: positive words → 1, negative words → 0."""
    import random

    rng = random.Random(0)
    positive = ["good", "great", "wonderful", "fine", "lovely", "superb"]
    negative = ["bad", "awful", "terrible", "poor", "dull", "boring"]
    task_dir = folder / "SST-2"
    task_dir.mkdir(parents=True, exist_ok=True)
    for name, count in (("train.tsv", n_train), ("dev.tsv", n_dev)):
        lines = ["sentence\tlabel"]
        for i in range(count):
            label = i % 2
            words = rng.sample(positive if label else negative, 3) + rng.sample(["the", "a", "movie", "plot"], 2)
            rng.shuffle(words)
            lines.append(f"{' '.join(words)}\t{label}")
        (task_dir / name).write_text("\n".join(lines) + "\n")
    return folder


def tiny_run_overrides(data_dir: Path, method: str = "pst", *extra: str) -> list[str]:
    return [
        f"method={method}",
        "model=tiny-bert",
        "task=sst2",
        f"data.dir={data_dir}",
        "train.epochs=2",
        "train.batch_size=16",
        "train.lr=1e-3",
        "method.sparsity=0.5" if method != "finetune" else "method.sparsity=0.0",
        *extra,
    ]


@functools.lru_cache(maxsize=512)
def _composed(overrides: tuple[str, ...]):
    """compose_cfg, once per override list: fake records of one setting differ only in their values
    (build_record reads the config and never changes it).

    A ``train.seed=<n>`` override is set on a copy of the config composed without it (an int field that
    nothing reads while composing): the same config, and Hydra composes each setting once, not once per seed.
    """
    seeds = [o for o in overrides if o.startswith("train.seed=")]
    if not seeds:
        return compose_cfg(list(overrides))
    cfg = copy.deepcopy(_composed(tuple(o for o in overrides if o not in seeds)))
    cfg.train.seed = int(seeds[-1].split("=", 1)[1])
    return cfg


def fake_record(
    overrides=(),
    *,
    dev: float,
    final: float | None = None,
    params: dict | None = None,
    extra: dict | None = None,
    predictions: dict | None | str = "varied",
    dirty: bool = False,
) -> dict:
    """A results record built by the real builder (pst_bench.record.build_record) without training.

    The config is what `pst-bench <overrides>` composes; two epochs are recorded: epoch 2 (the best
    in the final window) with main dev value `dev`, epoch 3 (the final one) with `final` (default
    `dev`). GLUE records carry the task's metric, NLG records the dev loss; `extra` is what a task
    runner adds (NLG: {"generation": ...}); `predictions` the dev prediction summary a GLUE run stores
    (``class_counts`` and ``regression_spread`` build one; "varied", the default, is one of a run that
    predicts both classes, or spread-out values; None leaves it out, as in records made before it existed).
    ``git`` is pinned (a fixed commit, ``dirty``), not read from this checkout, so that what a report makes
    of a fake record never depends on whether the working tree has uncommitted changes.
    """
    from pst_bench.record import build_record, run_id
    from pst_bench.tasks import runner_class, task_kind

    cfg = _composed(tuple(overrides))
    split = str(cfg.task.main_split)
    if predictions == "varied":
        glue = runner_class(task_kind(cfg.task)).architecture == "sequence_classification"
        regression = glue and bool(cfg.task.is_regression)
        predictions = (regression_spread(1.0) if regression else class_counts(5, 5)) if glue else None
    metric = "loss" if runner_class(task_kind(cfg.task)).architecture == "causal_lm" else str(cfg.task.metric)

    def epoch(number: int, value: float) -> dict:
        return {
            "epoch": number,
            "step": 10 * number,
            "sparsity_target": float(cfg.method.sparsity),
            "train_loss": 0.5,
            "lr": 0.0,
            "eval": {split: {metric: value, "main": value, **({"predictions": predictions} if predictions else {})}},
            "in_final_window": number >= 2,
        }

    best, last = epoch(2, dev), epoch(3, dev if final is None else final)
    with _pinned_provenance():
        record = build_record(
            cfg,
            rid=run_id(cfg),
            metric=metric,
            history=[best, last],
            final=last,
            best=best,
            steps={"total": 30, "per_epoch": 10, "ramp_end": 20},
            train_examples=100,
            eval_examples={split: 10},
            params=params or {},
            sparsity_achieved={"overall": float(cfg.method.sparsity), "per_matrix": {}},
            wall_time_s=1.0,
            device="cpu",
            num_processes=1,
            checkpoint_dir="checkpoints",
            extra=extra,
        )
    record["git"] = {"commit": "0" * 40, "dirty": dirty}
    return record


@functools.cache
def _library_versions() -> dict:
    from pst_bench.record import write

    return write.library_versions()


@contextlib.contextmanager
def _pinned_provenance():
    """While fake_record builds: the library versions read once per session (each read parses every package's
    metadata), and no ``git`` subprocesses (fake_record pins ``git`` itself; two per record added seconds to
    a test of a few dozen records)."""
    from pst_bench.record import write

    versions = _library_versions()  # before the patch below
    saved = write.library_versions, write.git_state
    write.library_versions = lambda: dict(versions)
    write.git_state = lambda: {"commit": None, "dirty": None}
    try:
        yield
    finally:
        write.library_versions, write.git_state = saved


def class_counts(*counts: int) -> dict:
    """A classification run's dev prediction summary: how often each class was predicted."""
    return {"counts": {str(c): n for c, n in enumerate(counts) if n}, "majority_share": max(counts) / sum(counts)}


def regression_spread(std: float, label_std: float = 1.5) -> dict:
    """A regression run's dev prediction summary."""
    return {"mean": 2.5, "std": std, "label_mean": 2.4, "label_std": label_std}


class Interrupt(Exception):
    """Raised by ``die_after_checkpoint``: a run killed right after a checkpoint."""


def die_after_checkpoint(monkeypatch, step: int):
    """Make the run's checkpoint writer raise ``Interrupt`` once the checkpoint of ``step`` is on disk; returns
    the real writer, for the caller to put back before resuming."""
    import pst_bench.run.checkpoint as ckpt

    real_save = ckpt.save_checkpoint

    def save_then_die(run_dir, model, optimizer, scheduler, progress, **extra):
        folder = real_save(run_dir, model, optimizer, scheduler, progress, **extra)
        if progress["global_step"] == step:
            raise Interrupt
        return folder

    monkeypatch.setattr(ckpt, "save_checkpoint", save_then_die)
    return real_save
