"""The accuracy–speed table of structured sparsity: ``results/tables/structured.md`` and ``.csv``.

The question it answers: do PST's learned scores lose less than magnitude when the structure must be
hardware-friendly? For every model, task, budget and sparsity at which a GLUE run with a mask
structure other than the paper's exists (``RunRecord.structure``), the table shows those runs, the
unstructured MaP and PST runs at the same sparsity (the same count of kept weights, give or take a
unit's rounding), and Fine-tune on the same budget, whose median is the retention's denominator.
Cells are chosen by the one selection policy (``selection``); a cell whose runs predict one class (or
one value) is printed as such and enters no difference.

Speed comes from the inference benchmark of the same model shape on this machine
(``results/bench/infer_<model>_cpu.json``, ``make bench-infer``): a units model at sparsity s is the
benchmark's ``slim-s`` model (the removed neurons and heads physically gone); an unstructured model runs
the dense kernel, whose speed does not depend on the sparsity, so it is the benchmark's ``unstructured``
model; other patterns have no CPU fast path here (N:M needs a GPU).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pandas as pd

from ..files import atomic_write_text
from ..formats import slim_name
from ..record import RunRecord
from .labels import label_of
from .selection import Cell, at_paper_ranks, describe_rule, select_cells

SPEED_SHAPE = "32x128"


def _budget(record: RunRecord) -> str:
    return json.dumps({k: v for k, v in record.budget.items() if k not in ("model.name", "task.name")}, sort_keys=True)


def structured_cells(records: list[RunRecord], rule: str, selection_seeds: tuple[int, ...] | None = None) -> dict:
    """{(model, task, budget, sparsity %, label): Cell} for the table's rows and their references."""
    glue = [r for r in records if r.family == "glue" and at_paper_ranks(r)]
    places = {(r.model, r.task, _budget(r), r.sparsity_pct) for r in glue if r.structure}

    def cell_of(record: RunRecord):
        model, task, budget = record.model, record.task, _budget(record)
        if record.kind == "finetune":
            return (
                (model, task, budget, 0.0, "Fine-tune") if any(p[:3] == (model, task, budget) for p in places) else None
            )
        if (model, task, budget, record.sparsity_pct) not in places:
            return None
        label = label_of(record)
        return (
            (model, task, budget, record.sparsity_pct, label) if record.structure or label in ("MaP", "PST") else None
        )

    cells = select_cells(glue, cell_of, rule, selection_seeds)
    return {key: cell for key, cell in cells.items() if cell.runs}  # a held-out cell still pending: no row


def _values(cell: Cell) -> list[float]:
    return [run.dev_value for run in cell.runs if run.dev_value is not None]


def _constant(cell: Cell) -> bool:
    return any(run.constant_predictor for run in cell.runs)


def load_speed(bench_dir: Path, model: str) -> dict | None:
    path = bench_dir / f"infer_{model}_cpu.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _speedup(bench: dict | None, record: RunRecord) -> tuple[float | None, str]:
    """The benchmark's speed-up over dense for this kind of model, and which benchmark model it is."""
    if bench is None:
        return None, "no benchmark"
    structure = record.structure
    if not structure:
        name = "unstructured" if record.kind != "finetune" else "dense"
    elif structure == ("units:ffn+head",):
        name = slim_name(record.sparsity)
    else:
        return None, "no CPU fast path"
    entry = bench["models"].get(name)
    if entry is None:
        return None, f"{name} not benchmarked"
    return entry[SPEED_SHAPE]["speedup_vs_dense"], name


def structured_frame(
    records: list[RunRecord], bench_dir: Path, rule: str, selection_seeds: tuple[int, ...] | None = None
) -> pd.DataFrame:
    cells = structured_cells(records, rule, selection_seeds)
    finetune = {
        key[:3]: statistics.median(_values(c)) for key, c in cells.items() if key[4] == "Fine-tune" and _values(c)
    }
    rows = []
    for key, cell in sorted(cells.items(), key=lambda item: (item[0][:4], item[0][4])):
        model, task, budget, sparsity, label = key
        values, constant = _values(cell), _constant(cell)
        median = statistics.median(values) if values else None
        reference = finetune.get(key[:3])
        speedup, bench_model = _speedup(load_speed(bench_dir, model), cell.runs[0])
        rows.append(
            {
                "model": model,
                "task": task,
                "budget": budget,
                "sparsity": sparsity,
                "method": label,
                "seeds": " ".join(str(run.seed) for run in cell.runs),
                "setting": cell.setting,
                "dev_median": None if median is None else round(100 * median, 2),
                "dev_min": round(100 * min(values), 2) if values else None,
                "dev_max": round(100 * max(values), 2) if values else None,
                "constant": constant,
                "retention": None if constant or not median or not reference else round(100 * median / reference, 1),
                "cpu_speedup": speedup,
                "bench_model": bench_model,
                "runs": " ".join(run.name for run in cell.runs),
            }
        )
    return pd.DataFrame(rows)


