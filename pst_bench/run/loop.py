"""The one training loop every method shares (built on accelerate).

Per optimizer step: set the scheduled sparsity, forward/backward the
micro-batches (masks are computed once, at the first forward after the
parameters or the sparsity changed), clip, step. After every epoch: evaluate
on the dev set(s) and checkpoint. The loop's position lives in ``LoopState``,
which a checkpoint stores as ``progress.json`` and a resumed run reads back.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..adapter.model import overall_sparsity
from ..data.sampling import EpochPermutation
from ..errors import TrainingDiverged
from ..methods import get_method
from ..sparsity.diagnostics import MaskDiagnostics
from ..sparsity.inject import method_penalty, set_sparsity, sparse_layers
from ..sparsity.schedule import CubicSchedule
from . import checkpoint as ckpt
from .preempt import Preempted, StopSignals
from .tracking import RunTracker

log = logging.getLogger(__name__)


@dataclass
class LoopState:
    """Where the loop is; ``to_dict`` / ``from_dict`` are the checkpoint's progress.json."""

    global_step: int = 0
    epoch: int = 0  # epochs completed
    batches_done_in_epoch: int = 0  # micro-batches, so a resumed run skips exactly those
    history: list[dict] = field(default_factory=list)  # one entry per completed epoch
    epoch_loss_sum: float = 0.0
    epoch_loss_count: int = 0
    elapsed_s: float = 0.0  # wall time of the run up to the last checkpoint
    diagnostics: list[dict] = field(default_factory=list)  # averaged mask/score diagnostics, every N steps
    calibration: dict = field(default_factory=dict)  # a one-shot method's calibration (seconds, samples, tokens)

    def to_dict(self) -> dict:
        return asdict(self)

    #: fields added after checkpoints existed: an older checkpoint resumes with their defaults
    LATER_FIELDS = ("diagnostics", "calibration")

    @classmethod
    def from_dict(cls, progress: dict) -> LoopState:
        """The state saved by ``to_dict``; every field must be there (keys beyond them are ignored)."""
        missing = [f.name for f in fields(cls) if f.name not in progress and f.name not in cls.LATER_FIELDS]
        if missing:
            raise ValueError(f"checkpoint progress lacks {', '.join(missing)}")
        return cls(**{f.name: progress[f.name] for f in fields(cls) if f.name in progress})

    def count_batch(self, loss: float) -> None:
        self.batches_done_in_epoch += 1
        self.epoch_loss_sum += loss
        self.epoch_loss_count += 1

    @property
    def epoch_train_loss(self) -> float:
        return self.epoch_loss_sum / max(1, self.epoch_loss_count)

    def finish_epoch(self, entry: dict) -> None:
        self.history.append(entry)
        self.epoch += 1
        self.batches_done_in_epoch, self.epoch_loss_sum, self.epoch_loss_count = 0, 0.0, 0


@dataclass
class StepPlan:
    """How many optimizer steps the run takes, and the sparsity scheduled at each."""

    total_steps: int
    steps_per_epoch: int
    num_epochs: int
    schedule: CubicSchedule  # the method's sparsity per optimizer step (the library's schedule object)

    @classmethod
    def from_config(cls, cfg, batches_per_epoch: int, schedule_for: Callable[[int], CubicSchedule]) -> StepPlan:
        """``schedule_for``: the ``SparseModel``'s ``schedule`` (total steps -> its cubic schedule)."""
        steps_per_epoch = max(1, math.ceil(batches_per_epoch / int(cfg.train.grad_accum_steps)))
        total_steps = int(cfg.train.max_steps or cfg.train.epochs * steps_per_epoch)
        schedule = schedule_for(total_steps)
        return cls(total_steps, steps_per_epoch, math.ceil(total_steps / steps_per_epoch), schedule)

    @property
    def ramp_end(self) -> int:
        """First step of the final window (target sparsity reached)."""
        return self.schedule.ramp_end

    def sparsity_at(self, step: int) -> float:
        return self.schedule(step)

    def as_record(self) -> dict:
        return {"total": self.total_steps, "per_epoch": self.steps_per_epoch, "ramp_end": self.ramp_end}


@dataclass
class Trainee:
    """What the loop trains with, after ``accelerator.prepare``."""

    accelerator: object
    runner: object  # the task runner: loss and evaluation
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: object
    train_loader: object
    sampler: EpochPermutation
    eval_loaders: dict
    tracker: RunTracker | None = None  # accelerate's trackers (train.log_with)
    diagnostics: MaskDiagnostics | None = None  # per-matrix mask and score diagnostics (sparse methods)

    @property
    def unwrapped(self) -> torch.nn.Module:
        return self.accelerator.unwrap_model(self.model)


