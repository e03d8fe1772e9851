"""The paper's Tables 2-5 from the results records of finished runs (``make tables``).

    python -m pst_bench.report.tables [--runs results/runs] [--out results/tables] [--paper PATH]
                               [--grid best-dev|pool] [--selection-seeds SEED ...]

Every ``*.json`` file under ``--runs`` (recursively) is read as a results record
through :mod:`pst_bench.record`. Files that are not JSON, not a record, miss a
key the tables need or are not ``status: finished`` are skipped with a warning
that names the file (and the missing keys); other files (``.npz``, ``.txt``,
``.jsonl``) are never looked at. Which records a cell shows is decided by the
one selection policy of every report (:mod:`pst_bench.report.selection`,
``--grid best-dev|pool``; ``--selection-seeds``: the seeds that only tune, default 0), named in
each table's notes with the tuning budget, grid edges and pending held-out cells
(:mod:`pst_bench.report.tuning`). The paper's numbers come from the packaged
``pst_bench/paper/paper_results.csv`` (or ``--paper``).

``--out`` also receives ``claims.md`` (the paper's five qualitative claims checked on these
records, :mod:`pst_bench.report.claims`) and ``mask_distance.md`` / ``.csv`` (per-seed distances
between the methods' final masks, :mod:`pst_bench.report.masks`).

For each table N in 2..5, ``--out`` receives:

- ``tableN.md``: the table laid out like the paper's, one cell ``ours / paper (diff)``,
  then Notes and a "Missing" list (the paper's cells, for the models we ran, with no run).
- ``tableN.csv``: the same table, each value column split into ``<col> ours``,
  ``<col> paper`` and ``<col> diff`` (the same strings as the Markdown).
- ``tableN_cells.csv``: one line per cell we have, numeric: runs, seeds, median, min,
  max, mean, std, ``ci_low``/``ci_high`` (95%), paper, diff and the record files, for plotting
  and auditing; ``settings`` is how many settings the cell held and ``setting`` the one shown
  (empty when there was one); ``dirty_runs``, ``held_out``, ``tuning_seeds`` and ``on_edge``.
- ``tableN_missing.csv``: one line per missing paper cell, with the command that fills it.

Cell strings: ``78.90`` for one run, ``88.10 [87.50–88.90] · 88.20 ± 0.95 (n=3)`` (median
[min–max] · mean ± the 95% Student-t half-width, :mod:`pst_bench.report.stats`) for several;
``§`` marks a cell with a run from uncommitted code (``git.dirty``); ``†`` a cell with a short
run (a train/eval/decode subset or ``max_steps``); ``-`` where there is no value; a paper value the paper copied from
prior work ends in ``*`` as in the paper; diff = ours (as printed) − paper.
Everything is sorted and formatted with fixed decimals, so a rerun on the same
records writes byte-identical files.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

from ..files import atomic_write_text
from ..record import RecordSkipped, RunRecord, load_records
from .labels import FULL_PST, MAIN_LABELS, label_of, method_of_label
from .masks import MaskPair, mask_pairs
from .selection import (
    DEFAULT_GRID_RULE,
    GRID_RULES,
    SELECTION_SEEDS,
    Cell,
    at_paper_ranks,
    describe_rule,
    describe_selection_seeds,
    select_cells,
)
from .stats import mean_interval
from .tuning import DIRTY_MARK, Tuned, budget_notes, dirty_note, edge_notes, pending_notes

DASH = "-"
RANGE_DASH = "\u2013"  # en dash: a hyphen would be ambiguous next to negative numbers (CoLA)
SHORT_MARK = "\u2020"  # dagger
BASELINE_MARK = "‡"  # the median is at or below the best constant predictor's value on the same dev set
UNCHECKED_MARK = "?"  # a run predates the prediction summary: whether it predicts a constant is unknown
ELSEWHERE_MARK = "*"
COMMAND = "make tables"

# GLUE config name -> (the paper's column, the metric of that column), in the paper's column order.
GLUE = {
    "mnli": ("MNLI", "accuracy"),
    "qqp": ("QQP", "f1"),
    "qnli": ("QNLI", "accuracy"),
    "sst2": ("SST-2", "accuracy"),
    "cola": ("CoLA", "matthews"),
    "stsb": ("STS-B", "pearson"),
    "mrpc": ("MRPC", "f1"),
    "rte": ("RTE", "accuracy"),
}
GLUE_COLUMNS = tuple(column for column, _ in GLUE.values())
TASK_OF_COLUMN = {column: task for task, (column, _) in GLUE.items()}
TABLE5_COLUMNS = ("QNLI", "SST-2", "CoLA", "STS-B", "MRPC", "RTE")
TABLE4_TASKS = ("mrpc", "sst2")

# NLG: the paper's column names and order (Table 3 prints E2E as BLEU, MET, NIST).
NLG_TASKS = {"e2e": "E2E", "dart": "DART", "webnlg": "WebNLG"}
NLG_METRIC_NAMES = {"bleu": "BLEU", "meteor": "MET", "nist": "NIST", "ter": "TER"}
TABLE3_CELLS = (
    ("e2e", "bleu"),
    ("e2e", "meteor"),
    ("e2e", "nist"),
    ("dart", "bleu"),
    ("dart", "meteor"),
    ("dart", "ter"),
    ("webnlg", "bleu"),
    ("webnlg", "meteor"),
    ("webnlg", "ter"),
)

# The paper's Table 2/3 PST rows use r1 = r2 = 8 (the CSV's r1, r2 columns, selection.PAPER_RANKS);
# its Table 5 PST[mag+ab+rc] row repeats those numbers, and Table 4's (8, 8) cell too.


class _Skip(Exception):
    """Internal: why one record cannot be used."""


# --------------------------------------------------------------------------- reading records


def _finite(value, what: str) -> float:
    """A metric as a float; NaN or infinity (e.g. Pearson of constant predictions) is unusable."""
    number = float(value)
    if not math.isfinite(number):
        raise _Skip(f"{what} is {value!r}")
    return number


def glue_values(record: RunRecord) -> dict[str, float]:
    """{paper column: value x 100} of a GLUE record.

    The value is the paper's metric of the task on its main dev set (MNLI: matched) at
    the record's chosen epoch (``RunRecord.chosen_epoch``: the authors' selection rule).
    """
    column, metric = GLUE[record.task]
    split = "validation_matched" if record.task == "mnli" else record.main_split
    raw = record.raw_dev_metric(metric, split)
    if raw is None:
        raise _Skip(f"no {metric} on {split}")
    value = _finite(raw, f"{metric} on {split}")
    return {column: 100.0 * value}


def _nlg_raw(metrics: dict, metric: str):
    """One test metric of a record on the paper's scale, or None when the record lacks it."""
    if metric == "ter":  # the paper prints TER as a fraction
        if metrics.get("ter_fraction") is not None:
            return metrics["ter_fraction"]
        return None if metrics.get("ter") is None else metrics["ter"] / 100.0
    return metrics.get(metric)


