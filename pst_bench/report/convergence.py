"""Did the runs the tables show converge? The last epoch's gain, cell by cell (``convergence.md``).

The schedule probe (:mod:`pst_bench.report.schedule`) chose each task's number of epochs on one seed at
one sparsity: long enough when the last epoch, trained wholly at the final sparsity, gains less than 0.5
point for MaP and PST. The cells the tables report were chosen after it, at other sparsities and learning
rates, so the same rule is read again here on every cell the tables show (the runs of its selected setting;
a tuned cell's held-out seeds only): each run's last-epoch gain, and their mean with a 95% Student-t
interval. A cell is *converged* when that mean is under the limit and *still gaining* when it is not; one
run's gain moves in whole dev examples (1/872 of SST-2's accuracy each), so the mean over seeds is the
number to read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..record import RunRecord
from .cells import COMMAND, fmt_diff, fmt_sparsity
from .labels import label_of
from .paper import task_column
from .schedule import DEFAULT_LIMIT, Curve, curve_of
from .selection import DEFAULT_GRID_RULE, at_paper_ranks, cell_sparsity_pct, select_cells
from .stats import Interval, mean_interval


@dataclass(frozen=True)
class CellConvergence:
    """The last-epoch gains of one cell's shown runs."""

    model: str
    task: str
    sparsity: float  # percent
    method: str  # label
    curves: tuple[Curve, ...]

    @property
    def gains(self) -> list[float]:
        return [c.last_gain for c in self.curves]

    @property
    def interval(self) -> Interval:
        return mean_interval(self.gains)

    def verdict(self, limit: float) -> str:
        if not all(c.last_epoch_at_final_sparsity for c in self.curves):
            return "a last epoch not wholly at the final sparsity: the schedule is too short"
        return "converged" if self.interval.mean < limit else "still gaining"


def cell_convergence(
    records: Iterable[RunRecord], rule: str = DEFAULT_GRID_RULE, selection_seeds: tuple[int, ...] | None = None
) -> list[CellConvergence]:
    """Every shown cell whose runs all have a last-epoch gain (two or more evaluated epochs), in table order."""

    def cell_of(record: RunRecord):
        pct = cell_sparsity_pct(record)
        # Table 2's cells: PST at the paper's ranks (Table 4's other ranks are cells of their own there)
        return None if pct is None or not at_paper_ranks(record) else (record.model, record.task, pct, label_of(record))

    cells = select_cells(records, cell_of, rule, selection_seeds)
    out = []
    for (model, task, pct, label), cell in sorted(cells.items(), key=lambda item: item[0]):
        curves = tuple(curve_of(run) for run in sorted(cell.runs, key=lambda run: run.seed))
        if curves and all(c.last_gain is not None for c in curves):
            out.append(CellConvergence(model, task, pct, label, curves))
    return out


def not_converged(cells: list[CellConvergence], limit: float = DEFAULT_LIMIT) -> dict[tuple[str, str, str, str], str]:
    """{(model, column, sparsity, label): verdict} of the cells that did not converge, keyed as the claims name
    the cells they compared (``claim_rules.Verdict.cells``: ``SST-2``, ``90%``)."""
    found = {}
    for c in cells:
        verdict = c.verdict(limit)
        if verdict != "converged":  # label_of already names the full score PST, as Table 2 does
            found[(c.model, task_column(c.task), fmt_sparsity(c.sparsity), c.method)] = verdict
    return found


def convergence_markdown(cells: list[CellConvergence], runs_dir: str, limit: float = DEFAULT_LIMIT) -> str:
    out = [
        "# Convergence of the runs the tables show",
        "",
        f"Built by `{COMMAND}` from the records in `{runs_dir}`: for every cell the tables show (its selected "
        "setting's runs; a tuned cell's held-out seeds only), the last epoch's gain of each run, the dev value "
        "after the last epoch minus after the one before (the task's metric x100, a loss negated), and their "
        f"mean with a 95% Student-t interval. The schedule probe chose each task's epochs by the rule that this "
        f"gain stays under {limit:g} point (`results/schedule/schedule.md`, one seed at one sparsity); here the "
        f"rule is read on every cell: **converged** when the mean is under {limit:g}, **still gaining** when not. "
        "One run's gain moves in whole dev examples, so read the mean.",
        "",
    ]
    if not cells:
        return "\n".join([*out, "No cell whose runs evaluated two or more epochs yet.", ""])
    out += [
        "| Model | Task | Sparsity | Method | Last epoch's gain: mean [95% CI] | Per seed | Verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in cells:
        per_seed = ", ".join(f"{curve.run.seed}: {fmt_diff(gain)}" for curve, gain in zip(c.curves, c.gains))
        out.append(
            f"| {c.model} | {c.task} | {fmt_sparsity(c.sparsity)} | {c.method} | "
            f"{c.interval.text(signed=True)} | {per_seed} | {c.verdict(limit)} |"
        )
    gaining = [c for c in cells if c.verdict(limit) != "converged"]
    summary = (
        f"{len(cells) - len(gaining)} of {len(cells)} cells converged"
        + (": not " + "; ".join(f"{c.task} {fmt_sparsity(c.sparsity)} {c.method}" for c in gaining) if gaining else "")
        + "."
    )
    return "\n".join([*out, "", summary, ""])
