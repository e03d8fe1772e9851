"""One run end to end: build the model and data, train (``pst_bench.run.loop``), record, export.

A finished run is not trained again (its record is returned); an interrupted one
resumes from its last checkpoint. The results record is built by
``pst_bench.record.build_record`` and written once, at the end, atomically, after
the masks, the score sample and the exports it names.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate.utils import set_seed
from torch.utils.data import DataLoader

from ..adapter.model import overall_sparsity
from ..data.sampling import EpochPermutation, LengthGroupedPermutation
from ..export.export import export_run, save_artifacts
from ..files import write_json_atomic
from ..models.loading import fit_tokenizer_to_model, load_model, load_tokenizer
from ..models.params import parameter_report
from ..models.prepare import sparse_model_for
from ..record import build_record, read_record, run_id
from ..schema.validate import validate_config
from ..sparsity.diagnostics import MaskDiagnostics
from ..tasks import make_task_runner
from .lock import run_lock
from .loop import LoopState, StepPlan, Trainee, TrainingLoop, resume_state, select_epochs
from .optim import make_accelerator, make_optimizer, make_scheduler
from .tracking import RunTracker

log = logging.getLogger(__name__)


@dataclass
class RunPaths:
    """Where one run's record and checkpoints go (``rid``: its deterministic id)."""

    rid: str
    results_dir: Path
    record: Path
    checkpoints: Path

    @classmethod
    def of(cls, cfg) -> RunPaths:
        rid = run_id(cfg)
        results_dir = Path(cfg.paths.results_dir)
        return cls(rid, results_dir, results_dir / f"{rid}.json", Path(cfg.paths.checkpoint_dir) / rid)


@dataclass
class RunData:
    train_set: object
    eval_sets: dict
    sampler: EpochPermutation
    train_loader: DataLoader
    eval_loaders: dict


def run_experiment(cfg) -> dict:
    """Train, evaluate, export and record one run; returns its results record."""
    validate_config(cfg)
    paths = RunPaths.of(cfg)
    finished = _finished_record(cfg, paths)
    if finished is not None:
        return finished

    # one process per run id (the main rank holds the lock for all of a multi-process run's ranks)
    with run_lock(paths.checkpoints) if _main_rank() else contextlib.nullcontext():
        return _train_and_record(cfg, paths)


def _main_rank() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _train_and_record(cfg, paths: RunPaths) -> dict:
    accelerator = make_accelerator(cfg)
    runner = make_task_runner(cfg)
    set_seed(int(cfg.train.seed))
    started = time.time()
    tokenizer, model, sparse, params = _build_model(cfg)
    layers = sparse.sparse_layers
    data = _build_data(cfg, runner, tokenizer)
    runner.init_head(model, data.train_set)
    trainee, plan = _prepare_training(cfg, accelerator, runner, model, sparse, data)
    trainee.tracker = RunTracker(accelerator, cfg, paths.rid) if accelerator.is_main_process else None
    trainee.diagnostics = MaskDiagnostics(layers) if layers else None
    try:
        state = resume_state(paths.checkpoints, trainee) if cfg.train.resume else LoopState()
        started -= state.elapsed_s  # a resumed run's wall time includes the time before its interruption
        if sparse.needs_calibration():  # a one-shot method's fresh run (a resumed one has its masks back)
            state.calibration = _calibrate(cfg, sparse, data, runner, tokenizer)
        state = TrainingLoop(cfg, trainee, plan, state, paths.checkpoints, started, desc=paths.rid).run()
    finally:
        if trainee.tracker is not None:
            trainee.tracker.close()

    final, best = select_epochs(state.history, cfg.task.main_split, plan.ramp_end, runner.higher_is_better)
    trainee.model.eval()
    extra = runner.finish(trainee.model, tokenizer, accelerator, paths.results_dir / paths.rid)
    record = build_record(
        cfg,
        rid=paths.rid,
        metric=runner.main_name,
        history=state.history,
        final=final,
        best=best,
        steps=plan.as_record(),
        train_examples=len(data.train_set),
        eval_examples={name: len(ds) for name, ds in data.eval_sets.items()},
        params=params,
        sparsity_achieved=_measured_sparsity(layers),
        wall_time_s=time.time() - started,
        device=str(accelerator.device),
        num_processes=accelerator.num_processes,
        checkpoint_dir=str(paths.checkpoints),
        extra={**(extra or {}), **({"calibration": state.calibration} if state.calibration else {})},
        diagnostics=state.diagnostics,
    )
    if accelerator.is_main_process:
        _save_outputs(cfg, record, paths, layers, trainee.unwrapped, tokenizer)
    accelerator.wait_for_everyone()
    return record


def calibration_indices(num_examples: int, samples: int, seed: int) -> list[int]:
    """Which training examples a one-shot method calibrates on: the first ``samples`` of a permutation
    seeded by the run's seed (all of them when the training set is smaller)."""
    order = torch.randperm(num_examples, generator=torch.Generator().manual_seed(seed))
    return sorted(order[: min(samples, num_examples)].tolist())