def nlg_values(record: RunRecord, warn: Callable[[str], None]) -> dict[str, float]:
    """{paper column: value} of an NLG record's test metrics, scaled as the paper prints them.

    BLEU 0-100 and NIST raw; METEOR x 100 for E2E and a fraction for DART/WebNLG; TER as
    a fraction. A metric the record lacks (e.g. METEOR without WordNet) is just absent.
    """
    task = record.task
    metrics = record.test_metrics
    if metrics is None:
        raise _Skip("missing key(s): generation.test.metrics")
    values = {}
    for cell_task, metric in TABLE3_CELLS:
        raw = _nlg_raw(metrics, metric) if cell_task == task else None
        if raw is None:
            continue
        try:
            value = _finite(raw, metric)
        except _Skip as why:
            warn(f"{why}: cell left out")
            continue
        scale = 100.0 if (task, metric) == ("e2e", "meteor") else 1.0
        values[f"{NLG_TASKS[task]} {NLG_METRIC_NAMES[metric]}"] = value * scale
    if not values:
        raise _Skip("no usable test metric in generation.test.metrics")
    return values


def parse_record(record: RunRecord, warn: Callable[[str], None]) -> dict:
    """One results record as a flat run: keys, ranks, parameter counts and values by paper column."""
    task = record.task
    if task in GLUE:
        values = glue_values(record)
    elif task in NLG_TASKS:
        values = nlg_values(record, warn)
    else:
        raise _Skip(f"unknown task {task!r}")
    r1, r2 = record.ranks
    params = record.params
    exact = params.get("trainable_total")
    rule = params.get("paper_rule_m")
    return {
        "record": record,
        "file": record.name,
        "family": record.family,
        "task": task,
        "model": record.model,
        "method": record.method,
        "label": label_of(record),
        "sparsity": record.sparsity_pct,
        "seed": record.seed,
        "r1": r1,
        "r2": r2,
        "short": record.is_short,
        "dirty": record.dirty,
        "constant": record.constant_predictor,
        # the best constant predictor's value on the same dev set (x100, as the values), when known
        "constant_baseline": None if record.constant_baseline is None else 100.0 * record.constant_baseline,
        "eval_size": (record.data.get("eval_examples") or {}).get(record.main_split),
        # a GLUE record older than the prediction summary cannot say (generation has no such check)
        "unchecked": record.family == "glue" and record.constant_predictor is None,
        "budget": budget_text(record),
        "params_exact": None if exact is None else float(exact) / 1e6,
        "params_rule": None if rule is None else float(rule),
        "values": values,
    }


def budget_text(record: RunRecord) -> str:
    """The run's training protocol (data, epochs, steps, batch) as one comparable string."""
    return ", ".join(f"{key}={value}" for key, value in record.budget.items() if key not in ("model.name", "task.name"))


def load_runs(runs_dir: Path) -> list[dict]:
    """Every usable record under runs_dir, in path order; each unusable .json warns (RecordSkipped)."""
    runs = []
    for record in load_records(runs_dir):

        def warn(reason: str, path=record.path) -> None:
            warnings.warn(f"{path}: {reason}", RecordSkipped, stacklevel=3)

        try:
            runs.append(parse_record(record, warn))
        except _Skip as why:
            warn(f"skipped, {why}")
    return _share_baselines(runs)


def _share_baselines(runs: list[dict]) -> list[dict]:
    """Give every run the constant-predictor baseline that any run of its task and dev set size stored.

    The baseline is a property of the dev labels alone, so a record made before it was stored gets it
    from a newer record of the same task and dev set.
    """
    known = {
        (run["task"], run["eval_size"]): run["constant_baseline"]
        for run in runs
        if run["constant_baseline"] is not None
    }
    for run in runs:
        if run["constant_baseline"] is None:
            run["constant_baseline"] = known.get((run["task"], run["eval_size"]))
    return runs


# --------------------------------------------------------------------------- the paper's numbers


def default_paper_csv() -> Path:
    """The paper's numbers shipped inside the package."""
    return Path(str(resources.files("pst_bench.paper").joinpath("paper_results.csv")))


def _rank(value) -> int | None:
    """An r1/r2 cell of the paper CSV (float or NaN) as int or None."""
    return None if value is None or pd.isna(value) else int(value)


def load_paper(path: Path) -> list[dict]:
    """The paper CSV as cells with the same column names and key types as our runs."""
    frame = pd.read_csv(path)
    cells = []
    for row in frame.to_dict("records"):
        table, task, metric = int(row["table"]), str(row["task"]), str(row["metric"])
        cell = {
            "table": table,
            "model": str(row["model"]),
            "label": str(row["method"]),
            "elsewhere": bool(row["published_elsewhere"]),
            "sparsity": float(row["sparsity"]),
            "params": None if pd.isna(row["trainable_params_m"]) else float(row["trainable_params_m"]),
            "r1": _rank(row["r1"]),
            "r2": _rank(row["r2"]),
            "value": float(row["value"]),
            "task": task,
            "column": task,
        }
        if table == 3:
            cell["column"] = f"{NLG_TASKS[task]} {NLG_METRIC_NAMES[metric]}"
        elif table == 4:
            cell["column"] = f"r1={cell['r1']}"
        cells.append(cell)
    return cells


# --------------------------------------------------------------------------- table definitions


@dataclass(frozen=True)
class Spec:
    """What distinguishes one table: its rows, columns, paper matching and which runs enter."""

    number: int
    title: str
    family: str  # "glue" or "nlg": the records whose models are in scope
    reference: str  # the paper model that stands in for models the paper did not run
    keys: tuple[str, ...]  # row key fields after "model", in display order
    order: tuple[str, ...]  # the same fields in sort order (the paper groups by sparsity)
    match: tuple[str, ...]  # fields (besides model and column) that pick the paper's cell
    columns: tuple[str, ...]  # value columns in the paper's order
    average: bool  # an "Avg." column over `columns` (as the paper prints)
    params: bool  # trainable-parameter columns
    notes: tuple[str, ...]
    select: Callable[[dict], list[dict]]  # run -> observations (row key fields, column, value)
    # run fields that, with the row and the task, make one cell of the selection policy (Table 4: r1,
    # its column: each rank pair is its own cell, not a grid to choose from)
    cell_fields: tuple[str, ...] = ()


def _observations(run: dict, label: str, **key) -> list[dict]:
    """One observation per value column of a run, with the row key fields given."""
    return [
        {"label": label, **key, "column": column, "value": value} for column, value in sorted(run["values"].items())
    ]


def _main_label(run: dict) -> str | None:
    """Table 2/3 label: PST[mag+ab+rc] is the paper's PST; ablation variants are Table 5 only."""
    label = "PST" if run["label"] == FULL_PST else run["label"]
    if label not in MAIN_LABELS:
        return None
    if not at_paper_ranks(run["record"]):
        return None  # other ranks are Table 4 cells, not the paper's PST row
    return label


def select_table2(run: dict) -> list[dict]:
    """GLUE runs of Fine-tune, MaP, MvP and PST (r1 = r2 = 8), at any sparsity."""
    label = _main_label(run) if run["family"] == "glue" else None
    return [] if label is None else _observations(run, label, sparsity=run["sparsity"])


