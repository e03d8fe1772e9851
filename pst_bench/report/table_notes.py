"""What a table's notes say about how the selection policy filled its cells: the grids it resolved, the
duplicates it left out (:func:`selection_notes`), and the tuning budget, grid edges and pending held-out
cells (:func:`tuning_notes`, worded by :mod:`pst_bench.report.tuning`)."""

from __future__ import annotations

from .cells import fmt_number, fmt_sparsity
from .paper import task_column
from .selection import Cell
from .table_specs import Spec
from .tuning import Tuned, budget_notes, edge_notes, pending_notes


def key_text(field: str, value) -> str:
    """A row key as displayed."""
    return fmt_sparsity(value) if field == "sparsity" else str(value)


def _cell_text(spec: Spec, cell: Cell) -> str:
    """`bert-base PST 90% SST-2`: a policy cell as the notes name it."""
    model, keys = cell.key[0], cell.key[1 : 1 + len(spec.keys)]
    task, extra = cell.key[1 + len(spec.keys)], cell.key[2 + len(spec.keys) :]
    shown = [key_text(f, v) if f in ("label", "sparsity", "task") else f"{f}={v}" for f, v in zip(spec.keys, keys)]
    return " ".join(
        [
            model,
            *shown,
            *([] if "task" in spec.keys else [task_column(task)]),
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


def tuning_notes(spec: Spec, cells: list[Cell]) -> list[str]:
    """The tuning budget per cell, unequal budgets, winners on a grid's edge and pending held-out cells."""
    tuned = []
    for cell in cells:
        n = len(spec.keys)
        fields = dict(zip(spec.keys, cell.key[1 : 1 + n]))
        column = task_column(cell.key[1 + n])
        fields.pop("task", None)
        sparsity = fields.pop("sparsity", None)
        sparsity = cell.chosen.runs[0].sparsity_pct if sparsity is None else sparsity
        member = [key_text(f, v) if f == "label" else f"{f}={v}" for f, v in fields.items()]
        member += [f"{f}={v}" for f, v in zip(spec.cell_fields, cell.key[2 + n :])]
        tuned.append(Tuned(f"{cell.key[0]} {column} {fmt_sparsity(sparsity)}", " ".join(member), cell))
    return [*budget_notes(tuned), *edge_notes(tuned), *pending_notes(tuned)]
