"""What distinguishes each of the paper's Tables 2-5: a :class:`Spec` (rows, columns, which runs enter)
and the paper's cells it is compared with (:class:`PaperIndex`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .labels import BEYOND_PAPER, FULL_PST, MAIN_LABELS
from .paper import GLUE_COLUMNS, NLG_METRIC_NAMES, NLG_TASKS, TABLE3_CELLS, TABLE4_TASKS, TABLE5_COLUMNS, PaperCell
from .runs import Run
from .selection import at_paper_ranks, cell_sparsity_pct, off_target


@dataclass(frozen=True)
class Observation:
    """One value of a run as it enters a table: its row key fields (those the table's spec names), its
    column and the value."""

    label: str
    column: str
    value: float
    sparsity: float | None = None
    task: str | None = None
    r1: int | None = None
    r2: int | None = None

    def get(self, field: str):
        """A row key field (``label``, ``sparsity``, ``task``, ``r1``, ``r2``) by name."""
        return getattr(self, field)


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
    select: Callable[[Run], list[Observation]]  # run -> the observations it adds to the table
    # run fields that, with the row and the task, make one cell of the selection policy (Table 4: r1,
    # its column: each rank pair is its own cell, not a grid to choose from)
    cell_fields: tuple[str, ...] = ()
    # run -> why it would be in the table but joins no cell (a sparsity it did not reach), for the notes
    left_out: Callable[[Run], str | None] | None = None


def _observations(run: Run, label: str, **key) -> list[Observation]:
    """One observation per value column of a run, with the row key fields given."""
    return [Observation(label, column, value, **key) for column, value in sorted(run.values.items())]


def _main_label(run: Run) -> str | None:
    """Table 2/3 label: PST[mag+ab+rc] is the paper's PST; ablation variants are Table 5 only."""
    label = "PST" if run.label == FULL_PST else run.label
    if label not in MAIN_LABELS:
        return None
    if not at_paper_ranks(run.record):
        return None  # other ranks are Table 4 cells, not the paper's PST row
    return label


def select_table2(run: Run) -> list[Observation]:
    """GLUE runs of Fine-tune, MaP, MvP and PST (r1 = r2 = 8), and of the baselines beyond the paper
    (``labels.BEYOND_PAPER``), at the sparsity of their cell: a run whose sparsity a penalty sets (soft
    movement pruning) only at the nominal sparsity it reached, else in no cell (``left_out_table2``)."""
    if run.family != "glue":
        return []
    label = run.label if run.label in BEYOND_PAPER else _main_label(run)
    sparsity = cell_sparsity_pct(run.record)
    return [] if label is None or sparsity is None else _observations(run, label, sparsity=sparsity)


def left_out_table2(run: Run) -> str | None:
    """Why a GLUE run of Table 2's methods joins no cell (its achieved sparsity missed its nominal one), or None."""
    return off_target(run.record) if run.family == "glue" and run.label in BEYOND_PAPER else None


def select_table3(run: Run) -> list[Observation]:
    """NLG runs of Fine-tune, MaP, MvP and PST (r1 = r2 = 8), at any sparsity."""
    label = _main_label(run) if run.family == "nlg" else None
    return [] if label is None else _observations(run, label, sparsity=run.sparsity)


def select_table4(run: Run) -> list[Observation]:
    """Full PST at 90% on MRPC and SST-2: one cell per (r2, r1)."""
    if (
        run.family != "glue"
        or run.label not in ("PST", FULL_PST)
        or run.sparsity != 90.0
        or run.task not in TABLE4_TASKS
    ):
        return []
    ((column, value),) = run.values.items()
    return [Observation("PST", f"r1={run.r1}", value, task=column, r2=run.r2)]


def select_table5(run: Run) -> list[Observation]:
    """The seven PST[...] variants at 90% on GLUE; the full one (pst) only at r1 = r2 = 8.

    The paper set each variant's ranks so that all train the same number of parameters,
    without printing them: our ranks are part of the row, with the parameter counts.
    """
    label = FULL_PST if run.label == "PST" else run.label
    if run.family != "glue" or not label.startswith("PST[") or run.sparsity != 90.0:
        return []
    if run.record.structure:
        return []  # the paper's ablation is unstructured; a structured variant is another experiment
    if label == FULL_PST and not at_paper_ranks(run.record):
        return []
    return _observations(run, label, r1=run.r1, r2=run.r2)


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
        left_out=left_out_table2,
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


class PaperIndex:
    """The paper's cells of one table, looked up by (paper model, match fields, column).

    A row is a dict of its key fields (``model`` and the spec's ``keys``).
    """

    def __init__(self, spec: Spec, paper: list[PaperCell]):
        self.spec = spec
        # a baseline beyond the paper has no paper number, whatever a paper CSV says: never compared
        self.cells = [cell for cell in paper if cell.table == spec.number and cell.label not in BEYOND_PAPER]
        self.models = {cell.model for cell in self.cells}
        self._by_key = {(c.model, *(getattr(c, f) for f in spec.match), c.column): c for c in self.cells}

    def model_for(self, model: str) -> str:
        """The paper model a run's model is compared against (itself, or the stand-in reference)."""
        return model if model in self.models else self.spec.reference

    def cell(self, row: dict, column: str) -> PaperCell | None:
        """The paper's cell for one of our rows."""
        return self._by_key.get((self.model_for(row["model"]), *(row[f] for f in self.spec.match), column))

    def params(self, row: dict) -> list[float]:
        """The paper's printed trainable-parameter count of the row (at most one value)."""
        model = self.model_for(row["model"])
        found = [
            c.params
            for c in self.cells
            if c.model == model and c.params is not None and all(getattr(c, f) == row[f] for f in self.spec.match)
        ]
        return found[:1]