def select_table3(run: dict) -> list[dict]:
    """NLG runs of Fine-tune, MaP, MvP and PST (r1 = r2 = 8), at any sparsity."""
    label = _main_label(run) if run["family"] == "nlg" else None
    return [] if label is None else _observations(run, label, sparsity=run["sparsity"])


def select_table4(run: dict) -> list[dict]:
    """Full PST at 90% on MRPC and SST-2: one cell per (r2, r1)."""
    if (
        run["family"] != "glue"
        or run["label"] not in ("PST", FULL_PST)
        or run["sparsity"] != 90.0
        or run["task"] not in TABLE4_TASKS
    ):
        return []
    ((column, value),) = run["values"].items()
    return [{"label": "PST", "task": column, "r2": run["r2"], "column": f"r1={run['r1']}", "value": value}]


def select_table5(run: dict) -> list[dict]:
    """The seven PST[...] variants at 90% on GLUE; the full one (pst) only at r1 = r2 = 8.

    The paper set each variant's ranks so that all train the same number of parameters,
    without printing them: our ranks are part of the row, with the parameter counts.
    """
    label = FULL_PST if run["label"] == "PST" else run["label"]
    if run["family"] != "glue" or not label.startswith("PST[") or run["sparsity"] != 90.0:
        return []
    if run["record"].structure:
        return []  # the paper's ablation is unstructured; a structured variant is another experiment
    if label == FULL_PST and not at_paper_ranks(run["record"]):
        return []
    return _observations(run, label, r1=run["r1"], r2=run["r2"])


SPECS = (
    Spec(
        2,
        "GLUE dev results (the paper's Table 2)",
        "glue",
        "bert-base",
        ("label", "sparsity"),
        ("sparsity", "label"),
        ("label", "sparsity"),
        GLUE_COLUMNS,
        True,
        True,
        (
            "Values ×100: the task's metric (MNLI matched accuracy, QQP and MRPC F1, CoLA Matthews, "
            "STS-B Pearson, else accuracy) at the best epoch of the final 30% window "
            "(`best_in_final_window`), else the final epoch.",
            "PST rows are runs at r1 = r2 = 8 (the paper's setting); other ranks are in Table 4, "
            "the PST[...] variants in Table 5.",
            "Avg. is the mean of the eight task medians, only when all eight are present.",
            "Params exact: every trainable tensor (`params.trainable_total`); paper rule: "
            "`params.paper_rule_m`; paper: the paper's printed count.",
        ),
        select_table2,
    ),
    Spec(
        3,
        "GPT-2 on E2E, DART and WebNLG (the paper's Table 3)",
        "nlg",
        "gpt2-medium",
        ("label", "sparsity"),
        ("sparsity", "label"),
        ("label", "sparsity"),
        tuple(f"{NLG_TASKS[t]} {NLG_METRIC_NAMES[m]}" for t, m in TABLE3_CELLS),
        False,
        True,
        (
            "Test-set metrics (`generation.test.metrics`), scaled as the paper prints them: BLEU 0-100, "
            "NIST raw, E2E METEOR ×100, DART/WebNLG METEOR and TER as fractions (`ter_fraction`). "
            "Lower TER is better.",
            "Our metrics are sacrebleu/nltk, not the official scripts: METEOR (nltk) in particular is "
            "not the paper's METEOR 1.5, so its differences are only indicative.",
            "PST rows are runs at r1 = r2 = 8 (the paper's setting).",
        ),
        select_table3,
    ),
    Spec(
        4,
        "PST ranks r1 × r2 at 90% sparsity (the paper's Table 4)",
        "glue",
        "bert-base",
        ("task", "r2"),
        ("task", "r2"),
        ("task", "r2"),
        ("r1=4", "r1=8", "r1=16"),
        False,
        False,
        (
            "Rows r2 (rank of U·V), columns r1 (rank of A·B), from `config.method.r1/r2` of `pst` "
            "(= `pst_mag_ab_rc`) runs at 90%; MRPC F1 and SST-2 accuracy ×100 as in Table 2.",
        ),
        select_table4,
        cell_fields=("r1",),
    ),
    Spec(
        5,
        "Importance-score ablation at 90% sparsity (the paper's Table 5)",
        "glue",
        "bert-base",
        ("label", "r1", "r2"),
        ("label", "r1", "r2"),
        ("label",),
        TABLE5_COLUMNS,
        True,
        True,
        (
            "PST[mag+ab+rc] is `pst` (or `pst_mag_ab_rc`) at r1 = r2 = 8, the paper's Table 2 row; "
            "the other variants are listed at every rank setting we ran (the paper chose ranks that "
            "equalise trainable parameters but does not print them).",
            "Values ×100 as in Table 2; Avg. is the mean of the six task medians, only when all six are present.",
        ),
        select_table5,
    ),
)


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


# --------------------------------------------------------------------------- building a table


class Orders:
    """Sort keys: paper models and labels in the paper's order, then the rest alphabetically."""

    def __init__(self, paper: list[dict]):
        self.models = list(dict.fromkeys(cell["model"] for cell in paper))
        self.labels = list(dict.fromkeys(cell["label"] for cell in paper))
        # Table 4 prints (a) MRPC before (b) SST-2; other tables follow the GLUE column order.
        self.tasks = list(dict.fromkeys([*(c["task"] for c in paper if c["table"] == 4), *GLUE_COLUMNS]))

    @staticmethod
    def _position(sequence: list[str], value: str) -> tuple:
        return (sequence.index(value), "") if value in sequence else (len(sequence), value)

    def row_key(self, fields: tuple[str, ...], row: dict) -> tuple:
        """A sortable tuple for a row dict holding `model` and the spec's key fields."""
        key = [self._position(self.models, row["model"])]
        for field in fields:
            value = row[field]
            if field == "label":
                key.append(self._position(self.labels, value))
            elif field == "task":
                key.append(self._position(self.tasks, value))
            else:
                key.append((value,))
        return tuple(key)

    def columns(self, spec: Spec, present: Iterable[str]) -> list[str]:
        """The spec's columns, then any other column we have (e.g. a rank the paper did not try)."""
        extra = set(present) - set(spec.columns)
        if spec.number == 4:
            extra_sorted = sorted(extra, key=lambda c: int(c.split("=")[1]))
        else:
            extra_sorted = sorted(extra, key=lambda c: self._position(list(GLUE_COLUMNS), c))
        return list(spec.columns) + extra_sorted


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


@dataclass
class Built:
    """A finished table: its rows and columns as strings, plus the long and missing lists."""

    spec: Spec
    files: list[str]  # the records it was built from
    scope: list[str]  # models of the table's task family that we ran
    key_headers: list[str]
    value_columns: list[str]
    rows: list[dict]  # display strings: keys, params, and per column (ours, paper, diff)
    cells: pd.DataFrame  # tableN_cells.csv
    missing: pd.DataFrame  # tableN_missing.csv
    stand_ins: list[str]  # models compared against the reference model
    repeated_seeds: list[str]  # cells with several records on one seed (the pool rule only)
    has_short: bool
    rule: str  # the grid rule of the selection policy
    selection: list[str]  # what the policy did: grids resolved, duplicates left out
    selection_seeds: tuple[int, ...] = SELECTION_SEEDS  # tune only, never shown (held-out cells)
    tuning: tuple[str, ...] = ()  # tuning budget, grid edges, pending held-out cells (report.tuning)
    dirty_runs: int = 0  # runs shown that came from uncommitted code


