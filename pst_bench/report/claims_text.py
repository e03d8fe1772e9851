"""claims.md: the verdicts of ``report.claims`` with every rule, margin and the interval method spelled out."""

from __future__ import annotations

from collections.abc import Mapping

from .claim_rules import (
    BEYOND_CELLS,
    CLAIM1_CELLS,
    CLAIM1_MIN_SPARSITY,
    CLAIM1_TASKS,
    CLAIM2_SPARSITY,
    CLAIM2_TASKS,
    CLAIM4_MIN_PAIRS,
    CLAIM4_REFERENCE,
    CLAIM5_MIN_TRIOS,
    CLAIM5_SPARSITY,
    CLAIM6_PAIRS,
    CLAIM7_PAIRS,
    CLAIMS,
    DENSE_SHARE,
    DROP_ONE,
    FAILS,
    FULL,
    HOLDS,
    INCONCLUSIVE,
    LEARN_MARGIN,
    MIN_SEEDS,
    MIN_SEEDS_ABLATION,
    PARAM_SHARE,
    TOLERANCE,
    TOO_FEW,
    Verdict,
)
from .stats import METHOD


def convergence_caveat(verdict: Verdict, not_converged: Mapping[tuple[str, str, str, str], str]) -> str:
    """The cells a verdict compared that did not converge (``report.convergence``), as a caveat to its
    evidence; "" when every one converged. A caveat, not a refusal: such a cell's runs learned by the claim
    rules, but a longer schedule might still move the difference."""
    hits = []
    for column, sparsity, label in verdict.cells:
        why = not_converged.get((verdict.model, column, sparsity, label))
        if why is not None:
            hits.append(f"{column} {sparsity} {label} ({why})")
    return f"; caveat, not converged (`convergence.md`): {', '.join(hits)}" if hits else ""


def claims_markdown(
    verdicts: list[Verdict],
    records: int,
    runs_dir: str,
    not_converged: Mapping[tuple[str, str, str, str], str] | None = None,
) -> str:
    """claims.md; ``not_converged`` (``report.convergence.not_converged``) adds the convergence caveat."""
    out = [
        "# The paper's claims, checked on the records at hand",
        "",
        f"Built by `make tables` (`python -m pst_bench.report.tables`) from {records} results record"
        f"{'s' if records != 1 else ''} in `{runs_dir}`, through the tables' cells (the one run-selection "
        "policy) and the mask distances (`mask_distance.md`). The checks are code "
        "(`pst_bench/report/claims.py`, its rules in `pst_bench/report/claim_rules.py`). Values ×100 (points).",
        "",
        "Claims 1-5 are the paper's. Claims 6-7 are questions the paper never asked, about baselines it never ran "
        "(gradual and one-shot Wanda, SparseGPT; `pst_bench/report/claims_baselines.py`), checked by the same rules.",
        "",
        *rules_text(),
        "",
    ]
    if not verdicts:
        return "\n".join([*out, "No GLUE runs yet: no claim can be checked.", ""])
    for model in dict.fromkeys(v.model for v in verdicts):
        out += [f"## {model}", "", "| # | Claim | Verdict | Evidence |", "|---|---|---|---|"]
        mine = [v for v in verdicts if v.model == model]
        for v in mine:
            summary = v.summary + convergence_caveat(v, not_converged or {})
            claim, summary = (text.replace("|", "\\|") for text in (CLAIMS[v.number], summary))
            out.append(f"| {v.number} | {claim} | **{v.verdict}** | {summary} |")
        details = [(v.number, line) for v in mine for line in v.details]
        if details:
            out += ["", "Details:", ""]
            out += [f"- claim {number}: {line}" for number, line in details]
        out.append("")
    out += ["## What each check needs", "", *requirements_text(), ""]
    return "\n".join(out)


def rules_text() -> list[str]:
    """The two rules every claim shares: which cells count, and how an interval decides."""
    return [
        f"**A cell counts only if it learned**: it has enough runs (≥ {MIN_SEEDS} for claims 1-2 and 6-7, ≥ "
        f"{MIN_SEEDS_ABLATION} per variant for claims 3-4), none from uncommitted code (a cell with a `git.dirty` "
        "run is refused), none a constant predictor and each checked for it (a prediction summary on record); "
        f"every run beats the cell's constant predictor by ≥ {LEARN_MARGIN:g} points on the task's metric (a "
        f"regression task's constant scores 0) and keeps ≥ {DENSE_SHARE:g} × the mean of the same model and task's "
        "Fine-tune cell, which must itself beat the constant by the margin. Cells that fail are listed in the "
        "details, outside every average.",
        "",
        "**Verdicts** rest on paired per-seed differences (same seed, both methods) and the confidence interval of "
        f"their mean ({METHOD}): `{HOLDS}` when the interval lies on the claim's side of its boundary, `{FAILS}` "
        f"when it lies wholly on the other side, `{INCONCLUSIVE}` when it spans the boundary, `{TOO_FEW}` (with "
        "what is missing). Intervals read `mean [low, high] (n = seeds)`.",
        "",
        "**Convergence**: a decided verdict names, as a caveat after its evidence, every cell it compared whose "
        "runs were still gaining in their last epoch (`convergence.md`, the schedule's rule read on every cell): "
        "such a cell learned by the rules above, so it counts, but a longer schedule might move the difference.",
    ]


