"""Building one of the paper's tables: select the runs that enter its :class:`~.table_specs.Spec`, aggregate
them into cells, compare each cell with the paper's and list what is missing; the result is a
:class:`Built` table that :mod:`pst_bench.report.table_markdown` writes."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from .cells import (
    DASH,
    ELSEWHERE_MARK,
    CellLine,
    CellStats,
    aggregate,
    cells_frame,
    diff_value,
    fmt_diff,
    fmt_number,
    fmt_paper,
    fmt_percent,
    fmt_points,
    fmt_range,
    fmt_sparsity,
    ours_text,
    six,
)
from .labels import BEYOND_PAPER
from .paper import GLUE_COLUMNS, PaperCell
from .runs import Run
from .selection import DEFAULT_GRID_RULE, SELECTION_SEEDS, Cell, select_cells
from .table_missing import find_missing, missing_scope
from .table_notes import key_text, selection_notes, tuning_notes
from .table_specs import Observation, PaperIndex, Spec

KEY_HEADERS = {"label": "Method", "sparsity": "Sparsity", "task": "Task", "r1": "r1", "r2": "r2"}
NO_PAPER_MODEL = "none (beyond the paper)"  # the Paper model of a baseline's row: no paper number to compare
PARAM_HEADERS = ["Params exact (M)", "Params paper rule (M)", "Params paper (M)"]
# What each observation carries into the aggregation (besides the row key fields).
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


class Orders:
    """Sort keys: paper models and labels in the paper's order (then the baselines beyond the paper), then
    the rest alphabetically."""

    def __init__(self, paper: list[PaperCell]):
        self.models = list(dict.fromkeys(cell.model for cell in paper))
        self.labels = list(dict.fromkeys([*(cell.label for cell in paper), *BEYOND_PAPER]))
        # Table 4 prints (a) MRPC before (b) SST-2; other tables follow the GLUE column order.
        self.tasks = list(dict.fromkeys([*(c.task for c in paper if c.table == 4), *GLUE_COLUMNS]))

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


@dataclass(frozen=True)
class ShownRow:
    """One row of a table as displayed."""

    keys: dict[str, str]  # key header (Model, Paper model, Method, ..., Params ...) -> text
    values: dict[str, tuple[str, str, str]]  # value column (and Avg.) -> (ours, paper, comparison)


@dataclass
class Built:
    """A finished table: its rows and columns as strings, plus the long and missing lists."""

    spec: Spec
    files: list[str]  # the records it was built from
    scope: list[str]  # models of the table's task family that we ran
    key_headers: list[str]
    value_columns: list[str]
    rows: list[ShownRow]
    cells: pd.DataFrame  # tableN_cells.csv (CellLine by CellLine; what the claims read)
    missing: pd.DataFrame  # tableN_missing.csv
    stand_ins: list[str]  # models compared against the reference model
    repeated_seeds: list[str]  # cells with several records on one seed (the pool rule only)
    has_short: bool
    rule: str  # the grid rule of the selection policy
    selection: list[str]  # what the policy did: grids resolved, duplicates left out
    selection_seeds: tuple[int, ...] = SELECTION_SEEDS  # tune only, never shown (held-out cells)
    tuning: tuple[str, ...] = ()  # tuning budget, grid edges, pending held-out cells (report.tuning)
    dirty_runs: int = 0  # runs shown that came from uncommitted code
    left_out: tuple[str, ...] = ()  # runs of the table's methods in no cell, and why (``Spec.left_out``)


def _selected(
    spec: Spec, runs: list[Run], rule: str, selection_seeds: tuple[int, ...] = SELECTION_SEEDS
) -> tuple[list[tuple[Run, list[Observation], Cell]], list[Cell]]:
    """(run, its observations, its cell) for the runs the selection policy keeps, and every cell of the table.

    A cell of the policy is one row of the table and one task (a run's columns all come from
    its one task), so a grid or a duplicate is resolved per task, as the paper does.
    """
    entering = [(run, spec.select(run)) for run in runs]
    entering = [(run, obs) for run, obs in entering if obs]
    cell_of_file = {
        run.file: (
            run.model,
            *(obs[0].get(f) for f in spec.keys),
            run.task,
            *(getattr(run, f) for f in spec.cell_fields),
        )
        for run, obs in entering
    }
    cells = select_cells([run.record for run, _ in entering], lambda rec: cell_of_file[rec.name], rule, selection_seeds)
    kept = {rec.name: cell for cell in cells.values() for rec in cell.runs}
    chosen = [(run, obs, kept[run.file]) for run, obs in entering if run.file in kept]
    return chosen, sorted(cells.values(), key=lambda cell: tuple(str(part) for part in cell.key))


def observations(
    spec: Spec, runs: list[Run], rule: str = DEFAULT_GRID_RULE, selection_seeds: tuple[int, ...] = SELECTION_SEEDS
) -> tuple[pd.DataFrame, list[Cell]]:
    """One line per (selected run, value column) that enters the table, with the row key fields."""
    fields = ["model", *spec.keys]
    lines = []
    chosen, cells = _selected(spec, runs, rule, selection_seeds)
    for run, obs, cell in chosen:
        for ob in obs:
            lines.append(
                {
                    "model": run.model,
                    "label": ob.label,
                    **{f: ob.get(f) for f in spec.keys},
                    "column": ob.column,
                    "value": ob.value,
                    "seed": run.seed,
                    "file": run.file,
                    "short": run.short,
                    "dirty": run.dirty,
                    "constant": run.constant,
                    "constant_baseline": run.constant_baseline,
                    "unchecked": run.unchecked,
                    "budget": run.budget,
                    "params_exact": run.params_exact,
                    "params_rule": run.params_rule,
                    "setting": cell.setting,
                    "settings": len(cell.candidates),
                    "held_out": cell.held_out,
                    "tuning_seeds": ";".join(str(seed) for seed in cell.tuning_seeds),
                    "on_edge": cell.on_edge or "",
                }
            )
    return pd.DataFrame(lines, columns=list(dict.fromkeys([*fields, *OBS_COLUMNS]))), cells


class Retention:
    """What a stand-in model's cells are compared by: value ÷ Fine-tune's, ours beside the paper's.

    Ours: the cell's median over the median of our Fine-tune cell (same model, task and column,
    chosen by the same selection policy), only when both cells' runs share one training protocol
    (``RunRecord.budget``). The paper's: its number for the cell over its Fine-tune number for the
    reference model (Table 2 for GLUE, Table 3 for generation).
    """

    def __init__(
        self, runs: list[Run], paper: list[PaperCell], rule: str, selection_seeds: tuple[int, ...] = SELECTION_SEEDS
    ):
        dense = [run for run in runs if run.label == "Fine-tune"]
        cells = select_cells([run.record for run in dense], lambda rec: (rec.model, rec.task), rule, selection_seeds)
        by_name = {run.file: run for run in dense}
        self.ours: dict[tuple[str, str], tuple[float, set[str]]] = {}
        for (model, _task), cell in cells.items():
            chosen = [by_name[rec.name] for rec in cell.runs]
            budgets = {run.budget for run in chosen}
            for column in sorted({c for run in chosen for c in run.values}):
                values = [run.values[column] for run in chosen if column in run.values]
                self.ours[model, column] = (statistics.median(values), budgets)
        self.paper = {(c.model, c.column): c.value for c in paper if c.label == "Fine-tune" and c.table in (2, 3)}

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


def build_table(
    spec: Spec,
    runs: list[Run],
    paper: list[PaperCell],
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
    by_cell = {tuple(c[f] for f in [*fields, "column"]): CellStats.of(c) for c in cells.to_dict("records")}
    # a held-out cell whose winner has no held-out run yet keeps its row (its value shows `-`)
    pending = _pending_observations(spec, runs, policy_cells)
    row_keys = {tuple(r) for r in obs[fields].itertuples(index=False, name=None)}
    row_keys |= {(model, *(ob.get(f) for f in spec.keys)) for model, ob in pending}
    row_dicts = sorted((dict(zip(fields, key)) for key in row_keys), key=lambda row: orders.row_key(spec.order, row))
    value_columns = orders.columns(spec, obs["column"].unique())
    rows, lines, repeated = [], [], []
    for row in row_dicts:
        values, medians = {}, {}
        for column in value_columns:
            cell, ref = by_cell.get((*(row[f] for f in fields), column)), index.cell(row, column)
            values[column], median, line = _value_cell(spec, index, retention, row, column, cell, ref)
            if cell is None:
                continue
            if median is not None:  # a constant predictor's value is no result: no Avg. over it
                medians[column] = median
            lines.append(line)
            if cell.distinct_seeds < cell.runs:
                keys = " ".join(key_text(f, row[f]) for f in spec.keys)
                repeated.append(f"{row['model']} {keys} {column}: seeds {cell.seeds} ({cell.files})")
        if spec.average:
            stand_in = index.model_for(row["model"]) != row["model"]
            values["Avg."] = _average_cell(spec, medians, index.cell(row, "Avg."), stand_in)
        rows.append(ShownRow(_row_header(spec, index, obs, fields, row), values))
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
        cells_frame(lines),
        find_missing(spec, index, obs, scope, pending),
        [m for m in scope if m not in index.models],
        repeated,
        bool(obs["short"].any()),
        rule,
        selection_notes(spec, policy_cells),
        selection_seeds,
        tuple(tuning_notes(spec, policy_cells)),
        int(obs.loc[obs["dirty"].astype(bool), "file"].nunique()) if len(obs) else 0,
        tuple(why for why in (spec.left_out(run) for run in runs) if why) if spec.left_out else (),
    )


def _pending_observations(spec: Spec, runs: list[Run], cells: list[Cell]) -> list[tuple[str, Observation]]:
    """(model, observation) of held-out cells whose selected setting has no held-out run yet (row keys and
    columns, no value shown), from the setting's selection-seed run: they keep their row and leave the
    Missing list."""
    by_name = {run.file: run for run in runs}
    found = []
    for cell in cells:
        if cell.pending:
            run = by_name[cell.chosen.runs[0].name]
            found += [(run.model, ob) for ob in spec.select(run)]
    return found


def _row_header(spec: Spec, index: PaperIndex, obs: pd.DataFrame, fields: list[str], row: dict) -> dict[str, str]:
    """The key and parameter-count columns of one row, as displayed."""
    model = index.model_for(row["model"])
    shown = {"Model": row["model"], "Paper model": model if model == row["model"] else f"{model} (stand-in)"}
    if row.get("label") in BEYOND_PAPER:
        shown["Paper model"] = NO_PAPER_MODEL
    shown.update({KEY_HEADERS[f]: key_text(f, row[f]) for f in spec.keys})
    if spec.params:
        mask = pd.Series(True, index=obs.index)
        for field in fields:
            mask &= obs[field] == row[field]
        mine = obs[mask]
        shown["Params exact (M)"] = fmt_range(mine["params_exact"].tolist())
        shown["Params paper rule (M)"] = fmt_range(mine["params_rule"].tolist())
        shown["Params paper (M)"] = fmt_range(index.params(row))
    return shown


def _value_cell(
    spec: Spec,
    index: PaperIndex,
    retention: Retention,
    row: dict,
    column: str,
    cell: CellStats | None,
    ref: PaperCell | None,
) -> tuple[tuple[str, str, str], float | None, CellLine | None]:
    """(ours, paper, comparison) strings of one cell, its median for Avg. (None unless every run
    learned), and its tableN_cells.csv line.

    The paper's models compare raw values (diff = ours − paper); a stand-in model compares
    retention (value ÷ Fine-tune's, ``Retention``), and its Fine-tune row shows no comparison.
    """
    paper_value = None if ref is None else ref.value
    elsewhere = bool(ref and ref.elsewhere)
    paper_text = fmt_paper(paper_value, elsewhere)
    if cell is None:
        return (DASH, paper_text, DASH), None, None
    median = float(cell.median)
    learned = int(cell.constant_runs) == 0
    ours = ours_text(cell)
    reference = index.model_for(row["model"])
    ours_ret = paper_ret = diff = None
    if reference == row["model"]:
        diff = diff_value(median, paper_value) if learned else None
    elif row.get("label", "PST") != "Fine-tune":
        task_column = row["task"] if spec.number == 4 else column
        dense, _why = retention.ours_of(row["model"], task_column, set(cell.budgets.split(" | ")))
        ours_ret = 100.0 * median / dense if dense and learned else None
        paper_ret = retention.paper_of(reference, task_column, paper_value)
        ours += f" · ret {fmt_percent(ours_ret)}"
        paper_text = "ret " + fmt_percent(paper_ret) + (ELSEWHERE_MARK if elsewhere and paper_ret is not None else "")
        if row.get("label") in BEYOND_PAPER:
            paper_text = DASH  # no paper number, so no paper retention either
        diff = None if ours_ret is None or paper_ret is None else round(round(ours_ret, 1) - round(paper_ret, 1), 1)
    line = CellLine(
        model=row["model"],
        paper_model="none" if row.get("label") in BEYOND_PAPER else reference,
        method=row.get("label", "PST"),
        sparsity=fmt_sparsity(row.get("sparsity", 90.0)),
        task=row.get("task", ""),
        r1=row.get("r1", column.split("=")[1] if spec.number == 4 else ""),
        r2=row.get("r2", ""),
        column=column,
        runs=int(cell.runs),
        seeds=cell.seeds,
        median=six(median),
        min=six(cell.low),
        max=six(cell.high),
        values=cell.values,
        mean=six(cell.mean),
        std=six(cell.std),
        ci_low=six(cell.ci_low),
        ci_high=six(cell.ci_high),
        constant_runs=int(cell.constant_runs),
        constant_baseline=six(cell.constant_baseline),
        unchecked_runs=int(cell.unchecked_runs),
        dirty_runs=int(cell.dirty_runs),
        paper=six(paper_value),
        diff=six(diff) if reference == row["model"] else "",
        retention=six(ours_ret),
        paper_retention=six(paper_ret),
        short_run=bool(cell.short),
        params_m=six(cell.params_m),
        budget=cell.budgets,
        files=cell.files,
        settings=int(cell.settings),
        setting=cell.setting,
        held_out=bool(cell.held_out),
        tuning_seeds=cell.tuning_seeds,
        on_edge=cell.on_edge,
    )
    comparison = fmt_diff(diff) if reference == row["model"] else fmt_points(diff)
    return (ours, paper_text, comparison), (median if learned else None), line


def _average_cell(spec: Spec, medians: dict, paper_ref: PaperCell | None, stand_in: bool) -> tuple[str, str, str]:
    """Mean of the row's task medians when every task of the paper's average is present and learned
    (a stand-in model's mean is not compared with the paper's)."""
    paper_value = None if paper_ref is None else paper_ref.value
    paper_text = fmt_paper(paper_value, bool(paper_ref and paper_ref.elsewhere))
    if any(column not in medians for column in spec.columns):
        return DASH, paper_text, DASH
    mean = math.fsum(medians[c] for c in spec.columns) / len(spec.columns)
    return fmt_number(mean), paper_text, DASH if stand_in else fmt_diff(diff_value(mean, paper_value))
