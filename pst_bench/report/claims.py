"""The paper's qualitative claims, checked on the records at hand (``results/tables/claims.md``).

Each check is code over the cells of the tables that ``make tables`` builds (so over the runs the one
selection policy shows) and, for claim 5, over the per-seed mask distances (``report.masks``).

Only cells that learned enter a claim (``report.claim_rules``): enough runs, none from uncommitted
code (refused), none a constant predictor, every run ``LEARN_MARGIN`` = 2 points above the constant
predictor and at least ``DENSE_SHARE`` = 0.6 of the Fine-tune cell's mean. The others are listed in
the claim's details as documented failures, outside every average. Every comparison is a paired
per-seed difference (same seed, both methods), decided by the Student-t interval of its mean
(``report.stats``): ``holds``, ``does not hold``, ``inconclusive`` (the interval spans the claim's
boundary) or ``not enough runs`` (with what is missing).

1. PST ≥ MaP and PST ≥ MvP − 1 point at high sparsity, with ≤ 2% of MvP's trainable parameters
   (Table 2): over every (task, sparsity ≥ 60%) cell where Fine-tune, MaP, MvP and PST all learned
   (≥ 5 runs each), per seed the mean over those cells of PST − MaP and of PST − MvP, on the seeds
   every cell has; ≥ 3 cells over ≥ 2 tasks and ≥ 5 shared seeds.
2. At 50%, MaP ≥ Fine-tune − 1 point and PST < MaP (Table 2): the same over ≥ 2 tasks.
3. The full score |W| + AB + (R + C) beats each one-term-less variant (Table 5): per variant full −
   variant on ≥ 3 seeds, at the variant's rank setting closest to the full score.
4. The rank grid r1 × r2 changes the result by little (Table 4): every rank pair − (8, 8) lies within
   ± max(the paper's spread on that task, 1 point); ≥ 4 pairs with ≥ 3 seeds each.
5. PST's masks are closer to MaP's than to MvP's (Figure 5): per same-seed trio at 90%,
   dist(PST, MvP) − dist(PST, MaP) > 0; ≥ 3 trios.

Claims 6-7 ask what the paper never did, about the baselines beyond it (``report.claims_baselines``).
"""

from __future__ import annotations

import math

from .cells import CellLine, cell_lines, fmt_number, paired_differences, per_seed_values
from .claim_rules import (
    CLAIM1_CELLS,
    CLAIM1_MIN_SPARSITY,
    CLAIM1_TASKS,
    CLAIM2_SPARSITY,
    CLAIM2_TASKS,
    CLAIM4_MIN_PAIRS,
    CLAIM4_REFERENCE,
    CLAIM5_MIN_TRIOS,
    CLAIM5_SPARSITY,
    CLAIMS,
    DROP_ONE,
    FAILS,
    FULL,
    HOLDS,
    INCONCLUSIVE,
    MIN_SEEDS,
    MIN_SEEDS_ABLATION,
    PARAM_SHARE,
    SPARSE,
    TOLERANCE,
    TOO_FEW,
    Part,
    Table2View,
    Verdict,
    above,
    at_least,
    below,
    combine,
    compared_cells,
    count_text,
    interval_part,
    learn_failure,
    number,
    own_intervals,
    pct,
    pooled_differences,
    shared_seeds,
    spread_text,
    tuning_line,
    within,
)
from .claims_baselines import claim6, claim7
from .claims_text import claims_markdown
from .masks import MaskPair
from .paper import GLUE, PaperCell
from .selection import PAPER_RANKS
from .table_build import Built

__all__ = [
    "CLAIMS",
    "FAILS",
    "HOLDS",
    "INCONCLUSIVE",
    "TOO_FEW",
    "Verdict",
    "check_claims",
    "claims_markdown",
]


def _cells(built: list[Built], number: int) -> list[CellLine]:
    table = next((b for b in built if b.spec.number == number), None)
    return [] if table is None or not len(table.cells) else cell_lines(table.cells)


def _mean(values) -> float:
    values = list(values)
    return math.fsum(values) / len(values)


def _cell_mean(cell: CellLine) -> float:
    return _mean(per_seed_values(cell).values())


def _range_text(counts: list[int]) -> str:
    """`3` or `3–5`: how many seeds stand behind several intervals."""
    return str(min(counts)) if min(counts) == max(counts) else f"{min(counts)}–{max(counts)}"