def requirements_text() -> list[str]:
    """Each claim's rule, with its constants."""
    return [
        f"- 1: every (task, sparsity ≥ {CLAIM1_MIN_SPARSITY:g}%) cell where Fine-tune, MaP, MvP and PST learned; "
        "per seed the mean over those cells of PST − MaP and of PST − MvP, on the seeds every cell has; ≥ "
        f"{CLAIM1_CELLS} cells over ≥ {CLAIM1_TASKS} tasks and ≥ {MIN_SEEDS} shared seeds. (a) PST − MaP ≥ 0: "
        f"holds if the interval's low end ≥ 0, does not if its high end < 0; (b) PST − MvP ≥ −{TOLERANCE:g} "
        f"(tolerance {TOLERANCE:g} point): the same against −{TOLERANCE:g}; (c) PST's trainable parameters ≤ "
        f"{100 * PARAM_SHARE:g}% of MvP's in every cell. Does not hold if any part does not, holds if all do, else "
        "inconclusive.",
        f"- 2: the same at {CLAIM2_SPARSITY} over ≥ {CLAIM2_TASKS} tasks (Fine-tune with ≥ {MIN_SEEDS} runs too): "
        f"MaP − Fine-tune ≥ −{TOLERANCE:g} (as 1b) and PST − MaP < 0 (holds if the high end < 0, does not if the "
        "low end > 0). The details of 1 and 2 give each counted cell's intervals on its own seeds and its tuning "
        "budget (settings ranked per method), flagged when unequal.",
        f"- 3: {FULL} − each of {', '.join(DROP_ONE)} per seed (mean over the tasks where both learned, on ≥ "
        f"{MIN_SEEDS_ABLATION} shared seeds), each variant at its rank setting closest to the full score; holds if "
        "every interval is above 0, does not if any is below 0, else inconclusive.",
        f"- 4: per task, every rank pair − {CLAIM4_REFERENCE} per seed (≥ {CLAIM4_MIN_PAIRS} pairs with ≥ "
        f"{MIN_SEEDS_ABLATION} seeds each); limit = max(the paper's spread on that task, {TOLERANCE:g} point); holds "
        "if every interval lies inside (−limit, +limit), does not if any lies wholly outside it, else inconclusive.",
        f"- 5: ≥ {CLAIM5_MIN_TRIOS} same-seed trios of MaP, MvP and PST masks at {CLAIM5_SPARSITY:g}% from learned "
        "cells; dist(PST, MvP) − dist(PST, MaP) per trio (Hamming distance, points): holds if the interval is above "
        "0, does not if below, else inconclusive. Where MaP–MvP is smaller than MaP–PST, MvP's masks barely left "
        "|W| and the claim says little.",
        f"- 6 and 7 (beyond the paper): every (task, sparsity ≥ {CLAIM1_MIN_SPARSITY:g}%) cell, claim 1's "
        "sparsities, where Fine-tune and each of the claim's methods learned, each method on ≥ "
        f"{MIN_SEEDS} held-out seeds, and where those methods trained on one training budget (data, epochs, "
        "steps, batch: the one-shot methods fine-tune as long as the others train); per seed the mean over those "
        f"cells of each difference below, on the seeds every cell has; ≥ {BEYOND_CELLS} cells and ≥ {MIN_SEEDS} "
        "shared seeds. 6: " + _differences(CLAIM6_PAIRS) + " (gradual Wanda): holds if the interval is above 0, "
        "does not if below, else inconclusive. 7: " + _differences(CLAIM7_PAIRS) + ": holds only if every one "
        "of the four intervals is above 0 (each training-time method beats each prune-once one), does not if any "
        "is below 0, else inconclusive. The details give each cell's intervals on its own seeds and its tuning "
        "budget (settings ranked per method), flagged when unequal: the protocol gives every method of a cell "
        "as many learning-rate points.",
    ]


def _differences(pairs) -> str:
    return ", ".join(f"{first} − {second}" for first, second in pairs)
