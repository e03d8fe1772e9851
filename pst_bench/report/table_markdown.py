"""Writing a built table: ``tableN.md`` (the table, its notes and the Missing list), ``tableN.csv`` (the
same strings, one column per side of a cell), ``tableN_cells.csv`` and ``tableN_missing.csv``."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from ..files import atomic_write_text
from .cells import (
    BASELINE_MARK,
    COMMAND,
    ELSEWHERE_MARK,
    SHORT_MARK,
    cell_lines,
    fmt_diff,
    fmt_number,
    md_cell,
    paired_differences,
)
from .claim_rules import CLAIM6_PAIRS, CLAIM7_PAIRS
from .labels import BEYOND_PAPER, SOFT_MVP
from .selection import describe_rule, describe_selection_seeds, tolerance_text
from .table_build import NO_PAPER_MODEL, Built
from .table_missing import missing_lines
from .tuning import dirty_note

PAIRED = (("PST", "MaP"), ("PST", "MvP"))
PAIRED_BEYOND = CLAIM6_PAIRS + CLAIM7_PAIRS  # Table 2: the baselines' pairs of claims 6-7, where both are there


def to_csv_text(frame: pd.DataFrame) -> str:
    """CSV with \\n line ends, whatever the platform."""
    return frame.to_csv(index=False, lineterminator="\n")


def wide_frame(built: Built) -> pd.DataFrame:
    """tableN.csv: key columns, then `<col> ours`, `<col> paper`, `<col> diff` per value column."""
    header = list(built.key_headers)
    for column in built.value_columns:
        header += [f"{column} ours", f"{column} paper", f"{column} diff"]
    lines = []
    for row in built.rows:
        line = [row.keys[h] for h in built.key_headers]
        for column in built.value_columns:
            line += list(row.values[column])
        lines.append(line)
    return pd.DataFrame(lines, columns=header, dtype=object)


def markdown(built: Built, runs_dir: str) -> str:
    """tableN.md: header line, the table, notes and the missing paper cells."""
    spec = built.spec
    out = [
        f"# Table {spec.number}: {spec.title}",
        "",
        f"Built by `{COMMAND}` (`python -m pst_bench.report.tables`) from {len(built.files)} results "
        f"record{'s' if len(built.files) != 1 else ''} in `{runs_dir}`.",
        "",
        "Cell: ours / paper (diff = ours − paper). Several runs: median [min–max] · mean ± 95% CI (n); `-`: no value.",
    ]
    out.append("")
    if built.rows:
        headers = [*built.key_headers, *built.value_columns]
        out.append("| " + " | ".join(headers) + " |")
        out.append("|" + "|".join("---" for _ in headers) + "|")
        for row in built.rows:
            cells = [row.keys[h] for h in built.key_headers] + [md_cell(*row.values[c]) for c in built.value_columns]
            out.append("| " + " | ".join(cells) + " |")
    else:
        out.append("No finished run for this table yet.")
    out += ["", "## Notes", ""]
    out += [f"- {note}" for note in _notes(built)]
    out += ["", "## Missing", ""]
    out += missing_lines(built.spec, built.scope, built.missing)
    return "\n".join(out) + "\n"


def _baselines_text(cells: pd.DataFrame) -> str:
    """`MRPC 81.22` for every column whose cells know their constant-predictor baseline."""
    known = cells[cells["constant_baseline"].astype(str) != ""] if len(cells) else cells
    values = known.groupby("column", sort=False)["constant_baseline"].first() if len(known) else {}
    return ", ".join(f"{column} {fmt_number(float(value))}" for column, value in dict(values).items())


def _notes(built: Built) -> list[str]:
    """The table's fixed notes plus those that depend on the runs."""
    notes = list(built.spec.notes)
    if built.stand_ins:
        notes.append(
            f"The paper did not run {', '.join(built.stand_ins)} (marked `(stand-in)` for the paper's "
            f"{built.spec.reference}): a raw difference from the paper's numbers would mostly measure the "
            "model and the budget, so these rows compare retention instead. A sparse cell reads "
            "`ours · ret R / ret P (R − P in points)`, retention being the value ÷ "
            "the same model's Fine-tune value on the same task and training protocol (ours), or the "
            f"paper's value ÷ its {built.spec.reference} Fine-tune value (the paper's). Their Fine-tune "
            "rows show the paper's number for orientation only, and their Avg. is not compared."
        )
    notes.append(
        "Several runs: median [min–max] · mean ± the half-width of its 95% confidence interval (Student t over "
        "the n runs shown; `ci_low`, `ci_high` and the sample `std` in the cells CSV). `constant (v)`: every run "
        "of the cell "
        "predicts one class on the dev set (≥ 99% of it) or one value (prediction std < 5% of the "
        "labels'), so v says nothing about the method: no difference, retention or Avg. is computed from it; "
        "`(k/n constant)`: k of the n runs did (`RunRecord.constant_predictor`, from the prediction "
        "summary each record stores). A trailing `?`: some run's record predates that summary, so whether "
        "it predicts a constant is unknown (`unchecked_runs` in the cells CSV)."
    )
    baselines = _baselines_text(built.cells)
    if baselines:
        notes.append(
            f"`{BASELINE_MARK}`: the cell's median is at or below the best value a constant predictor (one class "
            "for every dev example) reaches on the same dev set, so by the task's metric the cell is no "
            "better than predicting one class, although its runs predict several (runs record the baseline "
            "since it was added; older records of the same task and dev set share it). "
            f"Constant predictors: {baselines}."
        )
    if built.has_short:
        notes.append(
            f"{SHORT_MARK}: at least one run of the cell used a subset (`train.max_train_examples`, "
            "`train.max_eval_examples`, `train.max_steps` or `nlg.max_decode_examples`)."
        )
    quoted = any(row.values[c][1].endswith(ELSEWHERE_MARK) for row in built.rows for c in built.value_columns)
    if quoted or built.missing["published_elsewhere"].any():
        notes.append(f"`{ELSEWHERE_MARK}` after a paper number: the paper quotes it from prior work.")
    notes += beyond_paper_notes(built)
    notes += dirty_note(built.dirty_runs)
    notes.append(describe_rule(built.rule))
    notes.append(describe_selection_seeds(built.selection_seeds))
    if built.selection:
        notes.append("Selection: " + "; ".join(built.selection) + ".")
    notes += list(built.tuning)
    if built.repeated_seeds:
        notes.append(
            "Cells where several records share a seed (different settings, pooled): "
            + "; ".join(built.repeated_seeds)
            + "."
        )
    paired = paired_notes(built)
    if paired:
        notes.append(
            "Paired per-seed differences (same seed; constant predictors included): " + "; ".join(paired) + "."
        )
    notes.append(
        f"Per-cell numbers (runs, seeds, per-seed values, median, min, max, mean, std, 95% CI, retention, record "
        "files, held-out and tuning seeds, grid edge): "
        f"`table{built.spec.number}_cells.csv`."
    )
    return notes


