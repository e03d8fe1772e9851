"""Per-run checkpoints for exact resume.

Layout under ``<checkpoint_dir>/<run_id>/``:
  step-<N>/trainable.safetensors   every trainable tensor (frozen weights come from the model source) and
                                   the sparse layers' state buffers (Wanda's statistics, a one-shot mask)
  step-<N>/optimizer.pt, scheduler.pt, rng.pt
  step-<N>/progress.json           step, epoch, position in the epoch, metrics so far
  step-<N>/extra.safetensors       state of observers that must survive a resume (diagnostics' last masks)
  latest                           name of the newest complete step folder

A checkpoint folder is written completely first; only then is ``latest``
switched to it (atomic rename) and older folders removed, all but the one
``latest`` named before: the last two checkpoints are kept. A run killed while
saving resumes from the previous checkpoint; so does a run whose newest
checkpoint cannot be read back (files truncated by a node that died while the
file system flushed them): every file is read before any is applied, the
unreadable one is named in a warning and the one before it is used.
"""

from __future__ import annotations

import json
import logging
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..errors import PstBenchError
from ..files import atomic_folder, atomic_write_text
from ..sparsity.inject import method_buffers

log = logging.getLogger(__name__)

_STEP = re.compile(r"step-(\d+)")


class CheckpointUnreadable(PstBenchError):
    """No checkpoint of a run can be read back (truncated or corrupt files)."""


