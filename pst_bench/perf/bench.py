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
from ..sparsity.inject import matching_module_names, merge_sparse_layers, set_sparsity
from ..tasks import runner_class, task_kind
from .memory import PeakTensorMemory

METHODS = ("finetune", "lora", "map", "mvp", "pst")
DEFAULT_GROUPS = {"model": "bert-base", "task": "sst2"}
MIB = 2**20

# The targets the benchmark reports: (name, numerator, denominator, quantity, limit)
TARGETS = (
    ("PST step <= 1.05x dense", "pst", "finetune", "step_s", 1.05),
    ("PST step <= 0.85x MvP", "pst", "mvp", "step_s", 0.85),
    ("PST peak memory <= 0.45x MvP", "pst", "mvp", "peak_bytes", 0.45),
    ("PST eval forward <= 1.05x dense", "pst", "finetune", "eval_s", 1.05),
)


def _floor(results: dict, quantity: str, den: str) -> float | None:
    """The lowest PST/den ratio any PST implementation could reach here, from measured parts.

    step: PST needs every matmul of dense training's forward + backward (the weight
    gradient G = gᵀx feeds all factor gradients), so dense forward+backward / den.
    memory: what PST's step adds on top of its resident state is activations and
    their gradients, which every method has; that alone / den's peak.
    """
    dense, pst, other = results.get("finetune"), results.get("pst"), results.get(den)
    if not (pst and other) or den == "finetune":
        return None
    if quantity == "step_s" and dense:
        return round(dense["forward_backward_s"] / other["step_s"], 3)
    if quantity == "peak_bytes" and "peak_bytes" in pst:
        return round((pst["peak_bytes"] - pst["resident_bytes"]) / other["peak_bytes"], 3)
    return None


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


def build_subject(name: str, overrides: list[str], sparsity: float, lora_rank: int, device) -> Subject:
    cfg = compose_config("finetune" if name == "lora" else name, overrides)
    model = load_model(cfg.model, cfg.task, seed=int(cfg.train.seed))  # same seed: same weights
    layers = prepare_model(model, cfg.model, cfg.method)
    if name == "lora":
        model = _lora(model, cfg, lora_rank)
    set_sparsity(model, sparsity if layers else 0.0)
    model.to(device).train()
    groups = (
        param_groups(model, layers, cfg)
        if name != "lora"
        else [{"params": [p for p in model.parameters() if p.requires_grad]}]
    )
    optimizer = torch.optim.AdamW(groups, lr=1e-6, eps=float(cfg.train.adam_epsilon))
    trainable = [p for p in model.parameters() if p.requires_grad]
    return Subject(name, cfg, model, optimizer, layers, trainable)


# -- measuring -----------------------------------------------------------------------
def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def train_step(subject: Subject, batch: dict, device="cpu") -> float:
    """One training step; returns the seconds of its forward + backward part."""
    started = time.perf_counter()
    subject.model(**batch).loss.backward()
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
            **s.memory,
        }
    return results


def ratio(results: dict, num: str, den: str, quantity: str) -> float | None:
    a, b = results.get(num, {}).get(quantity), results.get(den, {}).get(quantity)
    return round(a / b, 3) if a is not None and b else None


def target_checks(results: dict) -> list[dict]:
    checks = []
    for name, num, den, quantity, limit in TARGETS:
        value = ratio(results, num, den, quantity)
        checks.append(
            {
                "target": name,
                "ratio": value,
                "limit": limit,
                "met": None if value is None else value <= limit,
                "floor": _floor(results, quantity, den),
            }
        )
    return checks


def markdown_report(report: dict) -> str:
    results, s = report["methods"], report["settings"]
    base = "finetune" if "finetune" in results else next(iter(results))
    has_memory = all("peak_bytes" in r for r in results.values())

    def cell(value, fmt):
        return "–" if value is None else format(value, fmt)

    lines = [
        f"# Benchmark: {s['model']} shape, batch {s['batch_size']}, sequence {s['seq_length']}, "
        f"{s['device']}, sparsity {s['sparsity']:.0%}",
        "",
        f"Command: `{report['command']}`  ",
        f"Machine: {report['machine']['processor']}, {report['machine']['torch_threads']} torch threads, "
        f"torch {report['versions'].get('torch')}  ",
        f"Median of {s['repeats']} training steps after {s['warmup']} warm-up rounds, methods interleaved; "
        f"ratios are to {base} (dense fine-tuning) measured in the same run.",
        "",
        "| method | trainable params | step (s) | step ×dense | forward+backward (s) | mask share of step | "
        + ("resident (MiB) | peak memory (MiB) | memory ×dense | " if has_memory else "")
        + "eval forward (s) | eval ×dense |",
        "|---|---:|---:|---:|---:|---:|" + ("---:|---:|---:|" if has_memory else "") + "---:|---:|",
    ]
    for name, r in results.items():
        row = [
            name,
            f"{r['trainable_params']:,}",
            cell(r["step_s"], ".3f"),
            cell(ratio(results, name, base, "step_s"), ".3f"),
            cell(r["forward_backward_s"], ".3f"),
            f"{r['mask_share']:.1%}",
        ]
        if has_memory:
            row += [
                f"{r['resident_bytes'] / MIB:,.0f}",
                f"{r['peak_bytes'] / MIB:,.0f}",
                cell(ratio(results, name, base, "peak_bytes"), ".3f"),
            ]
        row += [cell(r["eval_s"], ".3f"), cell(ratio(results, name, base, "eval_s"), ".3f")]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "| target | measured | met | floor |", "|---|---:|---|---:|"]
    for check in report["targets"]:
        met = "–" if check["met"] is None else ("yes" if check["met"] else "**no**")
        lines.append(f"| {check['target']} | {cell(check['ratio'], '.3f')} | {met} | {cell(check['floor'], '.3f')} |")
    lines += [
        "",
        "floor: the lowest ratio reachable from parts measured in this run. Step vs MvP: dense "
        "forward+backward / MvP step (PST needs all of dense's matmuls, since the weight gradient "
        "gᵀx feeds every factor gradient). Memory vs MvP: (PST peak − PST resident) / MvP peak "
        "(activations and their gradients, which no sparse parametrisation removes).",
    ]
    export = report.get("compressed_export")
    if export:
        lines += [
            "",
            f"Compressed export of the merged PST model at {s['sparsity']:.0%} "
            f"(dense save_pretrained: {export['float16']['dense_bytes'] / MIB:,.1f} MiB):",
            "",
        ]
        for dtype, sizes in export.items():
            lines.append(
                f"- bitmask + {dtype} values: {sizes['compressed_bytes'] / MIB:,.1f} MiB, "
                f"{sizes['ratio']:.3f}× the dense checkpoint"
            )
    return "\n".join(lines) + "\n"


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
        subjects.append(build_subject(name, args.overrides, args.sparsity, args.lora_r, args.device))
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