def _params_part(view: Table2View, counted: list[tuple[str, str]]) -> tuple[str, str]:
    """Claim 1(c): (verdict, text) of PST's trainable parameters against MvP's, the largest share of the cells."""
    name = f"PST's trainable parameters ≤ {100 * PARAM_SHARE:g}% of MvP's"
    shares = []
    for sparsity, column in counted:
        pst = number(view.get("PST", sparsity, column).params_m)
        mvp = number(view.get("MvP", sparsity, column).params_m)
        if pst is None or not mvp:
            return INCONCLUSIVE, f"{name}: unknown (no parameter count) → {INCONCLUSIVE}"
        shares.append((pst / mvp, pst, mvp))
    share, pst, mvp = max(shares)
    verdict = HOLDS if share <= PARAM_SHARE else FAILS
    return verdict, f"{name}: {fmt_number(pst)} M = {fmt_number(100 * share, 1)}% of {fmt_number(mvp)} M → {verdict}"


def claim1(view: Table2View, model: str) -> Verdict:
    found = {(s, c) for label, s, c in view.by_key if label in SPARSE and pct(s) >= CLAIM1_MIN_SPARSITY}
    counted, failures = [], []
    for sparsity, column in sorted(found, key=lambda key: (key[1], pct(key[0]))):
        problems = view.problems(sparsity, column, SPARSE, MIN_SEEDS)
        if problems:
            failures.append(f"not counted: {column} {sparsity}: {'; '.join(problems)}")
        else:
            counted.append((sparsity, column))
    tasks = {column for _, column in counted}
    seeds = shared_seeds([view.get(label, s, c) for s, c in counted for label in SPARSE])
    count = count_text(len(counted), len(tasks), seeds)
    if len(counted) < CLAIM1_CELLS or len(tasks) < CLAIM1_TASKS or len(seeds) < MIN_SEEDS:
        need = f"need ≥ {CLAIM1_CELLS} cells over ≥ {CLAIM1_TASKS} tasks and ≥ {MIN_SEEDS} shared seeds"
        return Verdict(1, model, TOO_FEW, f"{count}; {need}", failures)
    keys = [(s, s, c) for s, c in counted]
    parts = [
        interval_part(
            "PST − MaP ≥ 0", pooled_differences(view.paired("PST", "MaP", keys)), seeds, lambda i: at_least(i, 0.0)
        ),
        interval_part(
            f"PST − MvP ≥ −{TOLERANCE:g}",
            pooled_differences(view.paired("PST", "MvP", keys)),
            seeds,
            lambda i: at_least(i, -TOLERANCE),
        ),
    ]
    params_verdict, params_text = _params_part(view, counted)
    details = [
        own_intervals(
            f"{c} {s}",
            [(f"PST − {other}", view.get("PST", s, c), view.get(other, s, c)) for other in ("MaP", "MvP")],
        )
        for s, c in counted
    ]
    details += [tuning_line(view, s, c, SPARSE) for s, c in counted]
    verdict = combine([p.verdict for p in parts] + [params_verdict])
    summary = "; ".join([*(p.text() for p in parts), params_text, count])
    return Verdict(1, model, verdict, summary, details + failures, compared_cells(SPARSE, counted))


def claim2(view: Table2View, model: str) -> Verdict:
    at = CLAIM2_SPARSITY
    columns = sorted({c for label, s, c in view.by_key if label in ("MaP", "PST") and s == at})
    counted, failures = [], []
    for column in columns:
        problems = view.problems(at, column, ("MaP", "PST"), MIN_SEEDS)
        fine_tune = learn_failure(view.get("Fine-tune", "0%", column), column, MIN_SEEDS)  # compared: ≥ 5 runs
        if fine_tune and not any(p.startswith("Fine-tune:") for p in problems):
            problems.insert(0, f"Fine-tune: {fine_tune}")
        if problems:
            failures.append(f"not counted: {column} {at}: {'; '.join(problems)}")
        else:
            counted.append(column)
    keys = (("Fine-tune", "0%"), ("MaP", at), ("PST", at))
    seeds = shared_seeds([view.get(label, s, c) for c in counted for label, s in keys])
    count = count_text(len(counted), len(counted), seeds)
    if len(counted) < CLAIM2_TASKS or len(seeds) < MIN_SEEDS:
        need = f"need ≥ {CLAIM2_TASKS} tasks and ≥ {MIN_SEEDS} shared seeds"
        return Verdict(2, model, TOO_FEW, f"{count}; {need}", failures)
    parts = [
        interval_part(
            f"MaP − Fine-tune ≥ −{TOLERANCE:g}",
            pooled_differences(view.paired("MaP", "Fine-tune", [(at, "0%", c) for c in counted])),
            seeds,
            lambda i: at_least(i, -TOLERANCE),
        ),
        interval_part(
            "PST − MaP < 0",
            pooled_differences(view.paired("PST", "MaP", [(at, at, c) for c in counted])),
            seeds,
            lambda i: below(i, 0.0),
        ),
    ]
    details = [
        own_intervals(
            f"{c} {at}",
            [
                ("MaP − Fine-tune", view.get("MaP", at, c), view.get("Fine-tune", "0%", c)),
                ("PST − MaP", view.get("PST", at, c), view.get("MaP", at, c)),
            ],
        )
        for c in counted
    ]
    details += [tuning_line(view, at, c, ("MaP", "PST")) for c in counted]
    summary = "; ".join([*(p.text() for p in parts), count])
    cells = compared_cells(["Fine-tune"], [("0%", c) for c in counted])
    cells += compared_cells(["MaP", "PST"], [(at, c) for c in counted])
    return Verdict(2, model, combine([p.verdict for p in parts]), summary, details + failures, cells)


