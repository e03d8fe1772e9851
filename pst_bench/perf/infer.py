"""`make bench-infer`: inference latency, throughput and peak memory of sparse models, side by side.

    python -m pst_bench.perf.infer [--unstructured 0.9 --units 0.5 ...] [Hydra overrides, e.g. model=roberta-base]
    python -m pst_bench.perf.infer --export mine=exports/<run id>.slim   # exported models as well

What is compared (every model built from the same config with random weights, since speed does not
depend on their values, and merged to plain layers as an export would be):

- ``dense``: the model as it is;
- ``unstructured``: magnitude masks at ``--unstructured`` (the paper's 90%), dense kernel: the zeros are
  multiplied like any other weight;
- ``unstructured-csr``: the same weights with every sparsified matrix in PyTorch's CSR layout
  (``torch.sparse.mm``);
- ``slim-<share>``: magnitude masks with ``method.pattern=units`` at each share of ``--units`` (FFN
  neurons and heads), the removed units physically gone (``pst_bench.export.slim``);
- ``2:4``: 2:4 masks as semi-structured sparse tensors (``pst_bench.export.semi_structured``), on a GPU
  that has the kernels only; elsewhere the report says why it was skipped;
- ``--export LABEL=DIR``: exported models, loaded with ``load_slim`` (plain exports load unchanged).

Latency is the median over ``--repeats`` rounds after ``--warmup`` rounds; every round runs every model
once per input shape, interleaved, so a slow phase of the machine touches all of them alike.
Throughput is sequences per second at that latency. Peak memory is measured in a separate pass
(``pst_bench.perf.memory``: live tensor bytes, weights included). Results: Markdown and JSON under
results/bench/, ratios to dense from the same run.
"""

from __future__ import annotations

import argparse
import platform
import shlex
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..export.semi_structured import semi_structured_support, to_semi_structured
from ..export.slim import load_slim, slim_model
from ..formats import slim_name
from ..models.loading import load_model
from ..models.prepare import prepare_model
from ..record import library_versions
from ..sparsity.conv1d import restore_conv1d
from ..sparsity.inject import merge_sparse_layers, set_sparsity
from ..sparsity.modules import replace_module
from .bench import DEFAULT_GROUPS, compose_config, write_report
from .memory import PeakTensorMemory

MIB = 2**20
SHAPES = ((1, 128), (32, 128))


