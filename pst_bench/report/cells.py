"""A table's cells and their statistics, shared by the tables and the claims.

A cell is one row and column of a table: the runs the selection policy shows there, summarised by
:func:`aggregate` (median, min, max, mean, the 95% Student-t interval of :mod:`pst_bench.report.stats`,
how many runs predict a constant, ...) into a :class:`CellStats`, printed by :func:`ours_text` and
written as one :class:`CellLine` of ``tableN_cells.csv``. The claims read those lines back
(:func:`per_seed_values`, :func:`paired_differences`), so both sides share one reading of a cell.

Numbers are formatted here with fixed decimals and no negative zero, so that a rerun on the same
records writes byte-identical files.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, fields

import pandas as pd

from .stats import mean_interval
from .tuning import DIRTY_MARK

DASH = "-"
RANGE_DASH = "\u2013"  # en dash: a hyphen would be ambiguous next to negative numbers (CoLA)
SHORT_MARK = "\u2020"  # dagger
BASELINE_MARK = "‡"  # the median is at or below the best constant predictor's value on the same dev set
UNCHECKED_MARK = "?"  # a run predates the prediction summary: whether it predicts a constant is unknown
ELSEWHERE_MARK = "*"
COMMAND = "make tables"  # what writes every table file (named in their first lines)

# --------------------------------------------------------------------------- formatting


def fmt_number(value: float | None, decimals: int = 2) -> str:
    """Fixed decimals, no negative zero; a dash for None."""
    if value is None:
        return DASH
    rounded = round(value, decimals) + 0.0  # + 0.0 turns -0.0 into 0.0
    return f"{rounded:.{decimals}f}"


def fmt_ours(median: float, low: float, high: float, runs: int, short: bool) -> str:
    """`78.90`, or `88.10 [87.50–88.90]` (median [min–max]) for several runs; † for short runs."""
    text = fmt_number(median)
    if runs > 1:
        text += f" [{fmt_number(low)}{RANGE_DASH}{fmt_number(high)}]"
    return text + (SHORT_MARK if short else "")


def fmt_paper(value: float | None, elsewhere: bool) -> str:
    """The paper's number as printed; * where the paper quotes prior work."""
    return DASH if value is None else fmt_number(value) + (ELSEWHERE_MARK if elsewhere else "")


def diff_value(ours: float | None, paper: float | None) -> float | None:
    """Ours as printed (2 decimals) minus the paper's number."""
    if ours is None or paper is None:
        return None
    return round(round(ours, 2) - paper, 2)


def fmt_diff(value: float | None) -> str:
    """Signed difference, `+0.55` / `-9.75` (zero is `+0.00`)."""
    if value is None:
        return DASH
    text = fmt_number(value)
    return text if text.startswith("-") else "+" + text


def fmt_points(value: float | None) -> str:
    """A retention difference in percentage points, `+1.8` / `-0.4`."""
    if value is None:
        return DASH
    text = fmt_number(value, 1)
    return text if text.startswith("-") else "+" + text


def fmt_percent(value: float | None) -> str:
    return DASH if value is None else f"{fmt_number(value, 1)}%"


def fmt_range(values: Iterable[float | None]) -> str:
    """Distinct parameter counts of a row (they differ with the task head) as `a` or `a–b`."""
    # pandas turns a record's missing count (None) into NaN
    shown = sorted({fmt_number(v) for v in values if v is not None and not math.isnan(v)}, key=float)
    if not shown:
        return DASH
    return shown[0] if len(shown) == 1 else f"{shown[0]}{RANGE_DASH}{shown[-1]}"


def fmt_sparsity(pct: float) -> str:
    """90.0 -> `90%`."""
    return f"{pct:g}%"


def md_cell(ours: str, paper: str, diff: str) -> str:
    """The Markdown cell: `ours / paper (diff)`."""
    return f"{ours} / {paper}" + ("" if diff == DASH else f" ({diff})")


def six(value) -> str:
    """6 decimals, enough to recompute every printed number; empty for no value."""
    return "" if value is None or pd.isna(value) else f"{round(float(value), 6) + 0.0:.6f}"


# --------------------------------------------------------------------------- statistics


def aggregate(obs: pd.DataFrame, fields: list[str]) -> pd.DataFrame:
    """Median, min, max, run count, seeds and files of every (row, column) cell."""
    obs = obs.sort_values([*fields, "column", "seed", "file"], kind="mergesort")
    grouped = obs.groupby([*fields, "column"], sort=True, dropna=False)
    cells = grouped.agg(
        runs=("value", "size"),
        median=("value", "median"),
        low=("value", "min"),
        high=("value", "max"),
        short=("short", "any"),
        distinct_seeds=("seed", "nunique"),
        settings=("settings", "max"),
        setting=("setting", "first"),
        held_out=("held_out", "first"),
        tuning_seeds=("tuning_seeds", "first"),
        on_edge=("on_edge", "first"),
        mean=("value", "mean"),
        std=("value", "std"),  # sample std (n - 1); NaN for one run
        constant_runs=("constant", lambda flags: sum(1 for flag in flags if flag is True)),
        constant_baseline=("constant_baseline", "max"),
        unchecked_runs=("unchecked", "sum"),
        dirty_runs=("dirty", "sum"),
        params_m=("params_exact", "median"),
    ).reset_index()
    # obs is sorted by seed inside each cell, so seeds, values and files line up
    cells["seeds"] = grouped["seed"].agg(lambda s: ";".join(str(x) for x in s)).to_numpy()
    cells["values"] = grouped["value"].agg(lambda s: ";".join(f"{x:.6f}" for x in s)).to_numpy()
    cells["files"] = grouped["file"].agg(lambda s: ";".join(s)).to_numpy()
    cells["budgets"] = grouped["budget"].agg(lambda s: " | ".join(sorted(set(s)))).to_numpy()
    intervals = [mean_interval(values) for values in grouped["value"].agg(list)]  # Student t, 95%
    cells["ci_low"] = [interval.low for interval in intervals]
    cells["ci_high"] = [interval.high for interval in intervals]
    return cells