def _paired_notes(cells: dict) -> list[str]:
    """Per-seed differences PST (units) − MaP (units) where both cells learned."""
    notes = []
    for key, cell in sorted(cells.items()):
        if not key[4].startswith("PST (units"):
            continue
        other = cells.get((*key[:4], key[4].replace("PST", "MaP", 1)))
        if other is None or _constant(cell) or _constant(other):
            continue
        theirs = {run.seed: run.dev_value for run in other.runs}
        diffs = [100 * (run.dev_value - theirs[run.seed]) for run in cell.runs if theirs.get(run.seed) is not None]
        if diffs:
            text = ", ".join(f"{d:+.2f}" for d in diffs) + f" (mean {statistics.mean(diffs):+.2f})"
            notes.append(f"- {key[1]} at {key[3]:g}%: PST − MaP with units, per seed: {text}")
    return notes


def structured_markdown(frame: pd.DataFrame, cells: dict, runs_dir: str, rule: str) -> str:
    lines = [
        "# Structured sparsity: accuracy and CPU speed",
        "",
        f"From the records in `{runs_dir}` (`make tables`) and `results/bench/infer_<model>_cpu.json` "
        "(`make bench-infer`). Dev value ×100: median [min–max] over seeds; retention = median ÷ Fine-tune's "
        "median on the same budget; speed-up = dense latency ÷ this kind of model's latency at batch 32 × 128 "
        "tokens on the CPU, with the benchmark model it comes from (random weights of the same shape; units: the "
        "slim export at that share, `slim-50%`; unstructured: the dense kernel, whose speed does not depend on the "
        "sparsity, so any figure away from 1.00× there is the machine's noise).",
        "",
    ]
    if frame.empty:
        return "\n".join([*lines, "No structured runs yet (`make sweep SWEEP=structured_cpu`)."]) + "\n"
    lines += [
        "| Model | Task | Sparsity | Method | Seeds | Dev | Retention | CPU speed-up |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in frame.to_dict("records"):
        if row["constant"]:
            dev = f"constant ({row['dev_median']:.2f})"
        elif row["dev_median"] is None:
            dev = "–"
        elif row["dev_min"] == row["dev_max"]:
            dev = f"{row['dev_median']:.2f}"
        else:
            dev = f"{row['dev_median']:.2f} [{row['dev_min']:.2f}–{row['dev_max']:.2f}]"
        retention = "–" if row["retention"] is None else f"{row['retention']:.1f}%"
        speed = (
            f"– ({row['bench_model']})"
            if row["cpu_speedup"] is None
            else f"{row['cpu_speedup']:.2f}× ({row['bench_model']})"
        )
        lines.append(
            f"| {row['model']} | {row['task']} | {row['sparsity']:g}% | {row['method']} | {row['seeds']} | {dev} | "
            f"{retention} | {speed} |"
        )
    notes = _paired_notes(cells)
    if notes:
        lines += ["", "Paired differences (points):", *notes]
    grids = [f"- {k[1]} {k[3]:g}% {k[4]}: {c.setting}" for k, c in sorted(cells.items()) if c.is_grid]
    if grids:
        lines += ["", "Settings chosen from a grid:", *grids]
    lines += ["", describe_rule(rule)]
    return "\n".join(lines) + "\n"


def write_structured(
    records: list[RunRecord],
    out_dir: Path,
    runs_dir: str,
    bench_dir: Path,
    rule: str,
    selection_seeds: tuple[int, ...] | None = None,
) -> None:
    frame = structured_frame(records, bench_dir, rule, selection_seeds)
    cells = structured_cells(records, rule, selection_seeds)
    atomic_write_text(out_dir / "structured.csv", frame.to_csv(index=False, lineterminator="\n"))
    atomic_write_text(out_dir / "structured.md", structured_markdown(frame, cells, runs_dir, rule))
