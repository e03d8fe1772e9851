"""claims.md's claims 6-7, beyond the paper (``pst_bench.report.claims_baselines``), on hand-made records: every
verdict, every rule that keeps a cell out, and each half of each decision rule.

As in ``test_claims``: values in points; ``NOISE`` over seeds 1-5 has SD 0.158, so a difference ``d + k · NOISE``
has the interval d ± 0.196 k. Cells are SST-2 and MRPC at 90% (two tasks, claim 1's sparsities) unless a test
says otherwise; Fine-tune scores 90 on each.
"""

from __future__ import annotations

import pytest
from test_claims import NOISE, SEEDS, details_text, predictions, record, verdicts, write, write_two_point_grid

from pst_bench.report import claims
from pst_bench.report.claim_rules import CLAIM6_PAIRS, CLAIM7_PAIRS, CLAIMS
from pst_bench.report.tuning import UNEQUAL_FLAG

CELLS = (("sst2", 0.9), ("mrpc", 0.9))


@pytest.fixture
def runs(tmp_path):
    folder = tmp_path / "runs"
    folder.mkdir()
    return folder


def _write(runs, values: dict, cells=CELLS, seeds=SEEDS, special=None) -> None:
    """Fine-tune 90 per task; ``values[method](seed)`` per cell; ``special[(task, sparsity, method, seed)]`` gives
    keyword arguments of ``record`` for one run (dirty, preds, extra), or None to leave the run out."""
    special = special or {}
    for task in dict.fromkeys(task for task, _ in cells):
        for seed in seeds:
            write(runs, record(task, "finetune", 0.0, seed, 90.0))
    for task, sparsity in cells:
        for seed in seeds:
            for method, value in values.items():
                keys = special.get((task, sparsity, method, seed), {})
                if keys is not None:
                    write(runs, record(task, method, sparsity, seed, value(seed), **keys))


def _noisy(level: float, k: float = 1.0):
    return lambda seed: level + k * NOISE[seed]


def _flat(level: float):
    return lambda seed: level


# --------------------------------------------------------------------------- claim 6: PST − gradual Wanda


def _claim6(runs, gap: float, **kwargs) -> None:
    """PST 86 + noise, gradual Wanda 86 − gap: PST − Wanda = gap ± 0.196 over seeds 1-5."""
    _write(runs, {"pst": _noisy(86.0), "wanda": _flat(86.0 - gap)}, **kwargs)


def test_claim6_definition_is_pst_minus_gradual_wanda():
    assert CLAIM6_PAIRS == (("PST", "Wanda"),)
    assert "beyond the paper" in CLAIMS[6].lower() and "gradual Wanda" in CLAIMS[6]


def test_claim6_holds_when_the_interval_lies_above_zero(tmp_path, runs):
    _claim6(runs, 1.0)
    found = verdicts(tmp_path)[6]
    assert found.verdict == claims.HOLDS, found.summary
    assert "PST − Wanda > 0: +1.00 [+0.80, +1.20] (n = 5) → holds" in found.summary
    assert "2 cell(s) over 2 task(s), 5 shared seed(s) (1, 2, 3, 4, 5)" in found.summary
    text = details_text(found)
    assert "SST-2 90%: PST − Wanda +1.00 [+0.80, +1.20] (n = 5) (its own seeds)" in text
    assert "MRPC 90% tuning budget: PST 1, Wanda 1 settings" in text and UNEQUAL_FLAG not in text


def test_claim6_does_not_hold_when_the_interval_lies_below_zero(tmp_path, runs):
    _claim6(runs, -1.0)
    found = verdicts(tmp_path)[6]
    assert found.verdict == claims.FAILS, found.summary
    assert "PST − Wanda > 0: -1.00 [-1.20, -0.80] (n = 5) → does not hold" in found.summary


