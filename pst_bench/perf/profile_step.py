"""`make profile`: where one real training step's time goes, per task, and what length grouping saves.

    python -m pst_bench.perf.profile_step [--tasks sst2 stsb mrpc] [--methods map pst] [--steps 12] [Hydra overrides]

For each task and method, the real run path (the bundled MiniLM-L6, the task's seeded training
subset of ``--examples``, the task runner's collator and loss, AdamW's groups) is timed step by step:
collation, forward (mask selection included: a sparse layer recomputes its mask at the first forward
after its parameters changed), backward, clipping with the optimizer step. Steps on random batches
(``train.group_by_length=false``) and on length-grouped ones (``true``) alternate, so a slow phase of
the machine touches both; the ratio of their medians is the speed-up. The same is done for one dev-set
evaluation (examples in file order, i.e. a random order of lengths, against longest first, which every
run now uses). Beside it:

- the padding: tokens the batches carry under dynamic padding over the real tokens, for a whole epoch;
- the achieved FLOP/s of forward + backward (FLOPs counted by ``torch.utils.flop_counter`` on real
  batches) against this machine's fp32 matmul peak measured in the same process;
- an operator breakdown of three grouped steps by ``torch.profiler`` (self CPU time by category).

Writes ``results/perf/profile.md`` and ``profile.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

from ..data.sampling import EpochPermutation, LengthGroupedPermutation, padded_tokens
from ..files import atomic_write_text
from ..models.loading import fit_tokenizer_to_model, load_model, load_tokenizer
from ..models.prepare import prepare_model
from ..run.optim import make_optimizer
from ..schema.validate import validate_config
from ..sparsity.inject import set_sparsity
from ..tasks import make_task_runner

DEFAULT_TASKS = ("sst2", "stsb", "mrpc")
DEFAULT_METHODS = ("map", "pst")
PHASES = ("collate", "forward", "backward", "optimizer")
#: operator name (without ``aten::``) -> category of the breakdown: the first pattern that matches wins
CATEGORIES = (
    ("mask selection", r"topk|kthvalue|sort|scatter.*|gt|ge|lt|abs"),
    ("attention", r"_?softmax.*|.*scaled_dot_product.*|bmm|baddbmm"),
    ("matmul", r"mm|addmm|matmul|linear"),
    ("optimizer", r".*adamw.*|_foreach_.*|sqrt|addcdiv_?|addcmul_?|lerp_?"),
    ("norm, activation, dropout", r".*layer_norm.*|gelu.*|tanh.*|.*dropout.*|bernoulli_?"),
)


def compose(task: str, method: str, examples: int, extra: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    overrides = [
        "model=minilm-l6",
        f"task={task}",
        f"method={method}",
        "scale=cpu",
        f"train.max_train_examples={examples}",
        "train.seed=0",
        *extra,
    ]
    with initialize_config_module(config_module="pst_bench.conf", version_base="1.3"):
        cfg = hydra_compose(config_name="config", overrides=overrides)
    validate_config(cfg)
    return cfg


def matmul_peak_gflops(size: int = 1024, repeats: int = 20) -> float:
    """fp32 GFLOP/s of a square matmul on this process's threads (best of ``repeats``)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def _category(op: str) -> str:
    name = op.lower().removeprefix("aten::")
    return next((category for category, pattern in CATEGORIES if re.fullmatch(pattern, name)), "other")


