"""Which runs a table cell or a figure point shows: the one run-selection policy of every report.

1. **Same cell.** Two records belong to one cell when a report's key says so; every report
   builds its key from the record's model, task, sparsity and *what the method computes*
   (``RunRecord.computation``), never from the method's config name: ``pst`` and
   ``pst_mag_ab_rc`` are one method. PST enters the paper's main rows (Tables 2, 3, 5's full
   row, Figures 2-5) only at the paper's ranks r1 = r2 = 8 (``at_paper_ranks``); Table 4 is
   the rank grid. A run whose sparsity a penalty sets (soft movement pruning) belongs to the cell
   of its nominal sparsity only when it reached it (``cell_sparsity_pct``); otherwise it joins no
   cell and is compared with nothing (``off_target`` says why, for the notes).
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
5. **Selection seed vs held-out seeds** (issue 21). A cell where any record has a *selection seed*
   (``SELECTION_SEEDS``, ``train.seed=0``; ``--selection-seeds`` overrides it) is a held-out cell:
   its settings are ranked on their selection-seed runs only (same best-dev rule, constant predictors
   last), and the cell shows only the winner's runs on the other seeds, the held-out ones (``pool``:
   every setting's held-out runs). A seed that picked a setting is never a reported seed: a winner with
   no held-out run yet shows no value (``Cell.pending``), while the selection is still reported. A cell
   with no selection-seed record keeps rule 4 unchanged.
6. **Grid edge.** With two or more learning rates in a grid (``LEARNING_RATE_KEYS``: ``train.lr``,
   else ``method.score_lr``), a winner at the lowest or highest of them is ``Cell.on_edge``: the grid
   must be extended before the winner is trusted.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from functools import cached_property

from ..record import ACHIEVED_SPARSITY_TOLERANCE, RunRecord

GRID_RULES = ("best-dev", "pool")
DEFAULT_GRID_RULE = "best-dev"
PAPER_RANKS = (8, 8)
#: Seeds that tune (pick a cell's setting) and are never reported; a cell without them keeps rule 4.
SELECTION_SEEDS: tuple[int, ...] = (0,)
#: The setting keys a learning-rate grid varies, in the order the edge check looks at them.
LEARNING_RATE_KEYS = ("train.lr", "method.score_lr")
_UNSET = "unset"


def at_paper_ranks(record: RunRecord) -> bool:
    """True for every non-PST record, and for PST at the paper's r1 = r2 = 8."""
    return record.kind != "pst" or record.ranks == PAPER_RANKS


def cell_sparsity_pct(record: RunRecord) -> float | None:
    """The sparsity (percent) of the cell a record belongs to (``RunRecord.cell_sparsity``): its target, or
    for a run whose sparsity a penalty sets, its nominal target only when the achieved sparsity lies within
    ``ACHIEVED_SPARSITY_TOLERANCE`` of it; None when it belongs to no cell."""
    found = record.cell_sparsity()
    return None if found is None else round(100.0 * found, 4)


def off_target(record: RunRecord) -> str | None:
    """Why a record joins no cell of its sparsity (a penalty set it, and it missed its nominal target), or None."""
    if record.cell_sparsity() is not None:
        return None
    achieved = record.achieved_sparsity
    reached = "no achieved sparsity on record" if achieved is None else f"achieved {100.0 * achieved:.2f}%"
    return (
        f"{record.name}: {reached} against its nominal {record.sparsity_pct:g}% (a penalty sets its sparsity; "
        f"tolerance {tolerance_text()}): in no cell"
    )