def _calibrate(cfg, sparse, data: RunData, runner, tokenizer) -> dict:
    """Prune once from ``method.calibration_samples`` training sequences (every process the same ones)."""
    indices = calibration_indices(len(data.train_set), int(cfg.method.calibration_samples), int(cfg.train.seed))
    subset = torch.utils.data.Subset(data.train_set, indices)
    loader = DataLoader(subset, batch_size=int(cfg.train.batch_size), collate_fn=runner.collator(tokenizer))
    info = sparse.calibrate(list(loader))
    log.info(
        "calibrated %s on %d sequences (%d tokens) in %.1f s, %d blocks",
        cfg.method.name,
        info["samples"],
        info["tokens"],
        info["seconds"],
        info["blocks"],
    )
    return info


def _finished_record(cfg, paths: RunPaths) -> dict | None:
    """The stored record when this run already finished and may be reused (``train.resume``)."""
    existing = read_record(paths.record)
    if not (cfg.train.resume and existing and existing.get("status") == "finished"):
        return None
    log.info("run %s already finished (%s); set train.resume=false to run it again", paths.rid, paths.record)
    return existing


def _build_model(cfg) -> tuple:
    """(tokenizer, model with sparse layers, its ``SparseModel`` (layers, schedule), parameter report)."""
    tokenizer = load_tokenizer(cfg.model)
    model = load_model(cfg.model, cfg.task, int(cfg.train.seed))
    fit_tokenizer_to_model(tokenizer, model)
    sparse = sparse_model_for(model, cfg.model, cfg.method)
    return tokenizer, model, sparse, parameter_report(model, sparse.sparse_layers, cfg.model, cfg.method)


def _build_data(cfg, runner, tokenizer) -> RunData:
    train_set, eval_sets = runner.build_datasets(tokenizer)
    collator = runner.collator(tokenizer)
    sampler = _train_sampler(cfg, train_set)
    # The loader gets its own generator: creating an iterator must not draw from the global RNG,
    # or a resumed run (which creates its iterator mid-epoch) would see other dropout masks.
    train_loader = DataLoader(
        train_set,
        batch_size=int(cfg.train.batch_size),
        sampler=sampler,
        collate_fn=collator,
        num_workers=int(cfg.train.num_workers),
        generator=torch.Generator().manual_seed(int(cfg.train.seed)),
    )
    eval_loaders = {
        name: DataLoader(ds, batch_size=int(cfg.train.eval_batch_size), collate_fn=collator)
        for name, ds in eval_sets.items()
    }
    return RunData(train_set, eval_sets, sampler, train_loader, eval_loaders)


def _train_sampler(cfg, train_set) -> EpochPermutation:
    """train.group_by_length: batches of similar length (less padding, same examples per epoch); else random."""
    seed = int(cfg.train.seed)
    if cfg.train.get("group_by_length"):
        lengths = [len(ids) for ids in train_set["input_ids"]]
        return LengthGroupedPermutation(lengths, int(cfg.train.batch_size), seed)
    return EpochPermutation(len(train_set), seed)


def _prepare_training(cfg, accelerator, runner, model, sparse, data: RunData) -> tuple[Trainee, StepPlan]:
    """Optimizer, accelerate-wrapped model and loaders, the step plan (the ``SparseModel``'s sparsity
    schedule) and the LR schedule over it."""
    optimizer = make_optimizer(model, sparse.sparse_layers, cfg)
    model, optimizer, train_loader, *eval_list = accelerator.prepare(
        model, optimizer, data.train_loader, *data.eval_loaders.values()
    )
    # steps per epoch count the prepared loader: one process's share of the batches
    plan = StepPlan.from_config(cfg, len(train_loader), sparse.schedule)
    scheduler = make_scheduler(cfg, optimizer, plan.total_steps)
    trainee = Trainee(
        accelerator,
        runner,
        model,
        optimizer,
        scheduler,
        train_loader,
        data.sampler,
        eval_loaders=dict(zip(data.eval_loaders, eval_list)),
    )
    return trainee, plan


def _measured_sparsity(layers: dict) -> dict:
    """The sparsity of every mask as trained, and over all sparsified entries."""
    per_matrix = {name: round(layer.achieved_sparsity(), 6) for name, layer in layers.items()}
    return {"overall": round(overall_sparsity(layers), 6), "per_matrix": per_matrix}


def _save_outputs(cfg, record: dict, paths: RunPaths, layers: dict, model, tokenizer) -> None:
    """Artifacts and exports first, then the record that names them (main process only)."""
    record["artifacts"] = save_artifacts(cfg, layers, paths.results_dir, paths.rid)
    record.update(export_run(cfg, model, tokenizer, paths.rid))
    write_json_atomic(paths.record, record)
    log.info(
        "results: %s (%s %s = %.4f, sparsity %.4f)",
        paths.record,
        record["main_split"],
        record["metric"],
        record["final"]["main"],
        record["sparsity_achieved"]["overall"],
    )
