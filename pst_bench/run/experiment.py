"""The one training loop every method shares (built on accelerate).

Per optimizer step: set the scheduled sparsity, forward/backward the
micro-batches (masks are computed once, at the first forward after the
parameters or the sparsity changed), clip, step. After every epoch: evaluate
on the dev set(s) and checkpoint. At the end: measure the achieved sparsity
from the masks, export the merged model, write the results record atomically.
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader, Sampler
from tqdm.auto import tqdm
from transformers import get_scheduler

from . import artifacts
from . import checkpoint as ckpt
from .compressed import checkpoint_sizes, save_compressed
from ..errors import ConfigError, TrainingDiverged
from ..models.loading import load_model, load_tokenizer
from ..models.params import parameter_report
from ..models.prepare import prepare_model, validate_config
from ..files import write_json_atomic
from ..record import build_record, read_record, run_id
from ..sparsity.conv1d import restore_conv1d
from ..sparsity.inject import merge_sparse_layers, set_sparsity
from ..sparsity.schedule import cubic_sparsity, schedule_knots
from ..tasks import make_task_runner

log = logging.getLogger(__name__)


class EpochPermutation(Sampler):
    """A fresh, seeded permutation per epoch, so a resumed run sees the same order."""

    def __init__(self, size: int, seed: int):
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1000 + self.epoch)
        return iter(torch.randperm(self.size, generator=generator).tolist())

    def __len__(self) -> int:
        return self.size


# -- optimisation ------------------------------------------------------------------
def param_groups(model, layers, cfg):
    """AdamW groups: no decay on biases/norms; importance scores may get their own LR."""
    score_ids = set()
    if cfg.method.get("score_lr") is not None:
        for layer in layers.values():
            score_ids.update(id(getattr(layer, name)) for name in layer.score_param_names)
    groups: dict[tuple, list] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        no_decay = param.ndim < 2 or "LayerNorm" in name or name.endswith(".bias")
        is_score = id(param) in score_ids
        groups.setdefault((no_decay, is_score), []).append(param)
    result = []
    for (no_decay, is_score), params in groups.items():
        group = {"params": params, "weight_decay": 0.0 if no_decay else float(cfg.train.weight_decay)}
        if is_score:
            group["lr"] = float(cfg.method.score_lr)
        result.append(group)
    return result


def _accelerator(cfg) -> Accelerator:
    device = cfg.train.device
    if device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"train.device={device!r}: choose auto, cpu or cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device=cuda but no CUDA device is visible; use train.device=auto or cpu")
    # On a machine without a GPU, accelerate sets up multi-process CPU training (gloo) under
    # torchrun / accelerate launch only when told cpu=True; "auto" means exactly that there.
    use_cpu = device == "cpu" or (device == "auto" and not torch.cuda.is_available())
    return Accelerator(cpu=use_cpu, mixed_precision=str(cfg.train.mixed_precision),
                       gradient_accumulation_steps=int(cfg.train.grad_accum_steps))


# -- bookkeeping -------------------------------------------------------------------
def _measured_sparsity(layers) -> dict:
    per_matrix = {name: round(layer.achieved_sparsity(), 6) for name, layer in layers.items()}
    total = sum(layer.base_layer.weight.numel() for layer in layers.values())
    pruned = sum(layer.achieved_sparsity() * layer.base_layer.weight.numel() for layer in layers.values())
    return {"overall": round(pruned / total, 6) if total else 0.0, "per_matrix": per_matrix}


def _select_epochs(history: list, main_split: str, ramp_end: int,
                   higher_is_better: bool = True) -> tuple[dict, dict | None]:
    """The last epoch, and the best epoch among those ending at the target sparsity (the final
    30% of steps): the authors' selection rule."""
    final = history[-1]
    window = [h for h in history if h["step"] >= ramp_end]
    sign = 1.0 if higher_is_better else -1.0
    best = max(window, key=lambda h: sign * h["eval"][main_split]["main"]) if window else None
    return final, best