KEY_HEADERS = {"label": "Method", "sparsity": "Sparsity", "task": "Task", "r1": "r1", "r2": "r2"}
PARAM_HEADERS = ["Params exact (M)", "Params paper rule (M)", "Params paper (M)"]
OBS_COLUMNS = [
    "label",
    "column",
    "value",
    "seed",
    "file",
    "short",
    "dirty",
    "constant",
    "constant_baseline",
    "unchecked",
    "budget",
    "params_exact",
    "params_rule",
    "setting",
    "settings",
    "held_out",
    "tuning_seeds",
    "on_edge",
]
MISSING_COLUMNS = [
    "table",
    "model",
    "paper_model",
    "method",
    "sparsity",
    "task",
    "r1",
    "r2",
    "column",
    "paper",
    "published_elsewhere",
    "command",
]
CELL_COLUMNS = [
    "model",
    "paper_model",
    "method",
    "sparsity",
    "task",
    "r1",
    "r2",
    "column",
    "runs",
    "seeds",
    "median",
    "min",
    "max",
    "values",
    "mean",
    "std",
    "ci_low",
    "ci_high",
    "constant_runs",
    "constant_baseline",
    "unchecked_runs",
    "dirty_runs",
    "paper",
    "diff",
    "retention",
    "paper_retention",
    "short_run",
    "params_m",
    "budget",
    "files",
    "settings",
    "setting",
    "held_out",
    "tuning_seeds",
    "on_edge",
]


def _key_text(field: str, value) -> str:
    """A row key as displayed."""
    return fmt_sparsity(value) if field == "sparsity" else str(value)


def _selected(
    spec: Spec, runs: list[dict], rule: str, selection_seeds: tuple[int, ...] = SELECTION_SEEDS
) -> tuple[list[tuple[dict, list[dict]]], list[Cell]]:
    """(run, its observations) for the runs the selection policy keeps, and every cell of the table.

    A cell of the policy is one row of the table and one task (a run's columns all come from
    its one task), so a grid or a duplicate is resolved per task, as the paper does.
    """
    entering = [(run, spec.select(run)) for run in runs]
    entering = [(run, obs) for run, obs in entering if obs]
    cell_of_file = {
        run["file"]: (run["model"], *(obs[0][f] for f in spec.keys), run["task"], *(run[f] for f in spec.cell_fields))
        for run, obs in entering
    }
    cells = select_cells(
        [run["record"] for run, _ in entering], lambda rec: cell_of_file[rec.name], rule, selection_seeds
    )
    kept = {rec.name: cell for cell in cells.values() for rec in cell.runs}
    chosen = [(run, obs) for run, obs in entering if run["file"] in kept]
    return [(run, [{**ob, "cell": kept[run["file"]]} for ob in obs]) for run, obs in chosen], sorted(
        cells.values(), key=lambda cell: tuple(str(part) for part in cell.key)
    )


def observations(
    spec: Spec, runs: list[dict], rule: str = DEFAULT_GRID_RULE, selection_seeds: tuple[int, ...] = SELECTION_SEEDS
) -> tuple[pd.DataFrame, list[Cell]]:
    """One line per (selected run, value column) that enters the table, with the row key fields."""
    fields = ["model", *spec.keys]
    lines = []
    chosen, cells = _selected(spec, runs, rule, selection_seeds)
    for run, obs in chosen:
        for ob in obs:
            cell = ob.pop("cell")
            lines.append(
                {
                    "model": run["model"],
                    **ob,
                    "seed": run["seed"],
                    "file": run["file"],
                    "short": run["short"],
                    "dirty": run["dirty"],
                    "constant": run["constant"],
                    "constant_baseline": run["constant_baseline"],
                    "unchecked": run["unchecked"],
                    "budget": run["budget"],
                    "params_exact": run["params_exact"],
                    "params_rule": run["params_rule"],
                    "setting": cell.setting,
                    "settings": len(cell.candidates),
                    "held_out": cell.held_out,
                    "tuning_seeds": ";".join(str(seed) for seed in cell.tuning_seeds),
                    "on_edge": cell.on_edge or "",
                }
            )
    return pd.DataFrame(lines, columns=list(dict.fromkeys([*fields, *OBS_COLUMNS]))), cells


class PaperIndex:
    """The paper's cells of one table, looked up by (paper model, match fields, column)."""

    def __init__(self, spec: Spec, paper: list[dict]):
        self.spec = spec
        self.cells = [cell for cell in paper if cell["table"] == spec.number]
        self.models = {cell["model"] for cell in self.cells}
        self._by_key = {self._key(cell["model"], cell, cell["column"]): cell for cell in self.cells}

    def _key(self, model: str, fields: dict, column: str) -> tuple:
        return (model, *(fields[f] for f in self.spec.match), column)

    def model_for(self, model: str) -> str:
        """The paper model a run's model is compared against (itself, or the stand-in reference)."""
        return model if model in self.models else self.spec.reference

    def cell(self, row: dict, column: str) -> dict | None:
        """The paper's cell for one of our rows (a dict holding model and the key fields)."""
        return self._by_key.get(self._key(self.model_for(row["model"]), row, column))

    def params(self, row: dict) -> list[float]:
        """The paper's printed trainable-parameter count of the row (at most one value)."""
        model = self.model_for(row["model"])
        found = [
            c["params"]
            for c in self.cells
            if c["model"] == model and c["params"] is not None and all(c[f] == row[f] for f in self.spec.match)
        ]
        return found[:1]


class Retention:
    """What a stand-in model's cells are compared by: value ÷ Fine-tune's, ours beside the paper's.

    Ours: the cell's median over the median of our Fine-tune cell (same model, task and column,
    chosen by the same selection policy), only when both cells' runs share one training protocol
    (``RunRecord.budget``). The paper's: its number for the cell over its Fine-tune number for the
    reference model (Table 2 for GLUE, Table 3 for generation).
    """

    def __init__(
        self, runs: list[dict], paper: list[dict], rule: str, selection_seeds: tuple[int, ...] = SELECTION_SEEDS
    ):
        dense = [run for run in runs if run["label"] == "Fine-tune"]
        cells = select_cells([run["record"] for run in dense], lambda rec: (rec.model, rec.task), rule, selection_seeds)
        by_name = {run["file"]: run for run in dense}
        self.ours: dict[tuple[str, str], tuple[float, set[str]]] = {}
        for (model, _task), cell in cells.items():
            chosen = [by_name[rec.name] for rec in cell.runs]
            budgets = {run["budget"] for run in chosen}
            for column in sorted({c for run in chosen for c in run["values"]}):
                values = [run["values"][column] for run in chosen if column in run["values"]]
                self.ours[model, column] = (statistics.median(values), budgets)
        self.paper = {
            (cell["model"], cell["column"]): cell["value"]
            for cell in paper
            if cell["label"] == "Fine-tune" and cell["table"] in (2, 3)
        }

    def ours_of(self, model: str, column: str, budgets: set[str]) -> tuple[float | None, str]:
        """(our retention ×100 or None, why None) for a median of a cell with the given budgets."""
        found = self.ours.get((model, column))
        if found is None:
            return None, "no Fine-tune run"
        dense, dense_budgets = found
        if budgets != dense_budgets or len(budgets) != 1:
            return None, "Fine-tune trained on another protocol"
        return dense, ""

    def paper_of(self, reference: str, column: str, value: float | None) -> float | None:
        dense = self.paper.get((reference, column))
        return None if value is None or not dense else 100.0 * value / dense


