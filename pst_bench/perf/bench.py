"""`make bench`: training-step time, peak memory and evaluation time per method, side by side.

    python -m pst_bench.perf.bench [--batch-size 32 --seq-length 128 ...] [Hydra overrides, e.g. model=roberta-base]

Every method is built on the same model shape with random weights (speed does
not depend on their values) and measured in one process. Steps are interleaved
round by round (dense, LoRA, MaP, MvP, PST, dense, ...) so a slow phase of the
machine touches every method alike; warm-up rounds are excluded and the median
is reported. A training step is what the training loop does: forward, backward,
gradient clipping, AdamW step, zero_grad. Peak memory is measured in a separate
pass (pst_bench.perf.memory: live tensor bytes, the figure torch.cuda.max_memory_allocated
gives on a GPU). Results: a markdown table and a JSON file under results/bench/.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..adapter import SparseConfig
from ..adapter.model import resolve_targets
from ..export.compressed import checkpoint_sizes, save_compressed
from ..files import atomic_write_text
from ..models.loading import load_model
from ..models.prepare import prepare_model
from ..record import library_versions
from ..run.optim import param_groups
from ..schema.validate import validate_config
from ..sparsity.conv1d import restore_conv1d
from ..sparsity.inject import matching_module_names, merge_sparse_layers, method_penalty, set_sparsity
from ..sparsity.oneshot import calibrate_sequentially, one_shot_layers
from ..tasks import runner_class, task_kind
from .bench_report import markdown_report, target_checks
from .memory import PeakTensorMemory

#: the paper's methods and LoRA, then the baselines beyond the paper (issue 24): gradual and one-shot Wanda,
#: SparseGPT (one-shot: their calibration is timed once, their steps train with the mask fixed), soft movement
METHODS = ("finetune", "lora", "map", "mvp", "pst", "wanda", "wanda_oneshot", "sparsegpt", "soft_mvp")
DEFAULT_GROUPS = {"model": "bert-base", "task": "sst2"}


@dataclass
class Subject:
    """One method's model, optimizer and measurements."""

    name: str
    cfg: object  # the composed run config (method=finetune for LoRA)
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    layers: dict
    trainable: list
    step_times: list = field(default_factory=list)
    backward_times: list = field(default_factory=list)  # forward + backward part of each step
    mask_times: list = field(default_factory=list)
    eval_times: list = field(default_factory=list)
    memory: dict = field(default_factory=dict)
    calibration: dict | None = None  # a one-shot method's calibration (seconds, samples, tokens, blocks)

    @property
    def max_grad_norm(self) -> float | None:
        return float(self.cfg.train.max_grad_norm) if self.cfg.train.max_grad_norm else None

    @property
    def mask_seconds(self) -> float:
        return sum(layer.mask_seconds for layer in self.layers.values())


# -- configuration -------------------------------------------------------------------
def compose_config(method: str, overrides: list[str]):
    """The run config for one method: model/task default to bert-base/sst2, weights random."""
    from hydra import compose, initialize_config_module

    groups, extra = dict(DEFAULT_GROUPS), []
    for override in overrides:
        key, _, value = override.partition("=")
        if key in groups:
            groups[key] = value
        elif key == "method":
            raise SystemExit("pst-bench bench: choose methods with --methods, not method=")
        else:
            extra.append(override)
    with initialize_config_module(config_module="pst_bench.conf", version_base="1.3"):
        cfg = compose(
            config_name="config",
            overrides=[
                f"model={groups['model']}",
                f"task={groups['task']}",
                f"method={method}",
                "model.random_init=true",
                *extra,
            ],
        )
    validate_config(cfg)
    return cfg


def _architecture(cfg) -> str:
    """The model head the task trains, as its task runner names it (validate_config checks the model)."""
    return runner_class(task_kind(cfg.task)).architecture


def _lm_labels(cfg, input_ids: torch.Tensor, generator) -> torch.Tensor:
    return input_ids.clone()  # a causal LM predicts its own input (shifted inside the model)


