"""Which runs a table cell or a figure point shows: the one run-selection policy of every report.

1. **Same cell.** Two records belong to one cell when a report's key says so; every report
   builds its key from the record's model, task, sparsity and *what the method computes*
   (``RunRecord.computation``), never from the method's config name: ``pst`` and
   ``pst_mag_ab_rc`` are one method. PST enters the paper's main rows (Tables 2, 3, 5's full
   row, Figures 2-5) only at the paper's ranks r1 = r2 = 8 (``at_paper_ranks``); Table 4 is
   the rank grid.
2. **Settings.** Inside a cell, records that differ in any other setting (learning rate, epochs,
   data subset, ...: ``RunRecord.setting``, seeds and names excluded) are different *settings*
   of a hyperparameter grid. A key that some records lack (an older record) does not make two
   records differ.
3. **Same-seed duplicates.** Two records of one setting and one seed are the same experiment
   twice (a rerun, or the same method under two names): the first in path order counts, the
   other is listed as a duplicate and left out.
4. **Grids.** ``best-dev`` (the default, the paper's rule): the setting with the best median
   dev value wins the cell (higher metric, or lower dev loss for generation), and only its runs
   are shown; ties go to the first setting in sorted order. The median is taken over the seeds
   that every setting of the cell has, when there are any (a grid tuned on one seed and then
   repeated on more seeds for its winner is ranked on the tuning seed, like with like), else
   over each setting's own seeds. A setting whose ranking runs all predict a constant
   (``RunRecord.constant_predictor``) ranks behind every setting that learned, whatever its value:
   on MRPC the constant "paraphrase" scores F1 81.22, above a sparse run that learned and scores
   80.6, and a constant is no result to show. ``pool``: every
   setting's runs are shown together. Either way the winner and the candidates are recorded.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass

from ..record import RunRecord

GRID_RULES = ("best-dev", "pool")
DEFAULT_GRID_RULE = "best-dev"
PAPER_RANKS = (8, 8)
_UNSET = "unset"


def at_paper_ranks(record: RunRecord) -> bool:
    """True for every non-PST record, and for PST at the paper's r1 = r2 = 8."""
    return record.kind != "pst" or record.ranks == PAPER_RANKS


@dataclass(frozen=True)
class Candidate:
    """One setting of a cell: its runs (one per seed) and the median dev value that ranks it."""

    setting: str  # "train.lr=0.0003, train.epochs=3"; "" when the cell has one setting
    runs: tuple[RunRecord, ...]
    median_dev: float | None  # over the ranking seeds
    ranking_seeds: tuple[int, ...] = ()

    @property
    def seeds(self) -> list[int]:
        return sorted(run.seed for run in self.runs)

    @property
    def constant(self) -> bool:
        """Every run it is ranked on predicts one class (or one value) on dev."""
        ranked = [run for run in self.runs if run.seed in self.ranking_seeds]
        return bool(ranked) and all(run.constant_predictor for run in ranked)


@dataclass(frozen=True)
class Cell:
    """What one cell shows: the winning setting's runs, the candidates and the duplicates left out."""

    key: Hashable
    chosen: Candidate
    candidates: tuple[Candidate, ...]
    duplicates: tuple[tuple[RunRecord, RunRecord], ...]  # (counted, left out)
    rule: str

    @property
    def runs(self) -> tuple[RunRecord, ...]:
        if self.rule == "pool":
            return tuple(run for candidate in self.candidates for run in candidate.runs)
        return self.chosen.runs

    @property
    def is_grid(self) -> bool:
        return len(self.candidates) > 1

    @property
    def setting(self) -> str:
        """The setting the cell shows: the winner's, or "pooled" for the pool rule over a grid."""
        if self.is_grid and self.rule == "pool":
            return "pooled: " + " | ".join(c.setting for c in self.candidates)
        return self.chosen.setting


def _value_text(value) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def distinguishing_keys(records: Iterable[RunRecord]) -> list[str]:
    """Setting keys with two or more values among the records that have them."""
    values: dict[str, set[str]] = {}
    for record in records:
        for key, value in record.setting.items():
            values.setdefault(key, set()).add(_value_text(value))
    return sorted(key for key, seen in values.items() if len(seen) > 1)


