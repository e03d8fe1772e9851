"""The runs every report reads: one :class:`Run` per results record, from one :func:`load_runs`.

Every ``*.json`` file under a runs folder (recursively) is read as a results record through
:mod:`pst_bench.record`; files that are not JSON, not a record or not finished warn
(``RecordSkipped``) and are left out. A :class:`Run` carries what the tables and figures ask of a
record, computed once: its label, ranks, budget, parameter counts, its values by the paper's column
(:mod:`pst_bench.report.paper`) and its constant-predictor baseline.

The baseline is owned here, by :func:`constant_baselines`: a record made before the baseline was stored
gets it from another record of the same dev set.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..record import RecordSkipped, RunRecord, load_records
from .labels import label_of
from .paper import GLUE, NLG_TASKS, TABLE3_CELLS, nlg_column


class _Skip(Exception):
    """Internal: why one record has no value a table can show."""


# --------------------------------------------------------------------------- values by the paper's column


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
        values[nlg_column(task, metric)] = value * scale
    if not values:
        raise _Skip("no usable test metric in generation.test.metrics")
    return values


def record_values(record: RunRecord, warn: Callable[[str], None]) -> dict[str, float]:
    """{paper column: value} of a record as the tables print it; raises _Skip when it has none."""
    if record.task in GLUE:
        return glue_values(record)
    if record.task in NLG_TASKS:
        return nlg_values(record, warn)
    raise _Skip(f"unknown task {record.task!r}")


def budget_text(record: RunRecord) -> str:
    """The run's training protocol (data, epochs, steps, batch) as one comparable string."""
    return ", ".join(f"{key}={value}" for key, value in record.budget.items() if key not in ("model.name", "task.name"))


def eval_size(record: RunRecord) -> int | None:
    """How many examples the run's main dev split held (None when the record does not say)."""
    return (record.data.get("eval_examples") or {}).get(record.main_split)


# --------------------------------------------------------------------------- runs


@dataclass(eq=False)
class Run:
    """One results record as every report reads it, with what the reports ask of it computed once."""

    record: RunRecord
    label: str  # the paper's label of what the run computes (MaP, PST, PST[ab], ...; report.labels)
    r1: int | None
    r2: int | None
    budget: str  # the training protocol, one comparable string (budget_text)
    params_exact: float | None  # every trainable tensor, millions
    params_rule: float | None  # the paper's parameter rule, millions
    eval_size: int | None  # examples in the main dev split
    values: dict[str, float]  # {paper column: value} as the tables print it; {} for a record with none
    constant_baseline: float | None = None  # x100 like the values; shared by constant_baselines
    # artifacts read beside the record (the figures' masks), cached; those that failed to load (warned once)
    loaded: dict[str, dict] = field(default_factory=dict, repr=False)
    unreadable: set[str] = field(default_factory=set, repr=False)

    @classmethod
    def of(cls, record: RunRecord, values: dict[str, float]) -> Run:
        r1, r2 = record.ranks
        params = record.params
        exact, rule = params.get("trainable_total"), params.get("paper_rule_m")
        own = record.constant_baseline
        return cls(
            record=record,
            label=label_of(record),
            r1=r1,
            r2=r2,
            budget=budget_text(record),
            params_exact=None if exact is None else float(exact) / 1e6,
            params_rule=None if rule is None else float(rule),
            eval_size=eval_size(record),
            values=values,
            constant_baseline=None if own is None else 100.0 * own,
        )

    @property
    def file(self) -> str:
        """The record's path relative to the runs folder (its name in every report)."""
        return self.record.name

    @property
    def family(self) -> str:
        return self.record.family

    @property
    def task(self) -> str:
        return self.record.task

    @property
    def model(self) -> str:
        return self.record.model

    @property
    def sparsity(self) -> float:
        """Target sparsity in percent."""
        return self.record.sparsity_pct

    @property
    def seed(self) -> int:
        return self.record.seed

    @property
    def short(self) -> bool:
        """Trained, evaluated or decoded on a subset."""
        return self.record.is_short

    @property
    def dirty(self) -> bool:
        """Came from uncommitted code (``git.dirty``)."""
        return self.record.dirty

    @property
    def constant(self) -> bool | None:
        """Predicts one class (or one value) on dev; None when the record cannot say."""
        return self.record.constant_predictor

    @property
    def unchecked(self) -> bool:
        """A GLUE record older than the prediction summary cannot say (generation has no such check)."""
        return self.family == "glue" and self.constant is None

    def artifact(self, key: str) -> Path | None:
        """A file saved beside the record (``masks``, ``scores``), or None."""
        return self.record.artifact(key)


def load_runs(runs_dir: Path, *, valued: bool = True) -> list[Run]:
    """Every record under runs_dir as a Run, in path order, with the constant baselines shared.

    ``valued``: keep only the records with a value a table can show (each other one warns
    ``RecordSkipped`` with why: the tables); False keeps every usable record, its ``values`` empty when it
    has none (the figures draw masks and scores of any run).
    """
    runs = []
    for record in load_records(Path(runs_dir)):

        def warn(reason: str, path=record.path) -> None:
            warnings.warn(f"{path}: {reason}", RecordSkipped, stacklevel=3)

        try:
            values = record_values(record, warn if valued else _quiet)
        except _Skip as why:
            if valued:
                warn(f"skipped, {why}")
                continue
            values = {}
        runs.append(Run.of(record, values))
    shared = constant_baselines((run.record for run in runs), by=dev_set_key)
    for run in runs:
        if run.constant_baseline is None and dev_set_key(run.record) in shared:
            run.constant_baseline = 100.0 * shared[dev_set_key(run.record)]
    return runs


def _quiet(reason: str) -> None:
    """A warning nobody needs: the figures do not show the values."""


# --------------------------------------------------------------------------- the constant-predictor baseline


def dev_set_key(record: RunRecord) -> tuple[str, int | None]:
    """The baseline's key for the tables: the task and its dev set size (what the baseline depends on)."""
    return record.task, eval_size(record)


def panel_key(record: RunRecord) -> tuple[str, str]:
    """The baseline's key for Figure 3: one line per panel (model and task), whatever its dev set size."""
    return record.model, record.task


def constant_baselines(records: Iterable[RunRecord], by: Callable[[RunRecord], Hashable]) -> dict:
    """{by(record): the best dev value a constant predictor reaches (a fraction)} from the records that store it.

    The baseline depends on the dev labels alone, so any record with the same key gives it (classification
    records store it since it was added; a regression task has none). ``by`` is the one difference
    between its readers: the tables give each run the baseline of its task and dev set size
    (:func:`dev_set_key`, :func:`load_runs`), Figure 3 draws one per panel (:func:`panel_key`: model and task).
    Should the records of one key disagree (dev sets of different sizes in one panel), the most common
    value wins, and of equally common ones the last read.
    """
    found: dict[Hashable, list[float]] = {}
    for record in records:
        if record.constant_baseline is not None:
            found.setdefault(by(record), []).append(record.constant_baseline)
    return {key: max(reversed(values), key=values.count) for key, values in found.items()}