def rng_state() -> dict:
    return {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _state_tensors(model) -> dict[str, torch.Tensor]:
    """What a checkpoint restores: every parameter, and the sparse layers' state buffers (``method_buffers``)."""
    return {**dict(model.named_parameters()), **method_buffers(model)}


def trainable_state(model) -> dict[str, torch.Tensor]:
    state = {name: p.detach().contiguous().cpu() for name, p in model.named_parameters() if p.requires_grad}
    state.update({name: b.detach().contiguous().cpu() for name, b in method_buffers(model).items()})
    return state


def save_checkpoint(run_dir: Path, model, optimizer, scheduler, progress: dict, extra_tensors=None) -> Path:
    """Write ``step-<N>`` completely, point ``latest`` at it, drop every older step but the one a resume
    would have used before (the last two checkpoints are kept); ``progress`` is the loop's state as JSON
    (``pst_bench.run.loop.LoopState.to_dict``), ``extra_tensors`` what else must be restored on resume
    ({name: tensor}, see ``load_extra``)."""
    run_dir = Path(run_dir)
    folder = run_dir / f"step-{progress['global_step']}"
    # the checkpoint resumed from so far (an end-of-epoch save may rewrite the step just saved)
    previous = next((f for f in checkpoint_folders(run_dir) if f != folder), None)
    with atomic_folder(folder) as partial:
        save_file(trainable_state(model), str(partial / "trainable.safetensors"))
        torch.save(optimizer.state_dict(), partial / "optimizer.pt")
        torch.save(scheduler.state_dict(), partial / "scheduler.pt")
        torch.save(rng_state(), partial / "rng.pt")
        (partial / "progress.json").write_text(json.dumps(progress, indent=2))
        if extra_tensors:
            save_file({k: v.contiguous().cpu() for k, v in extra_tensors.items()}, str(partial / "extra.safetensors"))
    point_latest(run_dir, folder)
    _remove_other_steps(run_dir, keep={folder, previous} if previous is not None else {folder})
    return folder


def point_latest(run_dir: Path, folder: Path) -> None:
    """Name ``folder`` in ``run_dir/latest`` (atomically)."""
    atomic_write_text(Path(run_dir) / "latest", Path(folder).name + "\n")


def _remove_other_steps(run_dir: Path, keep: set) -> None:
    for old in run_dir.glob("step-*"):
        if old not in keep:
            shutil.rmtree(old, ignore_errors=True)


def _pointed(run_dir: Path) -> Path | None:
    """The complete step folder ``latest`` names, or None (no pointer, an unreadable one, a missing folder)."""
    try:
        name = (run_dir / "latest").read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    folder = run_dir / name
    return folder if _STEP.fullmatch(name) and (folder / "progress.json").is_file() else None


def _step_of(folder: Path) -> int:
    found = _STEP.fullmatch(folder.name)
    return int(found.group(1)) if found else -1


def checkpoint_folders(run_dir: Path) -> list[Path]:
    """The run's complete checkpoint folders, the one to resume from first: the one ``latest`` names,
    then the others from the highest step down (also when ``latest`` itself is lost or unreadable)."""
    run_dir = Path(run_dir)
    pointed = _pointed(run_dir)
    complete = [f for f in run_dir.glob("step-*") if _STEP.fullmatch(f.name) and (f / "progress.json").is_file()]
    others = [f for f in complete if f != pointed]
    return ([pointed] if pointed else []) + sorted(others, key=_step_of, reverse=True)


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The folder to resume from (first of ``checkpoint_folders``), readable or not; None when there is none."""
    folders = checkpoint_folders(Path(run_dir))
    return folders[0] if folders else None


@dataclass
class Checkpoint:
    """Everything one checkpoint folder holds, read into memory (``read_checkpoint``)."""

    folder: Path
    tensors: dict
    optimizer: dict
    scheduler: dict
    rng: dict
    progress: dict
    extra: dict


def _read(folder: Path, name: str, reader):
    path = folder / name
    try:
        return reader(path)
    except Exception as err:  # safetensors' header errors, torch's unpickling errors, EOF, bad JSON
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        size = path.stat().st_size if path.exists() else None
        where = "missing" if size is None else f"{size:,} bytes"
        raise CheckpointUnreadable(f"{path} is unreadable ({where}): {type(err).__name__}: {reason}") from err


def read_checkpoint(folder: Path) -> Checkpoint:
    """Read every file of ``folder``; ``CheckpointUnreadable`` names the first that cannot be read."""
    folder = Path(folder)

    def torch_file(path):
        return torch.load(path, weights_only=False)

    def progress(path):
        value = json.loads(path.read_text())
        if not isinstance(value, dict) or "global_step" not in value:
            raise ValueError("not a progress record (no global_step)")
        return value

    extra = folder / "extra.safetensors"
    return Checkpoint(
        folder=folder,
        tensors=_read(folder, "trainable.safetensors", lambda p: load_file(str(p))),
        progress=_read(folder, "progress.json", progress),
        optimizer=_read(folder, "optimizer.pt", torch_file),
        scheduler=_read(folder, "scheduler.pt", torch_file),
        rng=_read(folder, "rng.pt", torch_file),
        extra=_read(folder, extra.name, lambda p: load_file(str(p))) if extra.exists() else {},
    )


def apply_checkpoint(loaded: Checkpoint, model, optimizer, scheduler) -> dict:
    """Restore model tensors, optimizer, scheduler and RNG from a read checkpoint; returns its progress."""
    params = _state_tensors(model)
    buffers = set(params) - {name for name, _ in model.named_parameters()}
    missing = [
        name for name, p in params.items() if (p.requires_grad or name in buffers) and name not in loaded.tensors
    ]
    if missing:
        raise RuntimeError(f"checkpoint {loaded.folder} lacks {len(missing)} trainable tensors, e.g. {missing[:3]}")
    unknown = sorted(set(loaded.tensors) - set(params))
    if unknown:
        raise RuntimeError(f"checkpoint {loaded.folder} has {len(unknown)} tensors the model lacks, e.g. {unknown[:3]}")
    tensors = loaded.tensors
    wrong = [(n, tuple(v.shape), tuple(params[n].shape)) for n, v in tensors.items() if v.shape != params[n].shape]
    if wrong:
        name, saved, own = wrong[0]
        raise PstBenchError(
            f"checkpoint {loaded.folder} does not fit this model: tensor {name} is {saved} there, {own} here"
            + (f" ({len(wrong) - 1} more differ)" if len(wrong) > 1 else "")
        )
    with torch.no_grad():
        for name, value in loaded.tensors.items():
            params[name].copy_(value)
    optimizer.load_state_dict(loaded.optimizer)
    scheduler.load_state_dict(loaded.scheduler)
    set_rng_state(loaded.rng)
    return loaded.progress


def load_checkpoint(folder: Path, model, optimizer, scheduler) -> dict:
    """Restore model tensors, optimizer, scheduler and RNG; returns the saved progress."""
    return apply_checkpoint(read_checkpoint(folder), model, optimizer, scheduler)


def newest_readable(run_dir: Path) -> Checkpoint | None:
    """The newest checkpoint of ``run_dir`` that reads back whole, None when the run has none.

    A newer one that does not read is named in a warning and skipped; when none reads,
    ``CheckpointUnreadable`` names each, with the way to start afresh (``train.resume=false``).
    """
    folders = checkpoint_folders(Path(run_dir))
    problems = []
    for folder in folders:
        try:
            loaded = read_checkpoint(folder)
        except CheckpointUnreadable as err:
            problems.append(str(err))
            continue
        for problem in problems:
            log.warning("checkpoint skipped: %s; resuming from %s instead", problem, folder.name)
        return loaded
    if not problems:
        return None
    raise CheckpointUnreadable(
        f"no checkpoint of run {Path(run_dir).name} can be read back: {'; '.join(problems)}. "
        "Rerun with train.resume=false to start this run afresh (its checkpoints are then replaced)"
    )


def load_extra(folder: Path) -> dict[str, torch.Tensor]:
    """The ``extra_tensors`` saved with a checkpoint ({} when it has none)."""
    path = Path(folder) / "extra.safetensors"
    return load_file(str(path)) if path.is_file() else {}
