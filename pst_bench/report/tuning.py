"""What each table's notes say about how its cells were tuned (issue 21's evidence protocol).

- **Budget.** Per cell, how many settings (learning-rate points of its grid) were ranked and on which
  seeds; two methods of one model, task and sparsity with unequal numbers are flagged loudly, since
  the better-tuned method is favoured whatever it computes.
- **Edge.** A cell whose winner is the lowest or highest learning rate of its grid
  (``Cell.on_edge``): the grid must be extended before the winner is trusted.
- **Pending.** A held-out cell whose selected setting has no held-out run yet (``Cell.pending``).
- **Dirty.** Runs from uncommitted code (``RunRecord.dirty``): marked ``§``; claims refuse such cells.

The tables name each cell (``Tuned``); this module only words the notes, so ``tables.py`` stays the
layout and these rules stay in one place.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .selection import Cell

DIRTY_MARK = "§"
UNEQUAL_FLAG = "**UNEQUAL TUNING BUDGET**"


@dataclass(frozen=True)
class Tuned:
    """A cell of a table as its notes name it: ``group`` (model, task, sparsity) and ``member`` (the
    method, or the rank pair) inside the group."""

    group: str
    member: str
    cell: Cell

    @property
    def name(self) -> str:
        return f"{self.group} {self.member}".strip()

    @property
    def points(self) -> int:
        """How many settings were ranked (each a point of the cell's learning-rate grid)."""
        return len(self.cell.grid)


def _seeds_text(seeds: Iterable[int]) -> str:
    seeds = list(seeds)
    return f"seed{'s' if len(seeds) != 1 else ''} {', '.join(str(seed) for seed in seeds)}"


def _number_text(value: float) -> str:
    return f"{value:g}"


def budget_notes(tuned: list[Tuned]) -> list[str]:
    """The tuning budget of every cell, grouped by model, task and sparsity; then one loud line per group
    whose methods had unequal numbers of settings."""
    groups: dict[str, list[Tuned]] = {}
    for item in tuned:
        groups.setdefault(item.group, []).append(item)
    parts, unequal = [], []
    for group, items in sorted(groups.items()):
        items = sorted(items, key=lambda t: t.member)
        seeds = {t.cell.tuning_seeds for t in items}
        if len(seeds) == 1:
            members = ", ".join(f"{t.member}: {t.points}" for t in items)
            parts.append(f"{group} ({_seeds_text(next(iter(seeds)))}): {members}")
        else:
            members = ", ".join(f"{t.member}: {t.points} ({_seeds_text(t.cell.tuning_seeds)})" for t in items)
            parts.append(f"{group}: {members}")
        if len({t.points for t in items}) > 1:
            counts = ", ".join(f"{t.member} {t.points} setting{'s' if t.points != 1 else ''}" for t in items)
            unequal.append(
                f"{UNEQUAL_FLAG} {group}: {counts}. The methods were not tuned alike, so a difference "
                "between them may be the tuning, not the method: give each as many learning-rate points (the "
                "protocol pads a cell's smaller grids)."
            )
    if not parts:
        return []
    head = (
        "Tuning budget (settings ranked per cell, each a learning-rate point, and the seeds they were ranked "
        "on; held-out cells rank on the selection seeds only): "
    )
    return [head + "; ".join(parts) + ".", *unequal]


def edge_notes(tuned: list[Tuned]) -> list[str]:
    """One line listing every cell whose winner lies on its grid's edge."""
    lines = []
    for item in sorted(tuned, key=lambda t: t.name):
        cell = item.cell
        if cell.on_edge is None:
            continue
        values = ", ".join(_number_text(v) for v in cell.edge_values)
        lines.append(f"{item.name}: {cell.chosen.setting} is the {cell.on_edge} {cell.edge_key} of {values}")
    if not lines:
        return []
    return ["Winner on the grid's edge (extend the grid past it before trusting the cell): " + "; ".join(lines) + "."]


def pending_notes(tuned: list[Tuned]) -> list[str]:
    """One line listing the held-out cells whose selected setting has no held-out run yet."""
    lines = [
        f"{t.name}: {t.cell.chosen.setting or 'its one setting'} (ranked on {_seeds_text(t.cell.tuning_seeds)})"
        for t in sorted(tuned, key=lambda t: t.name)
        if t.cell.pending
    ]
    if not lines:
        return []
    return ["Selected, held-out seeds pending (no value shown until a held-out seed runs): " + "; ".join(lines) + "."]


def dirty_note(runs: int) -> list[str]:
    """The note on runs from uncommitted code, when there are any."""
    if not runs:
        return []
    return [
        f"`{DIRTY_MARK}`: {runs} run{'s' if runs != 1 else ''} from uncommitted code (`git.dirty` in the record; "
        "`dirty_runs` in the cells CSV); claims refuse such cells."
    ]