def _row_params(obs: pd.DataFrame, fields: list[str], row: dict) -> pd.DataFrame:
    """The observations of one row (for its parameter counts)."""
    mask = pd.Series(True, index=obs.index)
    for field in fields:
        mask &= obs[field] == row[field]
    return obs[mask]


def build_table(
    spec: Spec,
    runs: list[dict],
    paper: list[dict],
    orders: Orders,
    rule: str = DEFAULT_GRID_RULE,
    selection_seeds: tuple[int, ...] = SELECTION_SEEDS,
) -> Built:
    """Select, aggregate the runs that enter `spec`, compare them with the paper and list what is missing."""
    index = PaperIndex(spec, paper)
    retention = Retention(runs, paper, rule, selection_seeds)
    fields = ["model", *spec.keys]
    obs, policy_cells = observations(spec, runs, rule, selection_seeds)
    cells = aggregate(obs, fields) if len(obs) else pd.DataFrame(columns=[*fields, "column"])
    by_cell = {tuple(c[f] for f in [*fields, "column"]): c for c in cells.to_dict("records")}
    # a held-out cell whose winner has no held-out run yet keeps its row (its value shows `-`)
    pending = _pending_observations(spec, runs, policy_cells)
    row_keys = {tuple(r) for r in obs[fields].itertuples(index=False, name=None)}
    row_keys |= {tuple(ob[f] for f in fields) for ob in pending}
    row_dicts = sorted((dict(zip(fields, key)) for key in row_keys), key=lambda row: orders.row_key(spec.order, row))
    value_columns = orders.columns(spec, obs["column"].unique())
    rows, long_rows, repeated = [], [], []
    for row in row_dicts:
        shown = _row_header(spec, index, obs, fields, row)
        medians = {}
        for column in value_columns:
            cell, ref = by_cell.get((*(row[f] for f in fields), column)), index.cell(row, column)
            shown[column], median, long_row = _value_cell(spec, index, retention, row, column, cell, ref)
            if cell is None:
                continue
            if median is not None:  # a constant predictor's value is no result: no Avg. over it
                medians[column] = median
            long_rows.append(long_row)
            if cell["distinct_seeds"] < cell["runs"]:
                keys = " ".join(_key_text(f, row[f]) for f in spec.keys)
                repeated.append(f"{row['model']} {keys} {column}: seeds {cell['seeds']} ({cell['files']})")
        if spec.average:
            stand_in = index.model_for(row["model"]) != row["model"]
            shown["Avg."] = _average_cell(spec, medians, index.cell(row, "Avg."), stand_in)
        rows.append(shown)
    key_headers = ["Model", "Paper model", *(KEY_HEADERS[f] for f in spec.keys)]
    key_headers += PARAM_HEADERS if spec.params else []
    scope = missing_scope(spec, runs, obs, index, set(orders.models))
    scope = sorted(scope, key=lambda m: orders.row_key((), {"model": m}))
    return Built(
        spec,
        sorted(set(obs["file"])),
        scope,
        key_headers,
        value_columns + (["Avg."] if spec.average else []),
        rows,
        pd.DataFrame(long_rows, columns=CELL_COLUMNS),
        find_missing(spec, index, obs, scope, pending),
        [m for m in scope if m not in index.models],
        repeated,
        bool(obs["short"].any()),
        rule,
        selection_notes(spec, policy_cells),
        selection_seeds,
        tuple(_tuning_notes(spec, policy_cells)),
        int(obs.loc[obs["dirty"].astype(bool), "file"].nunique()) if len(obs) else 0,
    )


def _pending_observations(spec: Spec, runs: list[dict], cells: list[Cell]) -> list[dict]:
    """The observations (row keys and columns, no value shown) of held-out cells whose selected setting has
    no held-out run yet, from the setting's selection-seed run: they keep their row and leave the Missing list."""
    by_name = {run["file"]: run for run in runs}
    found = []
    for cell in cells:
        if cell.pending:
            run = by_name[cell.chosen.runs[0].name]
            found += [{"model": run["model"], **ob} for ob in spec.select(run)]
    return found


def _cell_text(spec: Spec, cell: Cell) -> str:
    """`bert-base PST 90% SST-2`: a policy cell as the notes name it."""
    model, keys = cell.key[0], cell.key[1 : 1 + len(spec.keys)]
    task, extra = cell.key[1 + len(spec.keys)], cell.key[2 + len(spec.keys) :]
    column = GLUE[task][0] if task in GLUE else NLG_TASKS.get(task, task)
    shown = [_key_text(f, v) if f in ("label", "sparsity", "task") else f"{f}={v}" for f, v in zip(spec.keys, keys)]
    return " ".join(
        [
            model,
            *shown,
            *([] if "task" in spec.keys else [column]),
            *(f"{f}={v}" for f, v in zip(spec.cell_fields, extra)),
        ]
    )


def selection_notes(spec: Spec, cells: list[Cell]) -> list[str]:
    """What the selection policy did: grids resolved and duplicates left out, one line per cell."""
    lines = []
    for cell in cells:
        if cell.is_grid:
            ranked = "; ".join(
                f"{c.setting}: seeds {c.seeds}, median dev "
                f"{'-' if c.median_dev is None else fmt_number(abs(c.median_dev), 4)}"
                + ("" if list(c.ranking_seeds) == c.seeds else f" on seeds {list(c.ranking_seeds)}")
                + (" (a constant predictor)" if all(run.constant_predictor for run in c.runs) else "")
                for c in cell.candidates
            )
            shown = "all pooled" if cell.rule == "pool" else f"shown: {cell.chosen.setting}"
            if cell.held_out:
                held = sorted({run.seed for run in cell.runs})
                shown += f" on held-out seeds {held}" if held else " (selected, held-out seeds pending)"
            lines.append(f"{_cell_text(spec, cell)} holds {len(cell.candidates)} settings ({ranked}); {shown}")
        for counted, left_out in cell.duplicates:
            lines.append(
                f"{_cell_text(spec, cell)}: {left_out.name} repeats {counted.name} (same setting, seed "
                f"{counted.seed}) and is left out"
            )
    return lines