@pytest.mark.parametrize("gap", [0.1, -0.1])
def test_claim6_inconclusive_when_the_interval_spans_zero(tmp_path, runs, gap):
    """A mean above 0 whose interval reaches below it is no win (a rule on the mean alone would say holds), and
    one below 0 whose interval reaches above it is no loss."""
    _claim6(runs, gap)
    found = verdicts(tmp_path)[6]
    assert found.verdict == claims.INCONCLUSIVE, found.summary


def test_claim6_leaves_out_a_cell_that_did_not_learn(tmp_path, runs):
    """SST-2 at 70%: Wanda at the constant predictor's 50.92 + 0.08; the two other cells decide."""
    _claim6(runs, 1.0)
    _write(runs, {"pst": _noisy(80.0), "wanda": _flat(51.0)}, cells=(("sst2", 0.7),))
    found = verdicts(tmp_path)[6]
    assert found.verdict == claims.HOLDS, found.summary
    assert "2 cell(s) over 2 task(s)" in found.summary
    assert "not counted: SST-2 70%: Wanda: did not learn: 5/5 run(s) not 2 points above" in details_text(found)
    assert "SST-2 70%: PST − Wanda" not in details_text(found)  # outside every average


def test_claim6_refuses_a_cell_with_a_run_from_uncommitted_code(tmp_path, runs):
    _claim6(runs, 1.0, special={("mrpc", 0.9, "wanda", 3): {"dirty": True}})
    found = verdicts(tmp_path)[6]
    assert found.verdict == claims.TOO_FEW, found.summary
    assert "not counted: MRPC 90%: Wanda: refused: 1/5 run(s) from uncommitted code" in details_text(found)
    assert "1 cell(s)" in found.summary and "need ≥ 2 cells at ≥ 60%" in found.summary


@pytest.mark.parametrize(
    ("kwargs", "count"),
    [
        ({"seeds": (1, 2, 3, 4)}, "0 cell(s) over 0 task(s)"),  # 4 seeds < 5 in every cell
        ({"cells": (("sst2", 0.9),)}, "1 cell(s) over 1 task(s)"),  # one cell
        ({"cells": (("sst2", 0.5), ("mrpc", 0.5))}, "0 cell(s) over 0 task(s)"),  # 50% is not claim 6's
    ],
)
def test_claim6_needs_two_cells_at_high_sparsity_with_five_seeds(tmp_path, runs, kwargs, count):
    _claim6(runs, 1.0, **kwargs)
    found = verdicts(tmp_path)[6]
    assert found.verdict == claims.TOO_FEW, found.summary
    assert count in found.summary
    if "seeds" in kwargs:
        assert "Wanda: 4 seed(s) < 5" in details_text(found)


def test_claim6_needs_five_seeds_shared_by_the_cells(tmp_path, runs):
    """Each cell has five seeds, but only four of them are the same."""
    _claim6(runs, 1.0, cells=(("sst2", 0.9),), seeds=(1, 2, 3, 4, 5))
    _claim6(runs, 1.0, cells=(("mrpc", 0.9),), seeds=(1, 2, 3, 4, 6))
    found = verdicts(tmp_path)[6]
    assert found.verdict == claims.TOO_FEW and "4 shared seed(s) (1, 2, 3, 4)" in found.summary


def test_claim6_reads_gradual_wanda_only(tmp_path, runs):
    """One-shot Wanda computes another thing ("oneshot"): it never stands in for gradual Wanda."""
    _write(runs, {"pst": _noisy(86.0), "wanda_oneshot": _flat(85.0)})
    found = verdicts(tmp_path)[6]
    assert found.verdict == claims.TOO_FEW and "0 cell(s)" in found.summary


def test_claim6_compares_only_runs_on_one_training_budget(tmp_path, runs):
    """Wanda trained 5 epochs on MRPC while PST trained the default: not like with like, so that cell is out."""
    special = {("mrpc", 0.9, "wanda", seed): {"extra": ("train.epochs=5",)} for seed in SEEDS}
    _claim6(runs, 1.0, special=special)
    found = verdicts(tmp_path)[6]
    assert found.verdict == claims.TOO_FEW, found.summary
    assert "not counted: MRPC 90%: unequal training budgets, not like with like" in details_text(found)
    assert "train.epochs=5" in details_text(found)


