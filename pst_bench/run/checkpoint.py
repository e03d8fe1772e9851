"""Per-run checkpoints for exact resume.

Layout under ``<checkpoint_dir>/<run_id>/``:
  step-<N>/trainable.safetensors   every trainable tensor (frozen weights come from the model source)
  step-<N>/optimizer.pt, scheduler.pt, rng.pt
  step-<N>/progress.json           step, epoch, position in the epoch, metrics so far
  step-<N>/extra.safetensors       state of observers that must survive a resume (diagnostics' last masks)
  latest                           name of the newest complete step folder

A checkpoint folder is written completely first; only then is ``latest``
switched to it (atomic rename) and older folders removed. A run killed while
saving resumes from the previous checkpoint.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..files import atomic_folder, atomic_write_text


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


def trainable_state(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().contiguous().cpu() for name, p in model.named_parameters() if p.requires_grad}


def save_checkpoint(run_dir: Path, model, optimizer, scheduler, progress: dict, extra_tensors=None) -> Path:
    """Write ``step-<N>`` completely, point ``latest`` at it, drop older steps; ``progress``
    is the loop's state as JSON (``pst_bench.run.loop.LoopState.to_dict``), ``extra_tensors``
    what else must be restored on resume ({name: tensor}, see ``load_extra``)."""
    run_dir = Path(run_dir)
    folder = run_dir / f"step-{progress['global_step']}"
    with atomic_folder(folder) as partial:
        save_file(trainable_state(model), str(partial / "trainable.safetensors"))
        torch.save(optimizer.state_dict(), partial / "optimizer.pt")
        torch.save(scheduler.state_dict(), partial / "scheduler.pt")
        torch.save(rng_state(), partial / "rng.pt")
        (partial / "progress.json").write_text(json.dumps(progress, indent=2))
        if extra_tensors:
            save_file({k: v.contiguous().cpu() for k, v in extra_tensors.items()}, str(partial / "extra.safetensors"))
    atomic_write_text(run_dir / "latest", folder.name + "\n")
    _remove_other_steps(run_dir, keep=folder)
    return folder


def _remove_other_steps(run_dir: Path, keep: Path) -> None:
    for old in run_dir.glob("step-*"):
        if old != keep:
            shutil.rmtree(old, ignore_errors=True)


def latest_checkpoint(run_dir: Path) -> Path | None:
    pointer = run_dir / "latest"
    if not pointer.is_file():
        return None
    folder = run_dir / pointer.read_text().strip()
    return folder if (folder / "progress.json").is_file() else None


def load_checkpoint(folder: Path, model, optimizer, scheduler) -> dict:
    """Restore model tensors, optimizer, scheduler and RNG; returns the saved progress."""
    tensors = load_file(str(folder / "trainable.safetensors"))
    params = dict(model.named_parameters())
    missing = [name for name, p in params.items() if p.requires_grad and name not in tensors]
    if missing:
        raise RuntimeError(f"checkpoint {folder} lacks {len(missing)} trainable tensors, e.g. {missing[:3]}")
    with torch.no_grad():
        for name, value in tensors.items():
            params[name].copy_(value)
    optimizer.load_state_dict(torch.load(folder / "optimizer.pt", weights_only=False))
    scheduler.load_state_dict(torch.load(folder / "scheduler.pt", weights_only=False))
    set_rng_state(torch.load(folder / "rng.pt", weights_only=False))
    return json.loads((folder / "progress.json").read_text())


def load_extra(folder: Path) -> dict[str, torch.Tensor]:
    """The ``extra_tensors`` saved with a checkpoint ({} when it has none)."""
    path = Path(folder) / "extra.safetensors"
    return load_file(str(path)) if path.is_file() else {}