# -- the run -----------------------------------------------------------------------
def run_experiment(cfg) -> dict:
    """Train, evaluate, export and record one run; returns its results record."""
    validate_config(cfg)
    rid = run_id(cfg)
    results_dir = Path(cfg.paths.results_dir)
    record_path = results_dir / f"{rid}.json"
    run_ckpt_dir = Path(cfg.paths.checkpoint_dir) / rid
    existing = read_record(record_path)
    if cfg.train.resume and existing and existing.get("status") == "finished":
        log.info("run %s already finished (%s); set train.resume=false to run it again", rid, record_path)
        return existing

    accelerator = _accelerator(cfg)
    runner = make_task_runner(cfg)
    set_seed(int(cfg.train.seed))
    started = time.time()
    tokenizer = load_tokenizer(cfg.model)
    model = load_model(cfg.model, cfg.task, int(cfg.train.seed))
    layers = prepare_model(model, cfg.model, cfg.method)
    params = parameter_report(model, layers, cfg.model, cfg.method)

    train_set, eval_sets = runner.build_datasets(tokenizer)
    collator = runner.collator(tokenizer)
    sampler = EpochPermutation(len(train_set), int(cfg.train.seed))
    # The loader gets its own generator: creating an iterator must not draw from the global RNG,
    # or a resumed run (which creates its iterator mid-epoch) would see other dropout masks.
    train_loader = DataLoader(train_set, batch_size=int(cfg.train.batch_size), sampler=sampler,
                              collate_fn=collator, num_workers=int(cfg.train.num_workers),
                              generator=torch.Generator().manual_seed(int(cfg.train.seed)))
    eval_loaders = {name: DataLoader(ds, batch_size=int(cfg.train.eval_batch_size), collate_fn=collator)
                    for name, ds in eval_sets.items()}

    optimizer = torch.optim.AdamW(param_groups(model, layers, cfg), lr=float(cfg.train.lr),
                                  eps=float(cfg.train.adam_epsilon))
    model, optimizer, train_loader, *eval_list = accelerator.prepare(
        model, optimizer, train_loader, *eval_loaders.values())
    eval_loaders = dict(zip(eval_loaders, eval_list))

    accum = int(cfg.train.grad_accum_steps)
    steps_per_epoch = max(1, math.ceil(len(train_loader) / accum))
    total_steps = int(cfg.train.max_steps or cfg.train.epochs * steps_per_epoch)
    num_epochs = math.ceil(total_steps / steps_per_epoch)
    scheduler = get_scheduler(cfg.train.lr_schedule, optimizer,
                              num_warmup_steps=int(cfg.train.lr_warmup_frac * total_steps),
                              num_training_steps=total_steps)
    method = cfg.method
    _, ramp_end = schedule_knots(total_steps, method.warmup_frac, method.cooldown_frac)

    def sparsity_at(step: int) -> float:
        return cubic_sparsity(step, total_steps, method.initial_sparsity, method.sparsity,
                              method.warmup_frac, method.cooldown_frac)

    progress = {"global_step": 0, "epoch": 0, "batches_done_in_epoch": 0, "history": [],
                "epoch_loss_sum": 0.0, "epoch_loss_count": 0, "elapsed_s": 0.0}
    last_ckpt = ckpt.latest_checkpoint(run_ckpt_dir) if cfg.train.resume else None
    if last_ckpt is not None:
        progress = ckpt.load_checkpoint(last_ckpt, accelerator.unwrap_model(model), optimizer, scheduler)
        log.info("resuming %s from %s (step %d)", rid, last_ckpt, progress["global_step"])
        started -= progress["elapsed_s"]

    def save(reason: str) -> None:
        progress["elapsed_s"] = time.time() - started
        if accelerator.is_main_process:
            path = ckpt.save_checkpoint(run_ckpt_dir, accelerator.unwrap_model(model), optimizer,
                                        scheduler, progress)
            log.debug("checkpoint (%s) at %s", reason, path)
        accelerator.wait_for_everyone()

    bar = tqdm(total=total_steps, initial=progress["global_step"], desc=rid, dynamic_ncols=True,
               disable=not (cfg.train.progress_bar and accelerator.is_local_main_process))
    unwrapped = accelerator.unwrap_model(model)
    model.train()
    every = cfg.train.checkpoint_every_steps
    while progress["epoch"] < num_epochs and progress["global_step"] < total_steps:
        epoch = progress["epoch"]
        loader = train_loader
        if progress["batches_done_in_epoch"]:
            loader = accelerator.skip_first_batches(train_loader, progress["batches_done_in_epoch"])
        # accelerate's loaders pass their own iteration count to the sampler's set_epoch when
        # iterated; a loader made for resuming starts that count at 0, so set it explicitly.
        loader.set_epoch(epoch) if hasattr(loader, "set_epoch") else sampler.set_epoch(epoch)
        for batch in loader:
            set_sparsity(unwrapped, sparsity_at(progress["global_step"]))
            with accelerator.accumulate(model):
                loss = runner.loss(model, batch)
                checked = accelerator.reduce(loss.detach(), reduction="mean")
                if not torch.isfinite(checked):
                    where = last_ckpt_name(run_ckpt_dir)
                    raise TrainingDiverged(
                        f"loss is {checked.item()} at step {progress['global_step']} (epoch {epoch}); "
                        f"training stopped, last good checkpoint: {where}. Lower train.lr or check the data")
                accelerator.backward(loss)
                if accelerator.sync_gradients and cfg.train.max_grad_norm:
                    accelerator.clip_grad_norm_(model.parameters(), float(cfg.train.max_grad_norm))
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            progress["batches_done_in_epoch"] += 1
            progress["epoch_loss_sum"] += checked.item()
            progress["epoch_loss_count"] += 1
            if accelerator.sync_gradients:
                progress["global_step"] += 1
                bar.update(1)
                bar.set_postfix(loss=f"{checked.item():.4f}", sparsity=f"{sparsity_at(progress['global_step']):.3f}")
                if every and progress["global_step"] % int(every) == 0:
                    save(f"every {every} steps")
                if progress["global_step"] >= total_steps:
                    break
        # End of epoch: the mask for evaluation is that of the current step's sparsity.
        set_sparsity(unwrapped, sparsity_at(progress["global_step"]))
        metrics = runner.evaluate(model, eval_loaders, accelerator)
        entry = {"epoch": epoch + 1, "step": progress["global_step"],
                 "sparsity_target": round(sparsity_at(progress["global_step"]), 6),
                 "train_loss": progress["epoch_loss_sum"] / max(1, progress["epoch_loss_count"]),
                 "lr": scheduler.get_last_lr()[0], "eval": metrics,
                 "in_final_window": progress["global_step"] >= ramp_end}
        progress["history"].append(entry)
        main = metrics[cfg.task.main_split]["main"]
        log.info("epoch %d step %d: train loss %.4f, %s %s = %.4f", epoch + 1, entry["step"],
                 entry["train_loss"], cfg.task.main_split, runner.main_name, main)
        progress.update(epoch=epoch + 1, batches_done_in_epoch=0, epoch_loss_sum=0.0, epoch_loss_count=0)
        save("end of epoch")
    bar.close()

    final, best = _select_epochs(progress["history"], cfg.task.main_split, ramp_end, runner.higher_is_better)
    model.eval()
    finished = runner.finish(model, tokenizer, accelerator, results_dir / rid)
    record = build_record(
        cfg, rid=rid, metric=runner.main_name, history=progress["history"], final=final, best=best,
        steps={"total": total_steps, "per_epoch": steps_per_epoch, "ramp_end": ramp_end},
        train_examples=len(train_set), eval_examples={name: len(ds) for name, ds in eval_sets.items()},
        params=params, sparsity_achieved=_measured_sparsity(layers), wall_time_s=time.time() - started,
        device=str(accelerator.device), num_processes=accelerator.num_processes,
        checkpoint_dir=str(run_ckpt_dir), extra=finished)
    if accelerator.is_main_process:
        record["artifacts"] = save_artifacts(cfg, layers, results_dir, rid)
        if cfg.export:
            export_dir = export_model(unwrapped, tokenizer, Path(cfg.paths.export_dir) / rid)
            record["export_dir"] = str(export_dir)
            if cfg.get("export_compressed"):
                record["export_compressed"] = export_compressed(unwrapped, tokenizer, export_dir,
                                                                str(cfg.export_compressed))
        write_json_atomic(record_path, record)
        log.info("results: %s (%s %s = %.4f, sparsity %.4f)", record_path, cfg.task.main_split,
                 runner.main_name, record["final"]["main"], record["sparsity_achieved"]["overall"])
    accelerator.wait_for_everyone()
    return record