# --------------------------------------------------------------------------- claim 7: training time vs prune once


def _claim7(runs, pst: float = 86.0, mvp: float = 86.0, oneshot: float = 85.0, sparsegpt: float = 85.0, **kwargs):
    """PST and MvP flat; one-shot Wanda and SparseGPT at their level + noise: each difference has ± 0.196."""
    values = {"pst": _flat(pst), "mvp": _flat(mvp), "wanda_oneshot": _noisy(oneshot), "sparsegpt": _noisy(sparsegpt)}
    _write(runs, values, **kwargs)


def _parts(summary: str) -> dict[str, str]:
    """{"PST − SparseGPT": "holds", ...} from a summary's parts."""
    found = {}
    for part in summary.split("; "):
        if " > 0: " in part:
            name, rest = part.split(" > 0: ")
            found[name] = rest.rsplit("→ ", 1)[1]
    return found


def test_claim7_definition_is_every_training_time_method_against_every_one_shot_method():
    assert CLAIM7_PAIRS == (
        ("PST", "Wanda (one-shot)"),
        ("PST", "SparseGPT"),
        ("MvP", "Wanda (one-shot)"),
        ("MvP", "SparseGPT"),
    )
    assert "equal fine-tuning budget" in CLAIMS[7]


def test_claim7_holds_when_every_comparison_lies_above_zero(tmp_path, runs):
    _claim7(runs, mvp=85.5)  # PST − each +1.00, MvP − each +0.50, all ± 0.20
    found = verdicts(tmp_path)[7]
    assert found.verdict == claims.HOLDS, found.summary
    assert _parts(found.summary) == dict.fromkeys(
        ("PST − Wanda (one-shot)", "PST − SparseGPT", "MvP − Wanda (one-shot)", "MvP − SparseGPT"), claims.HOLDS
    )
    assert "MvP − SparseGPT > 0: +0.50 [+0.30, +0.70] (n = 5) → holds" in found.summary
    assert "2 cell(s) over 2 task(s), 5 shared seed(s)" in found.summary
    assert "SST-2 90% tuning budget: PST 1, MvP 1, Wanda (one-shot) 1, SparseGPT 1 settings" in details_text(found)


@pytest.mark.parametrize(
    ("sparsegpt", "part", "expected"),
    [(87.0, claims.FAILS, claims.FAILS), (85.9, claims.INCONCLUSIVE, claims.INCONCLUSIVE)],
)
def test_claim7_needs_every_comparison_to_hold(tmp_path, runs, sparsegpt, part, expected):
    """Three comparisons hold and one (PST − SparseGPT) lies below 0 (the claim does not hold) or spans it
    (inconclusive). A rule that fails only when every comparison fails, or holds when any (or most) hold, says
    otherwise."""
    _claim7(runs, mvp=88.0, oneshot=85.0, sparsegpt=sparsegpt)
    found = verdicts(tmp_path)[7]
    parts = _parts(found.summary)
    assert parts.pop("PST − SparseGPT") == part
    assert set(parts.values()) == {claims.HOLDS}
    assert found.verdict == expected, found.summary


def test_claim7_checks_mvp_as_well_as_pst(tmp_path, runs):
    """PST beats both one-shot methods, MvP loses to them: training-time pruning does not win as a family."""
    _claim7(runs, mvp=84.5)
    found = verdicts(tmp_path)[7]
    assert _parts(found.summary)["PST − SparseGPT"] == claims.HOLDS
    assert _parts(found.summary)["MvP − SparseGPT"] == claims.FAILS
    assert found.verdict == claims.FAILS, found.summary