class Subject:
    """One task and method, built as a run builds it."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.runner = make_task_runner(cfg)
        tokenizer = load_tokenizer(cfg.model)
        self.model = load_model(cfg.model, cfg.task, int(cfg.train.seed))
        fit_tokenizer_to_model(tokenizer, self.model)
        self.layers = prepare_model(self.model, cfg.model, cfg.method)
        self.train_set, self.eval_sets = self.runner.build_datasets(tokenizer)
        self.collate = self.runner.collator(tokenizer)
        self.runner.init_head(self.model, self.train_set)
        self.optimizer = make_optimizer(self.model, self.layers, cfg)
        set_sparsity(self.model, float(cfg.method.sparsity))
        self.lengths = [len(ids) for ids in self.train_set["input_ids"]]
        batch = int(cfg.train.batch_size)
        seed = int(cfg.train.seed)
        self.orders = {
            "random": list(EpochPermutation(len(self.lengths), seed)),
            "grouped": list(LengthGroupedPermutation(self.lengths, batch, seed)),
        }
        self.model.train()

    def batches(self, order: str) -> list[list[int]]:
        size = int(self.cfg.train.batch_size)
        indices = self.orders[order]
        return [indices[start : start + size] for start in range(0, len(indices), size)]

    def sampled_batches(self, order: str, count: int) -> list[list[int]]:
        """``count`` batches spread evenly over the epoch: grouped batches run from long to short inside a
        mega-batch, so the first few would say nothing about the epoch's mean."""
        batches = self.batches(order)
        count = min(count, len(batches))
        return [batches[round(i * (len(batches) - 1) / max(1, count - 1))] for i in range(count)]

    def step(self, indices: list[int]) -> dict[str, float]:
        """One training step as the loop takes it, timed by phase."""
        times = {}
        start = time.perf_counter()
        batch = self.collate([self.train_set[i] for i in indices])
        times["collate"] = time.perf_counter() - start
        start = time.perf_counter()
        loss = self.runner.loss(self.model, batch)
        times["forward"] = time.perf_counter() - start
        start = time.perf_counter()
        loss.backward()
        times["backward"] = time.perf_counter() - start
        start = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), float(self.cfg.train.max_grad_norm))
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        times["optimizer"] = time.perf_counter() - start
        times["tokens"] = int(batch["input_ids"].numel())
        return times

    def flops_per_token(self, indices: list[int]) -> float:
        """Forward + backward FLOPs per (padded) token, counted on a real batch."""
        batch = self.collate([self.train_set[i] for i in indices])
        with FlopCounterMode(display=False) as counter:
            self.runner.loss(self.model, batch).backward()
        self.optimizer.zero_grad(set_to_none=True)
        return counter.get_total_flops() / batch["input_ids"].numel()

    def evaluate_s(self, shuffled: bool) -> float:
        split, dataset = next(iter(self.eval_sets.items()))
        if shuffled:  # a random order of lengths, as the dev file's own order is
            dataset = dataset.shuffle(seed=0)
        loader = DataLoader(dataset, batch_size=int(self.cfg.train.eval_batch_size), collate_fn=self.collate)

        class _Plain:  # what runner.evaluate needs of an accelerator in one process
            def gather_for_metrics(self, values):
                return values

        start = time.perf_counter()
        self.runner.evaluate(self.model, {split: loader}, _Plain())
        return time.perf_counter() - start

    def operator_breakdown(self, steps: int = 3) -> tuple[dict[str, float], dict[str, float]]:
        """Self CPU seconds per step by operator category, and of the ten costliest operators, over ``steps``
        grouped steps spread over the epoch."""
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for indices in self.sampled_batches("grouped", steps):
                self.step(indices)
        totals: dict[str, float] = {}
        events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
        for event in events:
            category = _category(event.key)
            totals[category] = totals.get(category, 0.0) + event.self_cpu_time_total / 1e6 / steps
        top = {f"{e.key} [{_category(e.key)}]": e.self_cpu_time_total / 1e6 / steps for e in events[:10]}
        return dict(sorted(totals.items(), key=lambda kv: -kv[1])), top