def _classification_labels(cfg, input_ids: torch.Tensor, generator) -> torch.Tensor:
    batch_size = input_ids.shape[0]
    if cfg.task.is_regression:  # STS-B: one score per example
        return torch.randn(batch_size, generator=generator)
    return torch.randint(0, int(cfg.task.num_labels), (batch_size,), generator=generator)


#: model architecture -> (random labels for a batch, peft's task type for LoRA)
HEADS = {"causal_lm": (_lm_labels, "CAUSAL_LM"), "sequence_classification": (_classification_labels, "SEQ_CLS")}


def make_batch(cfg, batch_size: int, seq_length: int, vocab_size: int, device) -> dict:
    """Random token ids of exactly seq_length (no padding) and matching labels."""
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(0, vocab_size, (batch_size, seq_length), generator=generator)
    make_labels, _ = HEADS[_architecture(cfg)]
    batch = {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "labels": make_labels(cfg, input_ids, generator),
    }
    return {k: v.to(device) for k, v in batch.items()}


# -- building ------------------------------------------------------------------------
def _lora(model, cfg, rank: int):
    from peft import LoraConfig, get_peft_model

    _, task_type = HEADS[_architecture(cfg)]
    # The same matrices the sparse methods wrap (leaves only: GPT-2's split q/k/v, not their container).
    where = resolve_targets(model, SparseConfig.from_run_config(cfg.model, cfg.method))
    targets = matching_module_names(model, where["targets"], leaves_only=True)
    config = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules=targets, task_type=task_type)
    return get_peft_model(model, config)


def calibration_batches(samples: int, batch_size: int, seq_length: int, vocab_size: int, device) -> list[dict]:
    """``samples`` random sequences of ``seq_length`` tokens (no padding) in batches: what a one-shot
    method's calibration costs does not depend on the tokens' values."""
    generator = torch.Generator().manual_seed(1)
    sizes = [min(batch_size, samples - start) for start in range(0, samples, batch_size)]
    batches = []
    for size in sizes:
        input_ids = torch.randint(0, vocab_size, (size, seq_length), generator=generator)
        batches.append({"input_ids": input_ids.to(device), "attention_mask": torch.ones_like(input_ids).to(device)})
    return batches


def build_subject(
    name: str, overrides: list[str], sparsity: float, lora_rank: int, device, calibration=(None, 32, 128)
) -> Subject:
    """One method's model and optimizer; a one-shot method is calibrated here (``calibration``: samples,
    None = the method's ``calibration_samples``, batch size, sequence length) and its time kept."""
    cfg = compose_config("finetune" if name == "lora" else name, overrides)
    model = load_model(cfg.model, cfg.task, seed=int(cfg.train.seed))  # same seed: same weights
    layers = prepare_model(model, cfg.model, cfg.method)
    if name == "lora":
        model = _lora(model, cfg, lora_rank)
    set_sparsity(model, sparsity if layers else 0.0)
    model.to(device).train()
    calibrated = None
    if one_shot_layers(layers):
        samples, batch_size, seq_length = calibration
        samples = int(samples or cfg.method.calibration_samples)
        batches = calibration_batches(samples, batch_size, seq_length, model.config.vocab_size, device)
        _sync(device)
        calibrated = calibrate_sequentially(model, one_shot_layers(layers), batches)
        _sync(device)
    groups = (
        param_groups(model, layers, cfg)
        if name != "lora"
        else [{"params": [p for p in model.parameters() if p.requires_grad]}]
    )
    optimizer = torch.optim.AdamW(groups, lr=1e-6, eps=float(cfg.train.adam_epsilon))
    trainable = [p for p in model.parameters() if p.requires_grad]
    return Subject(name, cfg, model, optimizer, layers, trainable, calibration=calibrated)


# -- measuring -----------------------------------------------------------------------
def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def train_step(subject: Subject, batch: dict, device="cpu") -> float:
    """One training step; returns the seconds of its forward + backward part."""
    started = time.perf_counter()
    loss = subject.model(**batch).loss
    penalty = method_penalty(subject.model)  # soft movement pruning's L1 term, as the training loop adds it
    (loss if penalty is None else loss + penalty).backward()
    _sync(device)
    forward_backward = time.perf_counter() - started
    if subject.max_grad_norm:
        torch.nn.utils.clip_grad_norm_(subject.trainable, subject.max_grad_norm)
    subject.optimizer.step()
    subject.optimizer.zero_grad(set_to_none=True)
    return forward_backward