def test_claim7_leaves_out_a_cell_where_a_one_shot_method_did_not_learn(tmp_path, runs):
    _claim7(runs, mvp=85.5)
    one_class = {("sst2", 0.7, "sparsegpt", seed): {"preds": predictions("sst2", (0, 872))} for seed in SEEDS}
    _claim7(runs, mvp=85.5, cells=(("sst2", 0.7),), special=one_class)
    found = verdicts(tmp_path)[7]
    assert found.verdict == claims.HOLDS, found.summary
    assert "2 cell(s)" in found.summary
    assert "not counted: SST-2 70%: SparseGPT: 5/5 run(s) predict a constant" in details_text(found)


def test_claim7_needs_every_method_in_two_cells(tmp_path, runs):
    missing = {("mrpc", 0.9, "sparsegpt", seed): None for seed in SEEDS}
    _claim7(runs, mvp=85.5, special=missing)
    found = verdicts(tmp_path)[7]
    assert found.verdict == claims.TOO_FEW, found.summary
    assert "not counted: MRPC 90%: SparseGPT: no run" in details_text(found)


def test_claim7_needs_five_seeds_per_method_and_cell(tmp_path, runs):
    missing = {("sst2", 0.9, "wanda_oneshot", 5): None}
    _claim7(runs, mvp=85.5, special=missing)
    found = verdicts(tmp_path)[7]
    assert found.verdict == claims.TOO_FEW, found.summary
    assert "not counted: SST-2 90%: Wanda (one-shot): 4 seed(s) < 5" in details_text(found)


def test_claim7_refuses_a_cell_with_a_run_from_uncommitted_code(tmp_path, runs):
    _claim7(runs, mvp=85.5, special={("sst2", 0.9, "mvp", 2): {"dirty": True}})
    found = verdicts(tmp_path)[7]
    assert found.verdict == claims.TOO_FEW
    assert "not counted: SST-2 90%: MvP: refused: 1/5 run(s) from uncommitted code" in details_text(found)


def test_claim7_reads_one_shot_wanda_only(tmp_path, runs):
    """Gradual Wanda is pruning during training: it never stands in for one-shot Wanda."""
    _write(runs, {"pst": _flat(86.0), "mvp": _flat(86.0), "wanda": _noisy(85.0), "sparsegpt": _noisy(85.0)})
    found = verdicts(tmp_path)[7]
    assert found.verdict == claims.TOO_FEW
    assert "not counted: SST-2 90%: Wanda (one-shot): no run" in details_text(found)


def test_claim7_compares_only_an_equal_fine_tuning_budget(tmp_path, runs):
    """SparseGPT fine-tuned 5 epochs on SST-2 while the others trained the default: that cell is out."""
    special = {("sst2", 0.9, "sparsegpt", seed): {"extra": ("train.epochs=5",)} for seed in SEEDS}
    _claim7(runs, mvp=85.5, special=special)
    found = verdicts(tmp_path)[7]
    assert found.verdict == claims.TOO_FEW, found.summary
    assert "not counted: SST-2 90%: unequal training budgets, not like with like" in details_text(found)


def test_claim7_flags_an_unequal_tuning_budget_without_changing_the_verdict(tmp_path, runs):
    """SparseGPT ranked two learning rates on the selection seed 0 on SST-2, the others one setting each: the
    details flag it, as the tables' notes do, and the verdict stands."""
    _claim7(runs, mvp=85.5, special={("sst2", 0.9, "sparsegpt", seed): None for seed in SEEDS})
    write_two_point_grid(runs, "sst2", "sparsegpt", 0.9, 85.0)
    found = verdicts(tmp_path)[7]
    assert found.verdict == claims.HOLDS, found.summary
    flagged = [line for line in found.details if line.startswith(UNEQUAL_FLAG)]
    assert flagged == [
        f"{UNEQUAL_FLAG} SST-2 90% tuning budget: PST 1, MvP 1, Wanda (one-shot) 1, SparseGPT 2 settings: the methods "
        "were not tuned alike, so a difference may be the tuning, not the method"
    ]