def _ranks(cell: CellLine) -> tuple[int, int]:
    return int(str(cell.r1)), int(str(cell.r2))


def _best_setting(mine, variant, full, dense, failures) -> tuple | None:
    """(mean, ranks, [(column, full cell, variant cell)], {seed: full − variant}) of the variant's rank setting
    closest to the full score (the claim's hardest test) among those with ≥ 3 seeds shared with it; None if none."""
    candidates = []
    for ranks in sorted({_ranks(c) for c in mine if c.method == variant}):
        pairs = []
        for column in sorted(full):
            cell = next((c for c in mine if (c.method, _ranks(c), c.column) == (variant, ranks, column)), None)
            reason = None if cell is None else learn_failure(cell, column, MIN_SEEDS_ABLATION, dense[column])
            if reason:
                failures.append(f"not counted: {column} {variant} (r1={ranks[0]}, r2={ranks[1]}): {reason}")
            elif cell is not None:
                pairs.append((column, full[column], cell))
        diffs = pooled_differences([(f, c) for _, f, c in pairs])
        if len(diffs) >= MIN_SEEDS_ABLATION:
            candidates.append((_mean(diffs.values()), ranks, pairs, diffs))
        elif pairs:
            failures.append(
                f"not counted: {variant} (r1={ranks[0]}, r2={ranks[1]}): {len(diffs)} seed(s) shared with {FULL} "
                f"< {MIN_SEEDS_ABLATION}"
            )
    return min(candidates, key=lambda found: found[0]) if candidates else None


def claim3(cells: list[CellLine], view: Table2View, model: str) -> Verdict:
    mine = [c for c in cells if c.model == model and c.method in (FULL, *DROP_ONE)]
    failures, full, dense = [], {}, {}
    for column in sorted({c.column for c in mine}):
        reference, why = view.dense(column)
        cell = next((c for c in mine if c.method == FULL and c.column == column), None)
        reason = why or learn_failure(cell, column, MIN_SEEDS_ABLATION, reference)
        if reason:
            failures.append(f"not counted: {column} (every variant): {'' if why else FULL + ': '}{reason}")
        else:
            full[column], dense[column] = cell, reference
    chosen = {variant: _best_setting(mine, variant, full, dense, failures) for variant in DROP_ONE}
    missing = [variant for variant, found in chosen.items() if found is None]
    if missing:
        summary = (
            f"missing: {', '.join(missing)} (need every one of {', '.join(DROP_ONE)} learned on ≥ {MIN_SEEDS_ABLATION} "
            f"seeds shared with {FULL}, on a task where {FULL} learned)"
        )
        return Verdict(3, model, TOO_FEW, summary, failures)
    parts = []
    for variant, (_, ranks, pairs, diffs) in chosen.items():
        name = f"{FULL} − {variant} > 0 ({', '.join(c for c, _, _ in pairs)}; r1={ranks[0]}, r2={ranks[1]})"
        parts.append(interval_part(name, diffs, sorted(diffs), lambda i: above(i, 0.0)))
    tasks = sorted({column for _, _, pairs, _ in chosen.values() for column, _, _ in pairs})
    seeds = sorted({p.interval.n for p in parts})
    count = f"{len(tasks)} task(s), {_range_text(seeds)} seeds"
    details = []
    for column in tasks:
        means = {FULL: _cell_mean(full[column])}
        for variant, (_, _, pairs, _) in chosen.items():
            for col, _, cell in pairs:
                if col == column:
                    means[variant] = _cell_mean(cell)
        details.append(
            f"{column}: means "
            + ", ".join(f"{v} {fmt_number(m)}" for v, m in means.items())
            + f"; spread of these means {fmt_number(max(means.values()) - min(means.values()))} vs {FULL}'s own "
            f"seed spread ({spread_text(list(per_seed_values(full[column]).values()))})"
        )
    summary = "; ".join([*(p.text() for p in parts), count])
    # Table 2 holds the full score as PST, and only the paper's ranks
    cells = [(column, full[column].sparsity, "PST") for column in tasks]
    cells += [
        (column, cell.sparsity, variant)
        for variant, (_, ranks, pairs, _) in chosen.items()
        if ranks == PAPER_RANKS
        for column, _, cell in pairs
    ]
    return Verdict(3, model, combine([p.verdict for p in parts]), summary, details + failures, cells)