def _tuning_notes(spec: Spec, cells: list[Cell]) -> list[str]:
    """The tuning budget per cell, unequal budgets, winners on a grid's edge and pending held-out cells."""
    tuned = []
    for cell in cells:
        n = len(spec.keys)
        fields = dict(zip(spec.keys, cell.key[1 : 1 + n]))
        task = cell.key[1 + n]
        column = GLUE[task][0] if task in GLUE else NLG_TASKS.get(task, task)
        fields.pop("task", None)
        sparsity = fields.pop("sparsity", None)
        sparsity = cell.chosen.runs[0].sparsity_pct if sparsity is None else sparsity
        member = [_key_text(f, v) if f == "label" else f"{f}={v}" for f, v in fields.items()]
        member += [f"{f}={v}" for f, v in zip(spec.cell_fields, cell.key[2 + n :])]
        tuned.append(Tuned(f"{cell.key[0]} {column} {fmt_sparsity(sparsity)}", " ".join(member), cell))
    return [*budget_notes(tuned), *edge_notes(tuned), *pending_notes(tuned)]


def missing_scope(
    spec: Spec, runs: list[dict], obs: pd.DataFrame, index: PaperIndex, all_paper_models: set[str]
) -> set[str]:
    """The models whose missing paper cells a table lists.

    Those with a row in the table, plus those with any record of its task family that the
    paper ran in this table or that the paper never ran (stand-ins for its reference model).
    RoBERTa with only Table 2 runs is not asked for the BERT-base-only Tables 4 and 5.
    """
    family = {run["model"] for run in runs if run["family"] == spec.family}
    eligible = {m for m in family if m in index.models or m not in all_paper_models}
    return set(obs["model"]) | eligible


def _row_header(spec: Spec, index: PaperIndex, obs: pd.DataFrame, fields: list[str], row: dict) -> dict:
    """The key and parameter-count columns of one row, as displayed."""
    model = index.model_for(row["model"])
    shown = {"Model": row["model"], "Paper model": model if model == row["model"] else f"{model} (stand-in)"}
    shown.update({KEY_HEADERS[f]: _key_text(f, row[f]) for f in spec.keys})
    if spec.params:
        mine = _row_params(obs, fields, row)
        shown["Params exact (M)"] = fmt_range(mine["params_exact"].tolist())
        shown["Params paper rule (M)"] = fmt_range(mine["params_rule"].tolist())
        shown["Params paper (M)"] = fmt_range(index.params(row))
    return shown


def _ours_text(cell: dict) -> str:
    """Our side of a cell: the median [min–max] · mean ± 95% CI half-width (n), or what the runs' predictions
    were; `§` when a run came from uncommitted code."""
    runs, constant = int(cell["runs"]), int(cell["constant_runs"])
    median, short = float(cell["median"]), bool(cell["short"])
    dirty = DIRTY_MARK if int(cell.get("dirty_runs") or 0) else ""
    if constant == runs:
        return f"constant ({fmt_number(median)})" + (SHORT_MARK if short else "") + dirty
    text = fmt_ours(median, float(cell["low"]), float(cell["high"]), runs, short)
    if runs > 1 and not pd.isna(cell["ci_low"]):
        half = (float(cell["ci_high"]) - float(cell["ci_low"])) / 2
        text += f" · {fmt_number(float(cell['mean']))} ± {fmt_number(half)} (n={runs})"
    text += f" ({constant}/{runs} constant)" if constant else ""
    text += BASELINE_MARK if at_or_below_baseline(cell) else ""
    return text + (UNCHECKED_MARK if int(cell["unchecked_runs"]) else "") + dirty


def _baselines_text(cells: pd.DataFrame) -> str:
    """`MRPC 81.22` for every column whose cells know their constant-predictor baseline."""
    known = cells[cells["constant_baseline"].astype(str) != ""] if len(cells) else cells
    values = known.groupby("column", sort=False)["constant_baseline"].first() if len(known) else {}
    return ", ".join(f"{column} {fmt_number(float(value))}" for column, value in dict(values).items())


def at_or_below_baseline(cell: dict) -> bool:
    """The cell's median does not beat what predicting one class scores on the same dev set."""
    baseline = cell.get("constant_baseline")
    if baseline is None or baseline == "" or pd.isna(baseline):
        return False
    return float(cell["median"]) <= float(baseline)


def fmt_percent(value: float | None) -> str:
    return DASH if value is None else f"{fmt_number(value, 1)}%"


def _value_cell(
    spec: Spec, index: PaperIndex, retention: Retention, row: dict, column: str, cell: dict | None, ref: dict | None
) -> tuple[tuple[str, str, str], float | None, dict | None]:
    """(ours, paper, comparison) strings of one cell, its median for Avg. (None unless every run
    learned), and its tableN_cells.csv line.

    The paper's models compare raw values (diff = ours − paper); a stand-in model compares
    retention (value ÷ Fine-tune's, ``Retention``), and its Fine-tune row shows no comparison.
    """
    paper_value = None if ref is None else ref["value"]
    elsewhere = bool(ref and ref["elsewhere"])
    paper_text = fmt_paper(paper_value, elsewhere)
    if cell is None:
        return (DASH, paper_text, DASH), None, None
    median = float(cell["median"])
    learned = int(cell["constant_runs"]) == 0
    ours = _ours_text(cell)
    reference = index.model_for(row["model"])
    ours_ret = paper_ret = diff = None
    if reference == row["model"]:
        diff = diff_value(median, paper_value) if learned else None
    elif row.get("label", "PST") != "Fine-tune":
        task_column = row["task"] if spec.number == 4 else column
        dense, _why = retention.ours_of(row["model"], task_column, set(cell["budgets"].split(" | ")))
        ours_ret = 100.0 * median / dense if dense and learned else None
        paper_ret = retention.paper_of(reference, task_column, paper_value)
        ours += f" · ret {fmt_percent(ours_ret)}"
        paper_text = "ret " + fmt_percent(paper_ret) + (ELSEWHERE_MARK if elsewhere and paper_ret is not None else "")
        diff = None if ours_ret is None or paper_ret is None else round(round(ours_ret, 1) - round(paper_ret, 1), 1)

    def six(value):  # 6 decimals: enough to recompute every printed number
        return "" if value is None or pd.isna(value) else f"{round(float(value), 6) + 0.0:.6f}"

    long_row = {
        "model": row["model"],
        "paper_model": reference,
        "method": row.get("label", "PST"),
        "sparsity": fmt_sparsity(row.get("sparsity", 90.0)),
        "task": row.get("task", ""),
        "r1": row.get("r1", column.split("=")[1] if spec.number == 4 else ""),
        "r2": row.get("r2", ""),
        "column": column,
        "runs": int(cell["runs"]),
        "seeds": cell["seeds"],
        "values": cell["values"],
        "median": six(median),
        "min": six(cell["low"]),
        "max": six(cell["high"]),
        "mean": six(cell["mean"]),
        "std": six(cell["std"]),
        "ci_low": six(cell["ci_low"]),
        "ci_high": six(cell["ci_high"]),
        "constant_runs": int(cell["constant_runs"]),
        "constant_baseline": six(cell["constant_baseline"]),
        "unchecked_runs": int(cell["unchecked_runs"]),
        "dirty_runs": int(cell["dirty_runs"]),
        "paper": six(paper_value),
        "diff": six(diff) if reference == row["model"] else "",
        "retention": six(ours_ret),
        "paper_retention": six(paper_ret),
        "short_run": bool(cell["short"]),
        "params_m": six(cell["params_m"]),
        "budget": cell["budgets"],
        "files": cell["files"],
        "settings": int(cell["settings"]),
        "setting": cell["setting"],
        "held_out": bool(cell["held_out"]),
        "tuning_seeds": cell["tuning_seeds"],
        "on_edge": cell["on_edge"],
    }
    comparison = fmt_diff(diff) if reference == row["model"] else _fmt_points(diff)
    return (ours, paper_text, comparison), (median if learned else None), long_row