def time_training(subjects: list[Subject], batch: dict, warmup: int, repeats: int, device, log) -> None:
    for round_ in range(warmup + repeats):
        for subject in subjects:
            _sync(device)
            mask_before, started = subject.mask_seconds, time.perf_counter()
            forward_backward = train_step(subject, batch, device)
            _sync(device)
            elapsed = time.perf_counter() - started
            if round_ >= warmup:
                subject.step_times.append(elapsed)
                subject.backward_times.append(forward_backward)
                subject.mask_times.append(subject.mask_seconds - mask_before)
            log(
                f"  train round {round_ + 1}/{warmup + repeats} {subject.name:<8} {elapsed:7.3f} s"
                + ("  (warm-up)" if round_ < warmup else "")
            )


def measure_memory(subject: Subject, batch: dict) -> None:
    """Live tensor bytes before a training step (parameters, optimizer state, masks, the batch)
    and at its peak (plus activations, gradients and temporaries)."""
    gc.collect()
    tracker = PeakTensorMemory()
    tracker.register(subject.model, subject.optimizer, *batch.values())
    resident = tracker.live_bytes
    with tracker:
        train_step(subject, batch)
    subject.memory = {"resident_bytes": resident, "peak_bytes": tracker.peak_bytes}


@torch.no_grad()
def time_eval(subjects: list[Subject], batch: dict, repeats: int, device, log) -> None:
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    for subject in subjects:
        subject.model.eval()
        subject.model(**inputs)  # warm-up: builds each sparse layer's cached masked weight
    for round_ in range(repeats):
        for subject in subjects:
            _sync(device)
            started = time.perf_counter()
            subject.model(**inputs)
            _sync(device)
            subject.eval_times.append(time.perf_counter() - started)
        log(f"  eval round {round_ + 1}/{repeats}")
    for subject in subjects:
        subject.model.train()


def compressed_export_sizes(subject: Subject) -> dict:
    """Checkpoint sizes of the merged sparse model: save_pretrained vs bitmask + fp16 / fp32 values."""
    model = merge_sparse_layers(subject.model.eval())
    restore_conv1d(model)
    with tempfile.TemporaryDirectory(prefix="pst-bench-export-") as tmp:
        model.save_pretrained(Path(tmp) / "dense")
        sizes = {}
        for dtype in ("float16", "float32"):
            save_compressed(model, Path(tmp) / dtype, value_dtype=dtype)
            sizes[dtype] = checkpoint_sizes(Path(tmp) / "dense", Path(tmp) / dtype)
    return sizes