def tolerance_text() -> str:
    """`±1 point`: how far a penalty-set run's achieved sparsity may lie from its cell's."""
    points = 100.0 * ACHIEVED_SPARSITY_TOLERANCE
    return f"±{points:g} point{'' if points == 1 else 's'}"


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
    # the selection seeds applied to this cell (never shown); () when no record has one: rule 4 as before
    selection_seeds: tuple[int, ...] = ()

    @property
    def held_out(self) -> bool:
        """The cell was tuned on selection seeds and shows only held-out seeds."""
        return bool(self.selection_seeds)

    @property
    def runs(self) -> tuple[RunRecord, ...]:
        shown = self.candidates if self.rule == "pool" else (self.chosen,)
        return tuple(run for candidate in shown for run in candidate.runs if run.seed not in self.selection_seeds)

    @property
    def pending(self) -> bool:
        """A held-out cell whose selected setting has no held-out run yet: no value to show."""
        return self.held_out and not self.runs

    @property
    def grid(self) -> tuple[Candidate, ...]:
        """The settings that were ranked (held-out cells: those with a selection-seed run)."""
        return tuple(candidate for candidate in self.candidates if candidate.ranking_seeds)

    @property
    def tuning_seeds(self) -> tuple[int, ...]:
        """The seeds the settings were ranked on (the selection seeds present, for a held-out cell)."""
        return tuple(sorted({seed for candidate in self.grid for seed in candidate.ranking_seeds}))

    @cached_property
    def _edge(self) -> tuple[str | None, str | None, tuple]:
        if self.rule != "best-dev" or self.chosen.median_dev is None:
            return None, None, ()
        for key in LEARNING_RATE_KEYS:
            values = sorted({_number(c.runs[0].setting.get(key)) for c in self.grid} - {None})
            mine = _number(self.chosen.runs[0].setting.get(key))
            if len(values) < 2 or mine is None:
                continue
            if mine == values[0]:
                return "lowest", key, tuple(values)
            if mine == values[-1]:
                return "highest", key, tuple(values)
            return None, key, tuple(values)
        return None, None, ()

    @property
    def on_edge(self) -> str | None:
        """ "lowest" / "highest" when the winner's learning rate is the grid's lowest / highest of two or
        more (``LEARNING_RATE_KEYS``, the first that varies among the ranked settings); else None."""
        return self._edge[0]

    @property
    def edge_key(self) -> str | None:
        """The learning-rate key the grid varies (the one ``on_edge`` looked at), or None."""
        return self._edge[1]

    @property
    def edge_values(self) -> tuple[float, ...]:
        """The grid's distinct values of ``edge_key``, ascending."""
        return self._edge[2]

    @property
    def is_grid(self) -> bool:
        return len(self.candidates) > 1

    @property
    def setting(self) -> str:
        """The setting the cell shows: the winner's, or "pooled" for the pool rule over a grid."""
        if self.is_grid and self.rule == "pool":
            return "pooled: " + " | ".join(c.setting for c in self.candidates)
        return self.chosen.setting


def _number(value) -> float | None:
    """A setting's value as a number (a learning rate), or None."""
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


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


def _ranking_seeds(kept: dict[str, list[RunRecord]], selection: set[int]) -> tuple[set[int] | None, bool]:
    """(the seeds settings are ranked on, None for each setting's own; whether the cell is held-out).

    Held-out (a selection seed is present): the selection seeds every tuned setting has, else each
    setting's own selection seeds. Otherwise rule 4: the seeds every setting has when a grid shares any."""
    seeds = [{run.seed for run in runs} for runs in kept.values()]
    tuned = [found & selection for found in seeds if found & selection]
    if tuned:
        return (set.intersection(*tuned) or set().union(*tuned)), True
    common = set.intersection(*seeds)
    return (common if common and len(kept) > 1 else None), False


def select_cell(
    key: Hashable,
    records: list[RunRecord],
    rule: str = DEFAULT_GRID_RULE,
    selection_seeds: Iterable[int] | None = None,
) -> Cell:
    """Apply the policy to the records of one cell (``selection_seeds``: None for ``SELECTION_SEEDS``)."""
    if rule not in GRID_RULES:
        raise ValueError(f"grid rule {rule!r}: choose one of {', '.join(GRID_RULES)}")
    selection = set(SELECTION_SEEDS if selection_seeds is None else selection_seeds)
    keys = distinguishing_keys(records)
    by_setting: dict[str, list[RunRecord]] = {}
    for record in records:
        by_setting.setdefault(setting_text(record, keys), []).append(record)
    kept, duplicates = {}, []
    for setting in sorted(by_setting):
        kept[setting], dropped = _one_per_seed(by_setting[setting])
        duplicates += dropped
    ranking_seeds, held_out = _ranking_seeds(kept, selection)
    candidates = [_candidate(setting, runs, ranking_seeds) for setting, runs in kept.items()]
    reserved = tuple(sorted(selection)) if held_out else ()
    return Cell(key, _best(candidates), tuple(candidates), tuple(duplicates), rule, reserved)


def select_cells(
    records: Iterable[RunRecord],
    cell_of: Callable[[RunRecord], Hashable | None],
    rule: str = DEFAULT_GRID_RULE,
    selection_seeds: Iterable[int] | None = None,
) -> dict[Hashable, Cell]:
    """{cell key: Cell} for every record ``cell_of`` places in a cell (None: not in this report)."""
    grouped: dict[Hashable, list[RunRecord]] = {}
    for record in records:
        key = cell_of(record)
        if key is not None:
            grouped.setdefault(key, []).append(record)
    seeds = None if selection_seeds is None else tuple(selection_seeds)
    return {key: select_cell(key, runs, rule, seeds) for key, runs in grouped.items()}


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


def describe_selection_seeds(seeds: Iterable[int] | None) -> str:
    """The note on selection seeds vs held-out seeds (rule 5)."""
    seeds = tuple(sorted(SELECTION_SEEDS if seeds is None else seeds))
    if not seeds:
        return "Selection seeds: none (`--selection-seeds` given empty): every cell is ranked and shown as above."
    named = ", ".join(str(seed) for seed in seeds)
    return (
        f"Selection seeds (`--selection-seeds {' '.join(str(s) for s in seeds)}`): in a cell with a run on seed "
        f"{named}, the settings are ranked on those runs only and the cell shows the winner's runs on the other "
        "(held-out) seeds, never a seed that picked the setting; a cell without such a run is selected as above."
    )