class CsrLinear(nn.Module):
    """A linear layer whose weight is kept in CSR form and multiplied with ``torch.sparse.mm``."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        with warnings.catch_warnings():  # "CSR support is in beta": the benchmark measures it as it is
            warnings.simplefilter("ignore", UserWarning)
            csr = linear.weight.detach().to_sparse_csr()
        # the parts as plain buffers: state_dict, .to() and the memory counter handle them
        self.register_buffer("crow", csr.crow_indices())
        self.register_buffer("col", csr.col_indices())
        self.register_buffer("values", csr.values())
        self.shape = tuple(linear.weight.shape)
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone())

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        weight = torch.sparse_csr_tensor(self.crow, self.col, self.values, self.shape, check_invariants=False)
        flat = inputs.reshape(-1, self.shape[1])
        out = torch.sparse.mm(weight, flat.t()).t()
        out = out if self.bias is None else out + self.bias
        return out.reshape(*inputs.shape[:-1], self.shape[0])


@dataclass
class Subject:
    """One model under test and its measurements."""

    name: str
    model: nn.Module
    note: str = ""
    times: dict = field(default_factory=dict)  # "BxL" -> [seconds per round]
    peak_bytes: int | None = None

    @property
    def weight_bytes(self) -> int:
        tensors = [*self.model.parameters(), *self.model.buffers()]
        return sum(t.numel() * t.element_size() for t in tensors)


def _sparse_model(overrides: list[str], structure: list[str], sparsity: float):
    """A random-weight model with magnitude masks of this structure, merged to plain layers."""
    cfg = compose_config("map", [*overrides, f"method.sparsity={sparsity}", *structure])
    model = load_model(cfg.model, cfg.task, seed=int(cfg.train.seed))
    layers = prepare_model(model, cfg.model, cfg.method)
    set_sparsity(model, sparsity)
    merge_sparse_layers(model)
    return cfg, model, list(layers)


def build_subjects(args, log) -> tuple[list[Subject], list[dict]]:
    """The models to compare, and the ones skipped with the reason."""
    cfg = compose_config("finetune", args.overrides)
    subjects = [Subject("dense", load_model(cfg.model, cfg.task, seed=int(cfg.train.seed)))]
    skipped = []
    if args.unstructured:
        log(f"building unstructured {args.unstructured:.0%}")
        _, model, names = _sparse_model(args.overrides, [], args.unstructured)
        subjects.append(Subject("unstructured", model, "dense kernel"))
        _, csr_model, _ = _sparse_model(args.overrides, [], args.unstructured)
        for name in names:
            replace_module(csr_model, name, CsrLinear(csr_model.get_submodule(name)))
        subjects.append(Subject("unstructured-csr", csr_model, "torch.sparse.mm, CSR"))
    for share in args.units:
        log(f"building slim ({share:.0%} of FFN neurons and heads removed)")
        unit_cfg, model, _ = _sparse_model(args.overrides, ["method.pattern=units"], share)
        restore_conv1d(model)
        summary = slim_model(model, unit_cfg.model.units)
        heads = sorted(set(summary["heads_per_layer"].values()))
        note = f"FFN width {summary['ffn_width']}, heads per layer {'/'.join(map(str, heads))}"
        subjects.append(Subject(slim_name(share), model, note))
    if args.two_four:
        available, reason = semi_structured_support(args.device)
        if available:
            _, model, _ = _sparse_model(args.overrides, ["method.pattern=2:4"], 0.5)
            converted = to_semi_structured(model, args.device)
            subjects.append(Subject("2:4", model, f"semi-structured, {len(converted)} matrices, float16"))
        else:
            skipped.append({"name": "2:4", "reason": reason})
    for label, path in args.exports:
        subjects.append(Subject(label, load_slim(path), f"export {path}"))
    for subject in subjects:
        if subject.name != "2:4":
            subject.model.to(args.device)
        subject.model.eval()
    return subjects, skipped


def _inputs(batch: int, length: int, vocab: int, device) -> dict:
    ids = torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(0)).to(device)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


@torch.no_grad()
def time_rounds(subjects: list[Subject], inputs: dict, warmup: int, repeats: int, device, log) -> None:
    """Interleaved rounds: every model once per shape per round; warm-up rounds are not kept."""
    for round_index in range(warmup + repeats):
        for shape, batch in inputs.items():
            for subject in subjects:
                _sync(device)
                started = time.perf_counter()
                subject.model(**batch)
                _sync(device)
                if round_index >= warmup:
                    subject.times.setdefault(shape, []).append(time.perf_counter() - started)
        log(f"  round {round_index + 1}/{warmup + repeats}")


@torch.no_grad()
def measure_memory(subject: Subject, batch: dict, device) -> None:
    """Peak bytes of live tensors (weights included) during one forward pass."""
    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        subject.model(**batch)
        subject.peak_bytes = torch.cuda.max_memory_allocated(device)
        return
    with PeakTensorMemory() as memory:
        memory.register(subject.model)
        subject.model(**batch)
    subject.peak_bytes = memory.peak_bytes


def summarize(subjects: list[Subject]) -> dict:
    dense = subjects[0]
    results = {}
    for subject in subjects:
        entry = {
            "note": subject.note,
            "weight_bytes": subject.weight_bytes,
            "weight_mib": round(subject.weight_bytes / MIB, 1),
        }
        for shape, times in subject.times.items():
            latency = statistics.median(times)
            batch = int(shape.split("x")[0])
            entry[shape] = {
                "latency_s": round(latency, 5),
                "sequences_per_s": round(batch / latency, 2),
                "speedup_vs_dense": round(statistics.median(dense.times[shape]) / latency, 3),
            }
        if subject.peak_bytes is not None:
            entry["peak_mib"] = round(subject.peak_bytes / MIB, 1)
            entry["peak_vs_dense"] = round(subject.peak_bytes / dense.peak_bytes, 3) if dense.peak_bytes else None
        results[subject.name] = entry
    return results


def markdown_report(report: dict) -> str:
    settings, shapes = report["settings"], [f"{b}x{n}" for b, n in SHAPES]
    lines = [
        f"# Inference benchmark: {settings['model']} shape, random weights, {settings['device']}",
        "",
        f"Command: `{report['command']}`  ",
        f"Machine: {report['machine']['processor']}, {report['machine']['torch_threads']} torch threads, "
        f"torch {report['versions'].get('torch')}  ",
        f"Median of {settings['repeats']} rounds after {settings['warmup']} warm-up rounds, models interleaved; "
        "speed-up = dense latency / model latency, measured in the same run; throughput in sequences per second.",
        "",
        "| model | how | weights (MiB) | "
        + " | ".join(f"latency {s} (s) | seq/s {s} | speed-up {s}" for s in shapes)
        + " | peak memory (MiB) | memory ×dense |",
        "|---|---|---:|" + "---:|---:|---:|" * len(shapes) + "---:|---:|",
    ]
    for name, entry in report["models"].items():
        cells = []
        for shape in shapes:
            timing = entry.get(shape, {})
            cells += [
                f"{timing.get('latency_s', float('nan')):.4f}",
                f"{timing.get('sequences_per_s', float('nan')):,.1f}",
                f"{timing.get('speedup_vs_dense', float('nan')):.2f}×",
            ]
        peak = entry.get("peak_mib")
        ratio = entry.get("peak_vs_dense")
        lines.append(
            f"| {name} | {entry['note']} | {entry['weight_mib']:,.1f} | {' | '.join(cells)} | "
            f"{'–' if peak is None else f'{peak:,.1f}'} | {'–' if ratio is None else f'{ratio:.3f}'} |"
        )
    for skip in report["skipped"]:
        lines += ["", f"Skipped {skip['name']}: {skip['reason']}."]
    return "\n".join(lines) + "\n"


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m pst_bench.perf.infer", description=__doc__.split("\n")[0])
    parser.add_argument("overrides", nargs="*", help="Hydra overrides (default model=bert-base task=sst2)")
    parser.add_argument("--unstructured", type=float, default=0.9, help="unstructured sparsity (0: leave out)")
    parser.add_argument(
        "--units", default="0.5", help="shares of FFN neurons and heads removed, comma-separated (0: no slim model)"
    )
    parser.add_argument("--no-two-four", dest="two_four", action="store_false", help="leave out the 2:4 model")
    parser.add_argument("--export", action="append", default=[], metavar="LABEL=DIR", help="an exported model")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory pass")
    parser.add_argument("--out", type=Path, default=Path("results/bench"))
    parser.add_argument("--name", default=None, help="file stem (default infer_<model>_<device>)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    try:
        args.units = [float(share) for share in str(args.units).split(",") if float(share) > 0]
    except ValueError:
        parser.error(f"--units={args.units!r}: give shares such as 0.3,0.5")
    for share in (args.unstructured, *args.units):
        if not 0.0 <= share < 1.0:
            parser.error(f"--unstructured / --units: {share} must be in [0, 1)")
    if args.repeats < 1 or args.warmup < 0:
        parser.error("--repeats must be >= 1 and --warmup >= 0")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda but no CUDA device is visible")
    args.exports = []
    for item in args.export:
        label, _, path = item.partition("=")
        if not path or not Path(path).is_dir():
            parser.error(f"--export {item!r}: give LABEL=DIR with an exported model folder")
        args.exports.append((label, path))
    return args


def run(argv=None) -> dict:
    args = parse_args(argv)
    log = (lambda _msg: None) if args.quiet else (lambda msg: print(msg, flush=True))
    if args.threads:
        torch.set_num_threads(args.threads)
    model_name = next((o.partition("=")[2] for o in args.overrides if o.startswith("model=")), DEFAULT_GROUPS["model"])
    subjects, skipped = build_subjects(args, log)
    vocab = subjects[0].model.config.vocab_size
    inputs = {f"{b}x{n}": _inputs(b, n, vocab, args.device) for b, n in SHAPES}
    time_rounds(subjects, inputs, args.warmup, args.repeats, args.device, log)
    if not args.no_memory:
        for subject in subjects:
            measure_memory(subject, inputs[f"{SHAPES[-1][0]}x{SHAPES[-1][1]}"], args.device)
    report = {
        "command": (
            "python -m pst_bench.perf.infer " + shlex.join(argv if argv is not None else sys.argv[1:])
        ).rstrip(),
        "settings": {
            "model": model_name,
            "device": args.device,
            "unstructured": args.unstructured,
            "units": args.units,
            "warmup": args.warmup,
            "repeats": args.repeats,
            "overrides": args.overrides,
        },
        "machine": {"processor": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads()},
        "versions": library_versions(),
        "models": summarize(subjects),
        "skipped": skipped,
    }
    write_report(report, markdown_report(report), args.out, args.name or f"infer_{model_name}_{args.device}")
    return report


def main(argv=None) -> int:
    run(argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