def beyond_paper_notes(built: Built) -> list[str]:
    """Table 2: the rows of baselines the paper never ran, and the runs that reached no cell's sparsity."""
    shown = [label for label in BEYOND_PAPER if any(row.keys.get("Method") == label for row in built.rows)]
    notes = []
    if shown:
        notes.append(
            f'Beyond the paper: {", ".join(shown)} (issue 24; `docs/methods.md`, "Baselines beyond the paper") '
            f"are baselines the paper never ran, marked `{NO_PAPER_MODEL}` in the Paper model column. They have no "
            "paper number to compare with: their paper side and difference are `-` (a stand-in's cell still shows "
            "its own retention), and they enter no Missing list and none of the paper's claims 1-5; claims 6-7 "
            "(`claims.md`) compare gradual and one-shot Wanda and SparseGPT with PST and MvP."
        )
    if SOFT_MVP in shown or built.left_out:
        notes.append(
            f"{SOFT_MVP}'s sparsity is an outcome of its penalty: a run sits in the row of its nominal sparsity only "
            f"when its achieved sparsity lies within {tolerance_text()} of it (`RunRecord.cell_sparsity`)"
            + (
                "; off target, in no cell and compared with nothing: " + "; ".join(built.left_out) + "."
                if built.left_out
                else "."
            )
        )
    return notes


def paired_notes(built: Built) -> list[str]:
    """Table 2/3: PST − MaP and PST − MvP seed by seed, for every model, sparsity and column with both."""
    if built.spec.number not in (2, 3) or not len(built.cells):
        return []
    by_key = {(c.model, c.sparsity, c.column, c.method): c for c in cell_lines(built.cells)}
    lines = []
    for (model, sparsity, column, method), cell in sorted(by_key.items()):
        for first, second in PAIRED + (PAIRED_BEYOND if built.spec.number == 2 else ()):
            other = by_key.get((model, sparsity, column, second))
            if method != first or other is None:
                continue
            diffs = paired_differences(cell, other)
            if not diffs:
                continue
            shown = ", ".join(f"{seed}: {fmt_diff(value)}" for seed, value in diffs.items())
            mean = math.fsum(diffs.values()) / len(diffs)
            lines.append(f"{model} {sparsity} {column} {first} − {second}: {shown} (mean {fmt_diff(mean)})")
    return lines


def write_table(built: Built, out_dir: Path, runs_dir: str) -> list[Path]:
    """Write the four files of one table; returns their paths."""
    number = built.spec.number
    contents = {
        f"table{number}.md": markdown(built, runs_dir),
        f"table{number}.csv": to_csv_text(wide_frame(built)),
        f"table{number}_cells.csv": to_csv_text(built.cells),
        f"table{number}_missing.csv": to_csv_text(built.missing),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in contents.items():
        path = out_dir / name
        atomic_write_text(path, text)
        written.append(path)
    return written