def _fmt_points(value: float | None) -> str:
    """A retention difference in percentage points, `+1.8` / `-0.4`."""
    if value is None:
        return DASH
    text = fmt_number(value, 1)
    return text if text.startswith("-") else "+" + text


def _average_cell(spec: Spec, medians: dict, paper_ref: dict | None, stand_in: bool) -> tuple[str, str, str]:
    """Mean of the row's task medians when every task of the paper's average is present and learned
    (a stand-in model's mean is not compared with the paper's)."""
    paper_value = None if paper_ref is None else paper_ref["value"]
    paper_text = fmt_paper(paper_value, bool(paper_ref and paper_ref["elsewhere"]))
    if any(column not in medians for column in spec.columns):
        return DASH, paper_text, DASH
    mean = math.fsum(medians[c] for c in spec.columns) / len(spec.columns)
    return fmt_number(mean), paper_text, DASH if stand_in else fmt_diff(diff_value(mean, paper_value))


def missing_command(spec: Spec, model: str, cell: dict) -> str:
    """The pst-bench command that would fill a missing paper cell."""
    method = method_of_label(cell["label"])
    task = TASK_OF_COLUMN.get(cell["task"], cell["task"])
    parts = ["pst-bench", f"model={model}", f"task={task}", f"method={method}"]
    if method != "finetune":
        parts.append(f"method.sparsity={cell['sparsity'] / 100:g}")
    if spec.number == 4:
        parts += [f"method.r1={cell['r1']}", f"method.r2={cell['r2']}"]
    return " ".join(parts)


def find_missing(
    spec: Spec, index: PaperIndex, obs: pd.DataFrame, scope: list[str], pending: Iterable[dict] = ()
) -> pd.DataFrame:
    """Every paper cell (of a method pst-bench runs, not Avg.) that no run of a scoped model fills.

    Scoped models are those with any record of the table's task family, so a model with
    GLUE runs but no rank runs still lists the whole Table 4 grid. A held-out cell still waiting
    for its held-out seeds (``pending`` observations) is named in the notes, not here.
    """
    have = {(ob["model"], *(ob[f] for f in spec.match), ob["column"]) for ob in [*obs.to_dict("records"), *pending]}
    lines = []
    for model in scope:
        pm = index.model_for(model)
        for cell in index.cells:
            if cell["model"] != pm or cell["column"] == "Avg." or method_of_label(cell["label"]) is None:
                continue
            if (model, *(cell[f] for f in spec.match), cell["column"]) in have:
                continue
            lines.append(
                {
                    "table": spec.number,
                    "model": model,
                    "paper_model": pm,
                    "method": cell["label"],
                    "sparsity": fmt_sparsity(cell["sparsity"]),
                    "task": cell["task"],
                    "r1": "" if cell["r1"] is None or spec.number != 4 else cell["r1"],
                    "r2": "" if cell["r2"] is None or spec.number != 4 else cell["r2"],
                    "column": cell["column"],
                    "paper": fmt_paper(cell["value"], cell["elsewhere"]),
                    "published_elsewhere": cell["elsewhere"],
                    "command": missing_command(spec, model, cell),
                }
            )
    return pd.DataFrame(lines, columns=MISSING_COLUMNS)


# --------------------------------------------------------------------------- writing


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
        line = [row[h] for h in built.key_headers]
        for column in built.value_columns:
            line += list(row[column])
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
            cells = [row[h] for h in built.key_headers] + [md_cell(*row[c]) for c in built.value_columns]
            out.append("| " + " | ".join(cells) + " |")
    else:
        out.append("No finished run for this table yet.")
    out += ["", "## Notes", ""]
    out += [f"- {note}" for note in _notes(built)]
    out += ["", "## Missing", ""]
    out += _missing_lines(built)
    return "\n".join(out) + "\n"


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
    quoted = any(row[c][1].endswith(ELSEWHERE_MARK) for row in built.rows for c in built.value_columns)
    if quoted or built.missing["published_elsewhere"].any():
        notes.append(f"`{ELSEWHERE_MARK}` after a paper number: the paper quotes it from prior work.")
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


def per_seed_values(cell: dict) -> dict[int, float]:
    """{seed: value} of one tableN_cells.csv line."""
    return {int(seed): float(value) for seed, value in zip(cell["seeds"].split(";"), cell["values"].split(";"))}


def paired_differences(first: dict, second: dict) -> dict[int, float]:
    """{seed: first − second} over the seeds both cells have (a paired comparison: same seed, same data order)."""
    a, b = per_seed_values(first), per_seed_values(second)
    return {seed: a[seed] - b[seed] for seed in sorted(set(a) & set(b))}


PAIRED = (("PST", "MaP"), ("PST", "MvP"))


def paired_notes(built: Built) -> list[str]:
    """Table 2/3: PST − MaP and PST − MvP seed by seed, for every model, sparsity and column with both."""
    if built.spec.number not in (2, 3) or not len(built.cells):
        return []
    by_key = {(c["model"], c["sparsity"], c["column"], c["method"]): c for c in built.cells.to_dict("records")}
    lines = []
    for (model, sparsity, column, method), cell in sorted(by_key.items()):
        for first, second in PAIRED:
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


def _missing_lines(built: Built) -> list[str]:
    """The missing paper cells grouped by row; the commands are in tableN_missing.csv."""
    missing = built.missing
    number = built.spec.number
    if not built.scope:
        return [f"No {built.spec.family.upper()} runs, so no paper cells are listed."]
    if not len(missing):
        return ["None: every paper cell of the models we ran has a run."]
    lines = [
        f"{len(missing)} paper cell{'s' if len(missing) != 1 else ''} of the models we ran have no "
        f"run here; the command for each is in `table{number}_missing.csv`.",
        "",
    ]
    group_fields = (
        ["model", "paper_model", "method", "sparsity", "task", "r2"]
        if number == 4
        else ["model", "paper_model", "method", "sparsity"]
    )
    for key, group in missing.groupby(group_fields, sort=False):
        values = dict(zip(group_fields, key))
        head = f"{values['model']} (paper {values['paper_model']}), {values['method']} {values['sparsity']}"
        if number == 4:
            head += f", {values['task']}, r2={values['r2']}"
        columns = [f"{c}{ELSEWHERE_MARK}" if e else c for c, e in zip(group["column"], group["published_elsewhere"])]
        lines.append(f"- {head}: {', '.join(columns)}")
    if number == 2:
        lines += ["", "The paper's L0-regu row (quoted from prior work, not implemented here) is not listed."]
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