def optimizer_comparison(subject: Subject, repeats: int = 6) -> dict:
    """AdamW's step over the subject's trainable tensors, per-tensor default against the fused kernel
    (alternating, on the same gradients), and the largest weight difference after the timed steps."""
    params = [p for group in subject.optimizer.param_groups for p in group["params"]]
    copies = {name: [p.detach().clone().requires_grad_(True) for p in params] for name in ("default", "fused")}
    generator = torch.Generator().manual_seed(0)
    grads = [torch.randn(p.shape, generator=generator) for p in params]
    optimizers = {name: torch.optim.AdamW(tensors, lr=1e-4, fused=name == "fused") for name, tensors in copies.items()}
    times: dict[str, list[float]] = {"default": [], "fused": []}
    for repeat in range(repeats):
        for name in ("default", "fused") if repeat % 2 else ("fused", "default"):
            for tensor, grad in zip(copies[name], grads):
                tensor.grad = grad.clone()
            start = time.perf_counter()
            optimizers[name].step()
            times[name].append(time.perf_counter() - start)
    difference = max(float((a - b).abs().max()) for a, b in zip(copies["default"], copies["fused"]))
    default, fused = statistics.median(times["default"]), statistics.median(times["fused"])
    return {
        "tensors": len(params),
        "parameters": sum(p.numel() for p in params),
        "default_s": round(default, 4),
        "fused_s": round(fused, 4),
        "speedup": round(default / fused, 2),
        "max_abs_difference": difference,
    }