def resume_state(run_ckpt_dir: Path, trainee: Trainee) -> LoopState:
    """The state of the newest checkpoint that reads back whole (model, optimizer, scheduler and RNG
    restored), or a fresh one when the run has none. A newer checkpoint that does not read (truncated
    files) is skipped with a warning naming the file, and ``latest`` is pointed at the one used; when
    none reads, ``CheckpointUnreadable`` says so (``train.resume=false`` starts afresh)."""
    loaded = ckpt.newest_readable(run_ckpt_dir)
    if loaded is None:
        return LoopState()
    progress = ckpt.apply_checkpoint(loaded, trainee.unwrapped, trainee.optimizer, trainee.scheduler)
    state = LoopState.from_dict(progress)
    if trainee.diagnostics is not None:  # the last measured masks: the next flip rate is the uninterrupted one
        trainee.diagnostics.load_state(loaded.extra)
    if ckpt.latest_checkpoint(run_ckpt_dir) != loaded.folder and trainee.accelerator.is_main_process:
        # the next save keeps this one and drops the unreadable newer one
        ckpt.point_latest(run_ckpt_dir, loaded.folder)
    log.info("resuming from %s (step %d)", loaded.folder, state.global_step)
    return state


def select_epochs(
    history: list, main_split: str, ramp_end: int, higher_is_better: bool = True
) -> tuple[dict, dict | None]:
    """The last epoch, and the best epoch among those ending at the target sparsity (the final
    30% of steps): the authors' selection rule."""
    final = history[-1]
    window = [h for h in history if h["step"] >= ramp_end]
    sign = 1.0 if higher_is_better else -1.0
    best = max(window, key=lambda h: sign * h["eval"][main_split]["main"]) if window else None
    return final, best


def _last_checkpoint_name(run_ckpt_dir: Path) -> str:
    found = ckpt.latest_checkpoint(run_ckpt_dir)
    return str(found) if found else "none yet"