def save_artifacts(cfg, layers: dict, results_dir: Path, rid: str) -> dict:
    """Masks and a score sample next to the record (file names, relative to it)."""
    saved = {}
    if not layers:
        return saved
    if cfg.artifacts.save_masks:
        saved["masks"] = artifacts.save_masks(layers, results_dir / f"{rid}.masks.npz").name
    if cfg.artifacts.score_sample:
        path = artifacts.save_score_sample(layers, results_dir / f"{rid}.scores.npz",
                                           per_layer=int(cfg.artifacts.score_sample),
                                           max_layers=int(cfg.artifacts.score_sample_layers),
                                           seed=int(cfg.train.seed))
        saved["scores"] = path.name
    return saved


def last_ckpt_name(run_dir: Path) -> str:
    found = ckpt.latest_checkpoint(run_dir)
    return str(found) if found else "none yet"


def export_compressed(model, tokenizer, export_dir: Path, value_dtype: str) -> dict:
    """The merged model as bitmask + values (pst_bench.compressed) in <export_dir>.compressed/."""
    folder = save_compressed(model, export_dir.with_name(f"{export_dir.name}.compressed"),
                             value_dtype=value_dtype, tokenizer=tokenizer)
    return {"dir": str(folder), "value_dtype": value_dtype, **checkpoint_sizes(export_dir, folder)}


def export_model(model, tokenizer, target: Path) -> Path:
    """save_pretrained of the model with every mask merged: W* = M ⊙ W, plain nn.Linear layers.

    Written into a temporary sibling folder and renamed, so a crash never leaves half an export.
    """
    import shutil

    merge_sparse_layers(model)
    restore_conv1d(model)  # GPT-2: back to transformers' Conv1D layout
    partial = target.with_name(f".partial-{target.name}-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial.rename(target)
    return target