def profile_subject(cfg, steps: int, peak: float) -> dict:
    subject = Subject(cfg)
    real = sum(subject.lengths)
    batch = int(cfg.train.batch_size)
    padding = {order: padded_tokens(subject.lengths, idx, batch) / real for order, idx in subject.orders.items()}
    sampled = {order: subject.sampled_batches(order, steps) for order in subject.orders}
    subject.step(sampled["random"][0])  # warm-up (allocator, first mask)
    timed: dict[str, list[dict]] = {"random": [], "grouped": []}
    for number in range(len(sampled["random"])):
        for order in ("random", "grouped") if number % 2 else ("grouped", "random"):
            timed[order].append(subject.step(sampled[order][number]))
    per_token = subject.flops_per_token(sampled["grouped"][len(sampled["grouped"]) // 2])
    result = {"task": cfg.task.name, "method": cfg.method.name, "examples": len(subject.lengths)}
    result["padding_ratio"] = {order: round(value, 3) for order, value in padding.items()}
    for order, steps_timed in timed.items():
        # means, not medians: an epoch's time is the sum of its steps
        phases = {phase: statistics.fmean(t[phase] for t in steps_timed) for phase in PHASES}
        compute = [t["forward"] + t["backward"] for t in steps_timed]
        tokens = [t["tokens"] for t in steps_timed]
        result[order] = {
            "step_s": round(sum(phases.values()), 4),
            "phases_s": {phase: round(value, 4) for phase, value in phases.items()},
            "tokens_per_step": statistics.fmean(tokens),
            "achieved_gflops": round(per_token * sum(tokens) / sum(compute) / 1e9, 1),
        }
    result["step_speedup"] = round(result["random"]["step_s"] / result["grouped"]["step_s"], 2)
    # an epoch: batches x step time; the grouped order's batches are fewer tokens each
    result["peak_gflops"] = round(peak, 1)
    eval_random = min(subject.evaluate_s(shuffled=True) for _ in range(2))
    eval_sorted = min(subject.evaluate_s(shuffled=False) for _ in range(2))
    result["eval_s"] = {"random order": round(eval_random, 2), "longest first": round(eval_sorted, 2)}
    result["eval_speedup"] = round(eval_random / eval_sorted, 2)
    result["adamw"] = optimizer_comparison(subject)
    categories, top = subject.operator_breakdown()
    result["breakdown_s"] = {k: round(v, 4) for k, v in categories.items()}
    result["top_ops_s"] = {k: round(v, 4) for k, v in top.items()}
    return result


def markdown(results: list[dict], command: str, peak: float) -> str:
    lines = [
        "# Where a training step's time goes (MiniLM-L6, CPU)",
        "",
        f"Made by `{command}` on {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} thread(s), torch {torch.__version__}. "
        f"fp32 matmul peak measured in the same process: {peak:.1f} GFLOP/s.",
        "",
        "| Task | Method | Padding random | Padding grouped | Step random (s) | Step grouped (s) | Speed-up | "
        "GFLOP/s random | GFLOP/s grouped | Eval random (s) | Eval longest-first (s) | Eval speed-up |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['task']} | {r['method']} | {r['padding_ratio']['random']:.2f}x | "
            f"{r['padding_ratio']['grouped']:.2f}x | {r['random']['step_s']:.3f} | {r['grouped']['step_s']:.3f} | "
            f"{r['step_speedup']:.2f}x | {r['random']['achieved_gflops']:.1f} | "
            f"{r['grouped']['achieved_gflops']:.1f} | {r['eval_s']['random order']:.2f} | "
            f"{r['eval_s']['longest first']:.2f} | {r['eval_speedup']:.2f}x |"
        )
    lines += [
        "",
        "Padding: tokens carried under dynamic padding over real tokens, one epoch of batches of 32. Step: the "
        "mean over batches spread evenly across an epoch (an epoch's time is their sum), random and grouped "
        "steps alternating.",
        "",
    ]
    lines += [
        "## Phases of a grouped step (mean seconds over the sampled steps)",
        "",
        "| Task | Method | " + " | ".join(PHASES) + " |",
    ]
    lines.append("|---|---|" + "---|" * len(PHASES))
    for r in results:
        phases = r["grouped"]["phases_s"]
        lines.append(f"| {r['task']} | {r['method']} | " + " | ".join(f"{phases[p]:.4f}" for p in PHASES) + " |")
    lines += [
        "## AdamW's step over the trainable tensors: per-tensor default against the fused kernel",
        "",
        "| Task | Method | Parameters | Default (s) | Fused (s) | Speed-up | Largest weight difference |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        a = r["adamw"]
        lines.append(
            f"| {r['task']} | {r['method']} | {a['parameters']:,} | {a['default_s']:.4f} | {a['fused_s']:.4f} | "
            f"{a['speedup']:.2f}x | {a['max_abs_difference']:.1e} |"
        )
    lines += ["", "## Operators of a grouped step (self CPU seconds per step, torch.profiler)", ""]
    for r in results:
        parts = ", ".join(f"{k} {v:.3f}" for k, v in r["breakdown_s"].items())
        top = ", ".join(f"`{k}` {v:.3f}" for k, v in r["top_ops_s"].items())
        lines.append(f"- {r['task']} {r['method']}: {parts}. Costliest operators: {top}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pst_bench.perf.profile_step", description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=list(DEFAULT_TASKS))
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS))
    parser.add_argument("--steps", type=int, default=12, help="timed steps per ordering, spread evenly over an epoch")
    parser.add_argument("--examples", type=int, default=2000, help="training subset size (train.max_train_examples)")
    parser.add_argument("--out", type=Path, default=Path("results/perf"))
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. train.batch_size=16")
    args = parser.parse_args(argv)
    if not os.environ.get("PST_DATA_DIR"):
        print("profile: set PST_DATA_DIR to the glue_data folder (make profile sets ../shared/data)", file=sys.stderr)
        return 2
    peak = matmul_peak_gflops()
    results = []
    for task in args.tasks:
        for method in args.methods:
            cfg = compose(task, method, args.examples, args.overrides)
            result = profile_subject(cfg, args.steps, peak)
            print(json.dumps(result), flush=True)
            results.append(result)
    command = (
        "make profile"
        if argv is None and len(sys.argv) == 1
        else "python -m pst_bench.perf.profile_step " + (" ".join(sys.argv[1:] if argv is None else argv))
    )
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "profile.json", json.dumps({"peak_gflops": peak, "results": results}, indent=2))
    atomic_write_text(args.out / "profile.md", markdown(results, command, peak))
    print(markdown(results, command, peak))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