# -- reporting -----------------------------------------------------------------------
def summarize(subjects: list[Subject]) -> dict:
    results = {}
    for s in subjects:
        step = statistics.median(s.step_times)
        results[s.name] = {
            "trainable_params": sum(p.numel() for p in s.trainable),
            "step_s": round(step, 5),
            "step_s_all": [round(t, 5) for t in s.step_times],
            "forward_backward_s": round(statistics.median(s.backward_times), 5),
            "mask_s": round(statistics.median(s.mask_times), 5),
            "mask_share": round(statistics.median(m / t for m, t in zip(s.mask_times, s.step_times)), 4),
            "eval_s": round(statistics.median(s.eval_times), 5) if s.eval_times else None,
            "eval_s_all": [round(t, 5) for t in s.eval_times],
            **({"calibration": s.calibration} if s.calibration else {}),
            **s.memory,
        }
    return results


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m pst_bench.perf.bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "overrides",
        nargs="*",
        help="Hydra overrides of the run config (default model=bert-base task=sst2), "
        "e.g. model=roberta-base method.r1=16",
    )
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated subset of {METHODS}")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-length", type=int, default=128)
    parser.add_argument("--sparsity", type=float, default=0.9, help="target sparsity of MaP, MvP, PST")
    parser.add_argument("--warmup", type=int, default=2, help="excluded rounds of training steps")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds of training steps")
    parser.add_argument("--eval-repeats", type=int, default=5)
    parser.add_argument("--lora-r", type=int, default=8)
    parser.add_argument(
        "--calibration-samples",
        type=int,
        default=None,
        help="sequences a one-shot method (wanda_oneshot, sparsegpt) calibrates on (default: its calibration_samples)",
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory pass")
    parser.add_argument("--no-export", action="store_true", help="skip the compressed-export sizes")
    parser.add_argument("--out", type=Path, default=Path("results/bench"))
    parser.add_argument("--name", default=None, help="file name stem (default <model>_<device>_b<B>_s<L>)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown or not methods:
        parser.error(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
    if not 0.0 <= args.sparsity < 1.0:
        parser.error(f"--sparsity={args.sparsity} must be in [0, 1)")
    for key in ("batch_size", "seq_length", "repeats", "eval_repeats", "lora_r"):
        if getattr(args, key) < 1:
            parser.error(f"--{key.replace('_', '-')} must be >= 1")
    if args.warmup < 0:
        parser.error("--warmup must be >= 0")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but no CUDA device is visible")
    args.methods = methods
    return args


def run(argv=None) -> dict:
    args = parse_args(argv)
    log = (lambda _msg: None) if args.quiet else (lambda msg: print(msg, flush=True))
    if args.threads:
        torch.set_num_threads(args.threads)
    model_name = next((o.partition("=")[2] for o in args.overrides if o.startswith("model=")), DEFAULT_GROUPS["model"])
    subjects = []
    for name in args.methods:
        log(f"building {name} ({model_name}, random weights)")
        calibration = (args.calibration_samples, args.batch_size, args.seq_length)
        subjects.append(build_subject(name, args.overrides, args.sparsity, args.lora_r, args.device, calibration))
    vocab = subjects[0].model.config.vocab_size
    cfg = subjects[0].cfg  # model and task are the same for every method
    batch = make_batch(cfg, args.batch_size, args.seq_length, vocab, args.device)

    time_training(subjects, batch, args.warmup, args.repeats, args.device, log)
    if not args.no_memory:
        for subject in subjects:
            log(f"  memory pass {subject.name}")
            measure_memory(subject, batch)
    time_eval(subjects, batch, args.eval_repeats, args.device, log)
    results = summarize(subjects)
    export = None
    pst = next((s for s in subjects if s.name == "pst"), None)
    if pst is not None and not args.no_export:
        log("  compressed export sizes (PST)")
        export = compressed_export_sizes(pst)

    report = {
        "command": (
            "python -m pst_bench.perf.bench " + shlex.join(argv if argv is not None else sys.argv[1:])
        ).rstrip(),
        "settings": {
            "model": model_name,
            "task": cfg.task.name,
            "batch_size": args.batch_size,
            "seq_length": args.seq_length,
            "sparsity": args.sparsity,
            "warmup": args.warmup,
            "repeats": args.repeats,
            "eval_repeats": args.eval_repeats,
            "lora_r": args.lora_r,
            "calibration_samples": args.calibration_samples,
            "device": args.device,
            "overrides": args.overrides,
        },
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
        },
        "versions": library_versions(),
        "methods": results,
        "targets": target_checks(results),
        "compressed_export": export,
    }
    name = args.name or f"{model_name}_{args.device}_b{args.batch_size}_s{args.seq_length}"
    write_report(report, markdown_report(report), args.out, name)
    return report


def write_report(report: dict, markdown: str, out: Path, name: str) -> None:
    """A benchmark's JSON and Markdown under ``out`` (atomically), the Markdown printed as well."""
    atomic_write_text(out / f"{name}.json", json.dumps(report, indent=2) + "\n")
    atomic_write_text(out / f"{name}.md", markdown)
    print(markdown)
    print(f"wrote {out / name}.md and .json")


def main(argv=None) -> int:
    run(argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