class TrainingLoop:
    """Runs ``plan`` from ``state`` to the end, checkpointing into ``run_ckpt_dir``.

    ``started`` is the run's start time (``time.time()``), already moved back by the
    elapsed time of a resumed state, so checkpoints carry the run's total wall time.
    """

    def __init__(
        self,
        cfg,
        trainee: Trainee,
        plan: StepPlan,
        state: LoopState,
        run_ckpt_dir: Path,
        started: float,
        desc: str = "",
    ):
        self.cfg, self.trainee, self.plan, self.state = cfg, trainee, plan, state
        self.run_ckpt_dir, self.started = run_ckpt_dir, started
        self.every = int(cfg.train.checkpoint_every_steps or 0)
        accelerator = trainee.accelerator
        self.bar = tqdm(
            total=plan.total_steps,
            initial=state.global_step,
            desc=desc,
            dynamic_ncols=True,
            disable=not (cfg.train.progress_bar and accelerator.is_local_main_process),
        )

    def run(self) -> LoopState:
        """Train to the end of the plan; on SIGTERM / SIGUSR1, checkpoint after the current step and raise
        ``Preempted`` (``pst_bench.run.preempt``)."""
        self.trainee.model.train()
        with StopSignals() as self.stop:
            while self.state.epoch < self.plan.num_epochs and self.state.global_step < self.plan.total_steps:
                self._train_epoch()
                self._end_epoch()
        self.bar.close()
        return self.state

    def _epoch_loader(self):
        """The train loader for the current epoch, past the batches a resumed run already saw."""
        t, state = self.trainee, self.state
        loader = t.train_loader
        if state.batches_done_in_epoch:
            loader = t.accelerator.skip_first_batches(t.train_loader, state.batches_done_in_epoch)
        # accelerate's loaders pass their own iteration count to the sampler's set_epoch when
        # iterated; a loader made for resuming starts that count at 0, so set it explicitly.
        loader.set_epoch(state.epoch) if hasattr(loader, "set_epoch") else t.sampler.set_epoch(state.epoch)
        return loader

    def _train_epoch(self) -> None:
        for batch in self._epoch_loader():
            loss = self._train_batch(batch)
            self.state.count_batch(loss)
            if self.trainee.accelerator.sync_gradients and self._finish_step(loss):
                break

    def _train_batch(self, batch) -> float:
        """Forward/backward one micro-batch (the optimizer steps once per accumulation); its mean loss."""
        t = self.trainee
        set_sparsity(t.unwrapped, self.plan.sparsity_at(self.state.global_step))
        with t.accelerator.accumulate(t.model):
            loss = t.runner.loss(t.model, batch)
            checked = t.accelerator.reduce(loss.detach(), reduction="mean")  # the task loss, as recorded
            self._stop_if_diverged(checked)
            penalty = method_penalty(t.unwrapped)  # soft movement pruning's λ·R(S); None for most methods
            t.accelerator.backward(loss if penalty is None else loss + penalty)
            if t.accelerator.sync_gradients and self.cfg.train.max_grad_norm:
                t.accelerator.clip_grad_norm_(t.model.parameters(), float(self.cfg.train.max_grad_norm))
            t.optimizer.step()
            t.scheduler.step()
            t.optimizer.zero_grad(set_to_none=True)
        return checked.item()

    def _stop_if_diverged(self, loss: torch.Tensor) -> None:
        if not torch.isfinite(loss):
            raise TrainingDiverged(
                f"loss is {loss.item()} at step {self.state.global_step} (epoch {self.state.epoch}); "
                f"training stopped, last good checkpoint: {_last_checkpoint_name(self.run_ckpt_dir)}. "
                "Lower train.lr or check the data"
            )

    def _finish_step(self, loss: float) -> bool:
        """Count an optimizer step, log it, measure and checkpoint when due; True once the plan's last step
        is done. A stop signal received meanwhile ends the run here, checkpointed."""
        state = self.state
        state.global_step += 1
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{loss:.4f}", sparsity=f"{self.plan.sparsity_at(state.global_step):.3f}")
        self._log_step(loss)
        last = state.global_step >= self.plan.total_steps
        if self._diagnostics_due(last):
            self._measure()
        if self.every and state.global_step % self.every == 0:
            self._save(f"every {self.every} steps")
        if self.stop.requested is not None and not last:
            self._stop()
        return last

    def _log_step(self, loss: float) -> None:
        t, step = self.trainee, self.state.global_step
        if t.tracker is not None:
            values = {"train/loss": loss, "train/lr": t.scheduler.get_last_lr()[0]}
            values["train/sparsity_target"] = self.plan.sparsity_at(step - 1)  # the sparsity this step trained at
            t.tracker.log(values, step)

    def _diagnostics_due(self, last: bool) -> bool:
        every = int(self.cfg.train.get("diagnostics_every_steps") or 0)
        return self.trainee.diagnostics is not None and every > 0 and (last or self.state.global_step % every == 0)

    def _measure(self) -> None:
        """Per-matrix diagnostics to the trackers; their mean over matrices into the record's history."""
        t, step = self.trainee, self.state.global_step
        measured = t.diagnostics.measure(step)
        self.state.diagnostics.append({"step": step, "mean": measured["mean"]})
        if t.tracker is not None:
            values = {f"diagnostics/mean/{key}": value for key, value in measured["mean"].items()}
            for name, entry in measured["per_matrix"].items():
                values.update({f"diagnostics/{name}/{key}": value for key, value in entry.items()})
            t.tracker.log(values, step)

    def _stop(self) -> None:
        self._save(f"signal {self.stop.name}")
        self.stop.pass_on()  # under submitit: its handler requeues the job and exits here
        raise Preempted(
            f"stopped by {self.stop.name} after step {self.state.global_step} of {self.plan.total_steps}; "
            f"checkpoint {_last_checkpoint_name(self.run_ckpt_dir)}. Rerun the same command to resume",
            self.stop.requested,
        )

    def _end_epoch(self) -> None:
        """Evaluate with the mask of the current step's sparsity, record the epoch, checkpoint."""
        t, state, step = self.trainee, self.state, self.state.global_step
        set_sparsity(t.unwrapped, self.plan.sparsity_at(step))
        metrics = t.runner.evaluate(t.model, t.eval_loaders, t.accelerator)
        entry = {
            "epoch": state.epoch + 1,
            "step": step,
            "sparsity_target": round(self.plan.sparsity_at(step), 6),
            "train_loss": state.epoch_train_loss,
            "lr": t.scheduler.get_last_lr()[0],
            "eval": metrics,
            "in_final_window": step >= self.plan.ramp_end,
        }
        if get_method(self.cfg.method.kind).sparsity_control == "penalty":  # an outcome: measured every epoch
            entry["sparsity_achieved"] = round(overall_sparsity(sparse_layers(t.unwrapped)), 6)
        main_split = self.cfg.task.main_split
        log.info(
            "epoch %d step %d: train loss %.4f, %s %s = %.4f",
            entry["epoch"],
            step,
            entry["train_loss"],
            main_split,
            t.runner.main_name,
            metrics[main_split]["main"],
        )
        if t.tracker is not None:
            values = {
                f"eval/{split}/{key}": value
                for split, values_of_split in metrics.items()
                for key, value in values_of_split.items()
                if isinstance(value, (int, float))
            }
            t.tracker.log(values, step)
        state.finish_epoch(entry)
        self._save("end of epoch")

    def _save(self, reason: str) -> None:
        t = self.trainee
        self.state.elapsed_s = time.time() - self.started
        if t.accelerator.is_main_process:
            # looked up on the module at call time: tests replace ckpt.save_checkpoint to interrupt a run
            extra = {} if t.diagnostics is None else t.diagnostics.state()
            path = ckpt.save_checkpoint(
                self.run_ckpt_dir, t.unwrapped, t.optimizer, t.scheduler, self.state.to_dict(), extra_tensors=extra
            )
            log.debug("checkpoint (%s) at %s", reason, path)
        t.accelerator.wait_for_everyone()