def _grid_parts(grid, reference, task, dense, limit, failures) -> list[tuple[CellLine, Part]]:
    """(cell, its Part) of every rank pair that learned, compared with the reference pair on ≥ 3 seeds."""
    parts = []
    for ranks, cell in sorted(grid.items()):
        if ranks == CLAIM4_REFERENCE:
            continue
        reason = learn_failure(cell, task, MIN_SEEDS_ABLATION, dense)
        diffs = {} if reason else paired_differences(cell, reference)
        if not reason and len(diffs) < MIN_SEEDS_ABLATION:
            reason = f"{len(diffs)} seed(s) shared with {CLAIM4_REFERENCE} < {MIN_SEEDS_ABLATION}"
        if reason:
            failures.append(f"not counted: {task} (r1, r2) = {ranks}: {reason}")
            continue
        name = f"{task} {ranks} − {CLAIM4_REFERENCE} within ±{fmt_number(limit)}"
        parts.append((cell, interval_part(name, diffs, sorted(diffs), lambda i: within(i, limit))))
    return parts


def claim4(cells: list[CellLine], view: Table2View, model: str, paper_spreads: dict[str, float]) -> Verdict:
    """Equivalence: every rank pair − (8, 8) per seed, inside ± max(the paper's spread on the task, 1 point)."""
    mine = [c for c in cells if c.model == model]
    checked, short, failures, details, cells = [], [], [], [], []
    for task in sorted({c.task for c in mine}):
        grid = {(int(str(c.column).split("=")[1]), int(str(c.r2))): c for c in mine if c.task == task}
        dense, why = view.dense(task)
        reference = grid.get(CLAIM4_REFERENCE)
        reason = learn_failure(reference, task, MIN_SEEDS_ABLATION, dense)
        if why or reason:
            short.append(f"{task}: {why or f'{CLAIM4_REFERENCE}: {reason}'}")
            continue
        paper = paper_spreads.get(task)
        limit = max(paper if paper is not None else 0.0, TOLERANCE)
        parts = _grid_parts(grid, reference, task, dense, limit, failures)
        if len(parts) < CLAIM4_MIN_PAIRS:
            short.append(
                f"{task}: {len(parts)} rank pair(s) compared with {CLAIM4_REFERENCE} (need {CLAIM4_MIN_PAIRS})"
            )
            continue
        verdict = combine([p.verdict for _, p in parts])
        widest = max((p for _, p in parts), key=lambda p: max(abs(p.interval.low), abs(p.interval.high)))
        seeds = sorted({p.interval.n for _, p in parts})
        checked.append(
            (
                verdict,
                f"{task} {verdict}: {len(parts)} rank pairs vs {CLAIM4_REFERENCE} on "
                f"{_range_text(seeds)} seeds, limit ±{fmt_number(limit)} (the paper's spread {fmt_number(paper)}, "
                f"at least {TOLERANCE:g} point); widest "
                f"{widest.name.split(' within')[0]} {widest.interval.text(signed=True)}",
            )
        )
        details += [p.text() for _, p in parts]
        if CLAIM4_REFERENCE == PAPER_RANKS:  # the other rank pairs are no Table 2 cell
            cells.append((task, reference.sparsity, "PST"))
        means = [_cell_mean(c) for c, _ in parts] + [_cell_mean(reference)]
        details.append(
            f"{task}: spread of the grid's means {fmt_number(max(means) - min(means))} vs {CLAIM4_REFERENCE}'s own "
            f"seed spread ({spread_text(list(per_seed_values(reference).values()))})"
        )
    if not checked:
        need = (
            f"need ≥ {CLAIM4_MIN_PAIRS} learned rank pairs with ≥ {MIN_SEEDS_ABLATION} seeds shared with a learned "
            f"{CLAIM4_REFERENCE}"
        )
        return Verdict(4, model, TOO_FEW, f"{'; '.join(short) or 'no rank grid'}; {need}", failures)
    summary = "; ".join(text for _, text in checked)
    details += [f"not checked: {s}" for s in short]
    return Verdict(4, model, combine([v for v, _ in checked]), summary, details + failures, cells)


