"""Claims 6-7: questions the paper never asked, about the baselines beyond it (issue 24), checked on Table 2's
cells by the same rules as the paper's claims 1-5 (``report.claim_rules``).

Both read claim 1's sparsities: every (task, sparsity ≥ ``CLAIM1_MIN_SPARSITY`` = 60%) cell of one model
where the claim's methods have a run. A cell counts only when the task's Fine-tune cell learned (the
dense-share reference) and each of the claim's methods learned there on ≥ ``MIN_SEEDS`` = 5 held-out seeds
(``learn_failure``: no run from uncommitted code, none a constant predictor, every run 2 points above the
constant and at 0.6 of Fine-tune's mean), and when their runs trained on one training budget (``budget``: data,
epochs, steps, batch; one-shot methods calibrate before it, on no extra step). Each comparison
``first − second`` is paired per seed in each cell, averaged per seed over the counted cells, on the seeds
every counted cell has (≥ 5), and decided by its Student-t interval against 0 (``above``). A claim needs ≥
``BEYOND_CELLS`` = 2 counted cells; else ``not enough runs``. Cells that do not count are listed in the
details, outside every average, with each counted cell's intervals on its own seeds and its tuning budget
(the number of settings each method ranked; unequal numbers flagged, as in the tables' notes).

6. PST − Wanda (gradual): holds when the interval lies above 0, does not hold when it lies below 0.
7. PST − Wanda (one-shot), PST − SparseGPT, MvP − Wanda (one-shot), MvP − SparseGPT: holds only when every
   one of the four intervals lies above 0 (each training-time method beats each prune-once method), does not
   hold when any lies below 0, else inconclusive.
"""

from __future__ import annotations

from .claim_rules import (
    BEYOND_CELLS,
    CLAIM1_MIN_SPARSITY,
    CLAIM6_PAIRS,
    CLAIM7_PAIRS,
    MIN_SEEDS,
    TOO_FEW,
    Table2View,
    Verdict,
    above,
    combine,
    compared_cells,
    count_text,
    interval_part,
    own_intervals,
    pct,
    pooled_differences,
    shared_seeds,
    tuning_line,
)

__all__ = ["claim6", "claim7"]


def _labels(pairs) -> tuple[str, ...]:
    """The claim's methods: the first sides of its pairs, then the second sides."""
    return tuple(dict.fromkeys([*(first for first, _ in pairs), *(second for _, second in pairs)]))


def _budget_problem(view: Table2View, sparsity: str, column: str, labels) -> str | None:
    """Why the claim's cells at (sparsity, column) did not train alike (None when they share one budget)."""
    budgets = {label: view.get(label, sparsity, column).budget for label in labels}
    if len(set(budgets.values())) == 1 and " | " not in next(iter(budgets.values())):
        return None
    shown = "; ".join(f"{label}: {budget}" for label, budget in budgets.items())
    return f"unequal training budgets, not like with like ({shown})"


def _counted(view: Table2View, labels, baselines) -> tuple[list[tuple[str, str]], list[str]]:
    """The (sparsity, column) cells of claim 1's sparsities where a baseline ran and every label learned alike,
    and why each other such cell does not count."""
    found = {(s, c) for label, s, c in view.by_key if label in baselines and pct(s) >= CLAIM1_MIN_SPARSITY}
    counted, failures = [], []
    for sparsity, column in sorted(found, key=lambda key: (key[1], pct(key[0]))):
        problems = view.problems(sparsity, column, labels, MIN_SEEDS)
        if not problems:
            problems = [why for why in (_budget_problem(view, sparsity, column, labels),) if why]
        if problems:
            failures.append(f"not counted: {column} {sparsity}: {'; '.join(problems)}")
        else:
            counted.append((sparsity, column))
    return counted, failures


def paired_claim(number: int, view: Table2View, model: str, pairs: tuple[tuple[str, str], ...]) -> Verdict:
    """A claim that every ``first − second`` of ``pairs`` is above 0 on the counted cells (module docstring)."""
    labels = _labels(pairs)
    counted, failures = _counted(view, labels, {second for _, second in pairs})
    seeds = shared_seeds([view.get(label, s, c) for s, c in counted for label in labels])
    count = count_text(len(counted), len({c for _, c in counted}), seeds)
    if len(counted) < BEYOND_CELLS or len(seeds) < MIN_SEEDS:
        need = (
            f"need ≥ {BEYOND_CELLS} cells at ≥ {CLAIM1_MIN_SPARSITY:g}% where Fine-tune and {', '.join(labels)} "
            f"learned (≥ {MIN_SEEDS} runs each) on one training budget, and ≥ {MIN_SEEDS} shared seeds"
        )
        return Verdict(number, model, TOO_FEW, f"{count}; {need}", failures)
    keys = [(s, s, c) for s, c in counted]
    parts = [
        interval_part(
            f"{first} − {second} > 0",
            pooled_differences(view.paired(first, second, keys)),
            seeds,
            lambda i: above(i, 0.0),
        )
        for first, second in pairs
    ]
    details = [
        own_intervals(
            f"{c} {s}",
            [(f"{first} − {second}", view.get(first, s, c), view.get(second, s, c)) for first, second in pairs],
        )
        for s, c in counted
    ]
    details += [tuning_line(view, s, c, labels) for s, c in counted]
    summary = "; ".join([*(p.text() for p in parts), count])
    verdict = combine([p.verdict for p in parts])
    return Verdict(number, model, verdict, summary, details + failures, compared_cells(labels, counted))


def claim6(view: Table2View, model: str) -> Verdict:
    """PST's learned score beats gradual Wanda's at high sparsity: PST − Wanda > 0."""
    return paired_claim(6, view, model, CLAIM6_PAIRS)


def claim7(view: Table2View, model: str) -> Verdict:
    """Training-time pruning beats prune-once-then-fine-tune: each of PST, MvP minus each of one-shot Wanda,
    SparseGPT > 0."""
    return paired_claim(7, view, model, CLAIM7_PAIRS)