@dataclass(frozen=True)
class CellStats:
    """One aggregated cell (a line of :func:`aggregate`): the statistics of the runs shown in it."""

    runs: int
    median: float
    low: float
    high: float
    mean: float
    std: float  # sample std; NaN for one run
    ci_low: float | None  # the mean's 95% Student-t interval; None for one run
    ci_high: float | None
    short: bool  # some run used a subset
    distinct_seeds: int
    seeds: str  # `1;2;3`, in the order of values and files
    values: str  # `81.000000;82.000000;...`
    files: str
    budgets: str  # the runs' training protocols, ` | `-separated
    settings: int  # how many settings the cell held
    setting: str  # the one shown (empty when there was one)
    held_out: bool
    tuning_seeds: str
    on_edge: str
    constant_runs: int  # runs predicting a constant
    constant_baseline: float | None  # x100; NaN or None when unknown
    unchecked_runs: int  # runs whose record predates the prediction summary
    dirty_runs: int  # runs from uncommitted code
    params_m: float | None

    @classmethod
    def of(cls, line: dict) -> CellStats:
        """The cell of one line of :func:`aggregate`'s frame (its row key fields are dropped)."""
        return cls(**{f.name: line[f.name] for f in fields(cls)})


def at_or_below_baseline(cell: CellStats) -> bool:
    """The cell's median does not beat what predicting one class scores on the same dev set."""
    baseline = cell.constant_baseline
    if baseline is None or baseline == "" or pd.isna(baseline):
        return False
    return float(cell.median) <= float(baseline)


def ours_text(cell: CellStats) -> str:
    """Our side of a cell: the median [min–max] · mean ± 95% CI half-width (n), or what the runs' predictions
    were; `§` when a run came from uncommitted code."""
    runs, constant = int(cell.runs), int(cell.constant_runs)
    median, short = float(cell.median), bool(cell.short)
    dirty = DIRTY_MARK if int(cell.dirty_runs or 0) else ""
    if constant == runs:
        return f"constant ({fmt_number(median)})" + (SHORT_MARK if short else "") + dirty
    text = fmt_ours(median, float(cell.low), float(cell.high), runs, short)
    if runs > 1 and not pd.isna(cell.ci_low):
        half = (float(cell.ci_high) - float(cell.ci_low)) / 2
        text += f" · {fmt_number(float(cell.mean))} ± {fmt_number(half)} (n={runs})"
    text += f" ({constant}/{runs} constant)" if constant else ""
    text += BASELINE_MARK if at_or_below_baseline(cell) else ""
    return text + (UNCHECKED_MARK if int(cell.unchecked_runs) else "") + dirty


# --------------------------------------------------------------------------- the cells CSV


@dataclass(frozen=True)
class CellLine:
    """One line of ``tableN_cells.csv``: a cell we have, its numbers as written (6 decimals)."""

    model: str
    paper_model: str  # the paper model it is compared with (itself, or the reference it stands in for)
    method: str
    sparsity: str  # `90%`
    task: str
    r1: object
    r2: object
    column: str
    runs: int
    seeds: str
    median: str
    min: str
    max: str
    values: str
    mean: str
    std: str
    ci_low: str
    ci_high: str
    constant_runs: int
    constant_baseline: str
    unchecked_runs: int
    dirty_runs: int
    paper: str
    diff: str
    retention: str
    paper_retention: str
    short_run: bool
    params_m: str
    budget: str
    files: str
    settings: int
    setting: str
    held_out: bool
    tuning_seeds: str
    on_edge: str


CELL_COLUMNS = [f.name for f in fields(CellLine)]


def cells_frame(lines: Iterable[CellLine]) -> pd.DataFrame:
    """``tableN_cells.csv`` as a frame."""
    return pd.DataFrame([vars(line) for line in lines], columns=CELL_COLUMNS)


def cell_lines(frame: pd.DataFrame) -> list[CellLine]:
    """The lines of a ``tableN_cells.csv`` frame (what the claims and the paired notes read)."""
    return [CellLine(**{name: row[name] for name in CELL_COLUMNS}) for row in frame.to_dict("records")]


# --------------------------------------------------------------------------- reading a cells line


def per_seed_values(cell: CellLine) -> dict[int, float]:
    """{seed: value} of one tableN_cells.csv line."""
    return {int(seed): float(value) for seed, value in zip(cell.seeds.split(";"), cell.values.split(";"))}


def paired_differences(first: CellLine, second: CellLine) -> dict[int, float]:
    """{seed: first − second} over the seeds both cells have (a paired comparison: same seed, same data order)."""
    a, b = per_seed_values(first), per_seed_values(second)
    return {seed: a[seed] - b[seed] for seed in sorted(set(a) & set(b))}