MASK_COLUMNS = [
    "model",
    "task",
    "sparsity",
    "seed",
    "pair",
    "hamming_distance",
    "kept_overlap",
    "matrices",
    "first_run",
    "second_run",
    "shown",
    "setting",
]


def mask_distance_frame(pairs: list[MaskPair]) -> pd.DataFrame:
    """mask_distance.csv: one line per compared same-seed pair of runs."""
    lines = [
        {
            "model": p.model,
            "task": p.task,
            "sparsity": fmt_sparsity(p.sparsity),
            "seed": p.seed,
            "pair": f"{p.first}-{p.second}",
            "hamming_distance": f"{p.result.distance:.6f}",
            "kept_overlap": f"{p.result.kept_overlap:.6f}",
            "matrices": p.result.matrices,
            "first_run": p.first_run,
            "second_run": p.second_run,
            "shown": p.shown,
            "setting": p.setting,
        }
        for p in pairs
    ]
    return pd.DataFrame(lines, columns=MASK_COLUMNS)


def mask_distance_markdown(pairs: list[MaskPair], runs_dir: str) -> str:
    """mask_distance.md: the per-run distances between methods' final masks, by model, task and sparsity."""
    out = [
        "# Mask distances between methods, per run",
        "",
        f"Built by `{COMMAND}` from the masks (`<id>.masks.npz`) of the runs the tables show in `{runs_dir}`: "
        "each same-seed pair of MaP, MvP and PST runs on one model, task and sparsity. Hamming distance: the "
        "share of all sparsified entries on which the two final masks differ (two unrelated masks at 90% "
        "sparsity differ on about 18%); kept overlap: the share of one run's kept weights the other keeps too "
        "(1 for identical masks, about 1 − sparsity for unrelated ones). MvP–MaP near 0 means MvP's scores "
        "never moved from |W|: magnitude pruning under another name.",
        "",
    ]
    if not pairs:
        return "\n".join([*out, "No pair of runs with masks yet.", ""])
    out += [
        "| Model | Task | Sparsity | Pair | Seed | Hamming distance | Kept overlap | Runs |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def order(p: MaskPair) -> tuple:
        return (p.model, p.task, p.sparsity, f"{p.first}-{p.second}", not p.shown, p.setting, p.seed)

    for p in sorted(pairs, key=order):
        runs = "shown in the tables" if p.shown else f"grid setting left out: {p.setting}"
        out.append(
            f"| {p.model} | {p.task} | {fmt_sparsity(p.sparsity)} | {p.first}–{p.second} | {p.seed} | "
            f"{fmt_number(100 * p.result.distance)}% | {fmt_number(100 * p.result.kept_overlap)}% | {runs} |"
        )
    return "\n".join([*out, "", "Per pair, with the record files: `mask_distance.csv`.", ""])


def make_tables(
    runs_dir: Path,
    out_dir: Path,
    paper_csv: Path | None = None,
    rule: str = DEFAULT_GRID_RULE,
    bench_dir: Path = Path("results/bench"),
    selection_seeds: tuple[int, ...] = SELECTION_SEEDS,
) -> tuple[list[dict], list[Built]]:
    """Build and write Tables 2-5 (and the claims, mask distances and the structured-sparsity table) from
    the records under runs_dir; returns the runs and the tables."""
    from .claims import check_claims, claims_markdown  # claims reads tables' cells: imported late
    from .structured import write_structured

    runs = load_runs(runs_dir)
    paper = load_paper(paper_csv or default_paper_csv())
    orders = Orders(paper)
    seeds = tuple(selection_seeds)
    built = [build_table(spec, runs, paper, orders, rule, seeds) for spec in SPECS]
    for table in built:
        write_table(table, out_dir, runs_dir.as_posix())
    pairs = mask_pairs([run["record"] for run in runs], rule, seeds)
    atomic_write_text(out_dir / "mask_distance.csv", to_csv_text(mask_distance_frame(pairs)))
    atomic_write_text(out_dir / "mask_distance.md", mask_distance_markdown(pairs, runs_dir.as_posix()))
    verdicts = check_claims(built, pairs, paper)
    atomic_write_text(out_dir / "claims.md", claims_markdown(verdicts, len(runs), runs_dir.as_posix()))
    write_structured([run["record"] for run in runs], out_dir, runs_dir.as_posix(), bench_dir, rule, seeds)
    return runs, built


def main(argv: list[str] | None = None) -> int:
    """CLI: `python -m pst_bench.report.tables [--runs DIR] [--out DIR] [--paper CSV]`."""
    parser = argparse.ArgumentParser(
        prog="python -m pst_bench.report.tables", description="The paper's Tables 2-5 from finished results records."
    )
    parser.add_argument("--runs", type=Path, default=Path("results/runs"), help="results records folder")
    parser.add_argument("--out", type=Path, default=Path("results/tables"), help="output folder")
    parser.add_argument(
        "--paper",
        type=Path,
        default=None,
        help="paper numbers CSV (default: the packaged pst_bench/paper/paper_results.csv)",
    )
    parser.add_argument(
        "--grid",
        choices=GRID_RULES,
        default=DEFAULT_GRID_RULE,
        help="a cell holding several settings: show the best on dev (the paper's rule) or pool "
        "all (default: %(default)s)",
    )
    parser.add_argument(
        "--bench", type=Path, default=Path("results/bench"), help="inference benchmark folder (structured.md's speed)"
    )
    parser.add_argument(
        "--selection-seeds",
        type=int,
        nargs="*",
        default=list(SELECTION_SEEDS),
        metavar="SEED",
        help="seeds that only pick a cell's setting and are never shown; a cell with a run on one shows the "
        "winner's other (held-out) seeds; give none to turn this off (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    if not args.runs.is_dir():
        print(f"pst-bench tables: error: no runs folder {args.runs}", file=sys.stderr)
        return 2
    if args.paper is not None and not args.paper.is_file():
        print(f"pst-bench tables: error: no paper CSV {args.paper}", file=sys.stderr)
        return 2
    # Every skipped file is reported once, as one plain line (the default format would
    # print the warning's source line and drop repeats).
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RecordSkipped)
        runs, built = make_tables(args.runs, args.out, args.paper, args.grid, args.bench, tuple(args.selection_seeds))
    for item in caught:
        print(f"pst-bench tables: warning: {item.message}", file=sys.stderr)
    used = set().union(*(table.files for table in built))
    for run in runs:
        if run["file"] not in used and not run["record"].structure:  # structured runs: structured.md
            # a PST variant at 50%, PST ranks on a task Table 4 lacks, a duplicate
            print(
                f"pst-bench tables: note: {run['file']} is in no table (or left out by the selection)", file=sys.stderr
            )
    for table in built:
        print(
            f"table{table.spec.number}: {len(table.files)} records, {len(table.rows)} rows, "
            f"{len(table.missing)} missing paper cells -> {args.out.as_posix()}/table{table.spec.number}.md"
        )
    print(f"claims and mask distances -> {args.out.as_posix()}/claims.md, {args.out.as_posix()}/mask_distance.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