def setting_text(record: RunRecord, keys: list[str]) -> str:
    setting = record.setting
    return ", ".join(f"{key}={_value_text(setting[key]) if key in setting else _UNSET}" for key in keys)


def _candidate(setting: str, runs: list[RunRecord], ranking_seeds: set[int] | None) -> Candidate:
    """A setting's runs, ranked by the median over ``ranking_seeds`` (None: all of its seeds)."""
    ranked = [run for run in runs if ranking_seeds is None or run.seed in ranking_seeds]
    values = [run.ranking_value for run in ranked if run.ranking_value is not None]
    median = statistics.median(values) if values else None
    return Candidate(
        setting,
        tuple(sorted(runs, key=lambda r: (r.seed, r.name))),
        median,
        tuple(sorted(run.seed for run in ranked)),
    )


def _one_per_seed(runs: list[RunRecord]) -> tuple[list[RunRecord], list[tuple[RunRecord, RunRecord]]]:
    """The first run (path order) of every seed, and the (counted, left out) duplicate pairs."""
    kept: dict[int, RunRecord] = {}
    duplicates = []
    for run in sorted(runs, key=lambda r: r.name):
        if run.seed in kept:
            duplicates.append((kept[run.seed], run))
        else:
            kept[run.seed] = run
    return list(kept.values()), duplicates


def _best(candidates: list[Candidate]) -> Candidate:
    """The highest (sign-adjusted) median dev value among those that learned; a candidate with no value
    ranks last, a constant predictor just before."""
    ranked = sorted(candidates, key=lambda c: (c.median_dev is None, c.constant, -(c.median_dev or 0.0), c.setting))
    return ranked[0]


def select_cell(key: Hashable, records: list[RunRecord], rule: str = DEFAULT_GRID_RULE) -> Cell:
    """Apply the policy to the records of one cell."""
    if rule not in GRID_RULES:
        raise ValueError(f"grid rule {rule!r}: choose one of {', '.join(GRID_RULES)}")
    keys = distinguishing_keys(records)
    by_setting: dict[str, list[RunRecord]] = {}
    for record in records:
        by_setting.setdefault(setting_text(record, keys), []).append(record)
    kept, duplicates = {}, []
    for setting in sorted(by_setting):
        kept[setting], dropped = _one_per_seed(by_setting[setting])
        duplicates += dropped
    common = set.intersection(*({run.seed for run in runs} for runs in kept.values()))
    ranking_seeds = common if common and len(kept) > 1 else None
    candidates = [_candidate(setting, runs, ranking_seeds) for setting, runs in kept.items()]
    return Cell(key, _best(candidates), tuple(candidates), tuple(duplicates), rule)


def select_cells(
    records: Iterable[RunRecord], cell_of: Callable[[RunRecord], Hashable | None], rule: str = DEFAULT_GRID_RULE
) -> dict[Hashable, Cell]:
    """{cell key: Cell} for every record ``cell_of`` places in a cell (None: not in this report)."""
    grouped: dict[Hashable, list[RunRecord]] = {}
    for record in records:
        key = cell_of(record)
        if key is not None:
            grouped.setdefault(key, []).append(record)
    return {key: select_cell(key, runs, rule) for key, runs in grouped.items()}


def describe_rule(rule: str) -> str:
    """The note every table and figure carries about how its cells were chosen."""
    grid = (
        "the setting with the best median dev value over its seeds wins the cell (the paper's rule; a "
        "setting that predicts a constant only when no other learned) and only its runs are shown"
        if rule == "best-dev"
        else "the runs of every setting are shown together"
    )
    return (
        f"Run selection (`--grid {rule}`): records of one model, task, sparsity and method computation "
        "(`pst` = `pst_mag_ab_rc`) form a cell; same setting and seed twice counts once (the first file); "
        f"when a cell holds several settings (a hyperparameter grid), {grid}."
    )