def _learned_runs(view: Table2View) -> tuple[set[str], list[str]]:
    """The record files of the learned MaP, MvP and PST cells at claim 5's sparsity, and the cells that fail."""
    files, failures = set(), []
    sparsity = f"{CLAIM5_SPARSITY:g}%"
    for (label, s, column), cell in sorted(view.by_key.items()):
        if label in SPARSE and s == sparsity:
            dense, why = view.dense(column)
            reason = why or learn_failure(cell, column, 1, dense)
            if reason:
                failures.append(f"not counted: {column} {label} {sparsity}: {reason}")
            else:
                files.update(str(cell.files).split(";"))
    return files, failures


def _trio_text(task: str, seed: int, d: dict) -> str:
    line = f"{task} seed {seed}: PST–MaP {fmt_number(d['MaP', 'PST'])}%, PST–MvP {fmt_number(d['MvP', 'PST'])}%"
    if ("MaP", "MvP") in d:
        line += f", MaP–MvP {fmt_number(d['MaP', 'MvP'])}%"
        if d["MaP", "MvP"] < d["MaP", "PST"]:
            line += " (MvP's masks stayed close to |W|)"
    return line


def claim5(pairs: list[MaskPair], view: Table2View, model: str) -> Verdict:
    learned, failures = _learned_runs(view)
    trios: dict[tuple[str, int], dict[tuple[str, str], MaskPair]] = {}
    for p in pairs:
        if p.model == model and p.sparsity == CLAIM5_SPARSITY and p.shown:
            trios.setdefault((GLUE.get(p.task, (p.task,))[0], p.seed), {})[p.first, p.second] = p
    complete = {}
    for key, trio in sorted(trios.items()):
        runs = {name for p in trio.values() for name in (p.first_run, p.second_run)}
        if ("MaP", "PST") in trio and ("MvP", "PST") in trio and runs <= learned:
            complete[key] = {names: 100 * p.result.distance for names, p in trio.items()}
    count = f"{len(complete)} same-seed trio(s) at {CLAIM5_SPARSITY:g}% from learned cells"
    if len(complete) < CLAIM5_MIN_TRIOS:
        return Verdict(5, model, TOO_FEW, f"{count} (need {CLAIM5_MIN_TRIOS})", failures)
    gaps = {i: d["MvP", "PST"] - d["MaP", "PST"] for i, d in enumerate(complete.values())}
    part = interval_part("dist(PST, MvP) − dist(PST, MaP) > 0 (points)", gaps, sorted(gaps), lambda i: above(i, 0.0))
    to_map = _mean(d["MaP", "PST"] for d in complete.values())
    summary = f"{part.text()}; mean PST–MaP {fmt_number(to_map)}%, PST–MvP "
    summary += f"{fmt_number(_mean(d['MvP', 'PST'] for d in complete.values()))}%"
    moved = [d["MaP", "MvP"] for d in complete.values() if ("MaP", "MvP") in d]
    if moved:
        summary += f", MaP–MvP {fmt_number(_mean(moved))}%"
        if _mean(moved) < to_map:
            summary += " (MvP's masks stayed close to |W|; the claim says little here)"
    summary += f"; {count} on {', '.join(sorted({task for task, _ in complete}))}"
    details = [_trio_text(task, seed, d) for (task, seed), d in complete.items()]
    return Verdict(5, model, part.verdict, summary, details + failures)


def check_claims(built: list[Built], pairs: list[MaskPair], paper: list[PaperCell]) -> list[Verdict]:
    """Every claim (the paper's 1-5, then 6-7 beyond it) for every GLUE model with Table 2 cells, in model order."""
    table2 = _cells(built, 2)
    spreads = _paper_spreads(paper)
    verdicts = []
    for model in sorted({c.model for c in table2}):
        view = Table2View(table2, model)
        verdicts += [
            claim1(view, model),
            claim2(view, model),
            claim3(_cells(built, 5), view, model),
            claim4(_cells(built, 4), view, model, spreads),
            claim5(pairs, view, model),
            claim6(view, model),
            claim7(view, model),
        ]
    return verdicts


def _paper_spreads(paper: list[PaperCell]) -> dict[str, float]:
    """The paper's Table 4 spread (max − min over its nine rank pairs) per task column."""
    values: dict[str, list[float]] = {}
    for cell in paper:
        if cell.table == 4 and cell.model == "bert-base":
            values.setdefault(cell.task, []).append(cell.value)
    return {task: max(v) - min(v) for task, v in values.items() if len(v) >= 2}
