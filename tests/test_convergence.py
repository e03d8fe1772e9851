"""convergence.md: the schedule's rule (the last epoch gains under 0.5 point) read on every cell the tables show."""

from __future__ import annotations

import json

import pytest

from helpers import fake_record
from pst_bench.record import load_records
from pst_bench.report.convergence import cell_convergence, convergence_markdown, not_converged
from pst_bench.report.tables import make_tables


def _write(folder, method: str, values: list[float], seed: int, final_from: int = 2, lr: float = 1e-4) -> None:
    """A record whose dev value after epoch i is values[i] (x100); epochs from ``final_from`` on ended at the
    final sparsity."""
    record = fake_record(
        [
            f"method={method}",
            "model=minilm-l6",
            "task=sst2",
            "method.sparsity=0.9",
            f"train.seed={seed}",
            f"train.lr={lr}",
        ],
        dev=values[-1] / 100,
    )
    template = record["epochs"][0]
    record["epochs"] = [
        {**template, "epoch": i + 1, "eval": {"validation": {"main": v / 100}}, "in_final_window": i + 1 >= final_from}
        for i, v in enumerate(values)
    ]
    (folder / f"{record['run_id']}.json").write_text(json.dumps(record))


@pytest.fixture
def runs(tmp_path):
    folder = tmp_path / "runs"
    folder.mkdir()
    # MaP: the selection seed 0 gains 5 points (never shown); held-out gains +0.2, +0.4, -0.3: mean +0.10
    _write(folder, "map", [70.0, 75.0, 80.0], seed=0)
    for seed, gain in ((1, 0.2), (2, 0.4), (3, -0.3)):
        _write(folder, "map", [70.0, 78.0, 78.0 + gain], seed=seed)
    # PST: held-out gains +0.4, +0.6, +0.8: mean +0.60, each under 1 point yet the mean over the limit
    _write(folder, "pst", [70.0, 75.0, 76.0], seed=0, lr=3e-4)
    for seed, gain in ((1, 0.4), (2, 0.6), (3, 0.8)):
        _write(folder, "pst", [70.0, 78.0, 78.0 + gain], seed=seed, lr=3e-4)
    return folder


def test_each_cell_reads_its_held_out_runs_mean_gain(runs):
    cells = {c.method: c for c in cell_convergence(load_records(runs), selection_seeds=(0,))}
    assert set(cells) == {"MaP", "PST"}
    assert [c.run.seed for c in cells["MaP"].curves] == [1, 2, 3]
    assert cells["MaP"].interval.mean == pytest.approx(0.1)
    assert cells["MaP"].verdict(0.5) == "converged"
    assert cells["PST"].interval.mean == pytest.approx(0.6)
    assert cells["PST"].verdict(0.5) == "still gaining"
    assert cells["PST"].verdict(0.7) == "converged"
    text = convergence_markdown(list(cells.values()), "runs")
    assert "| MaP | +0.10 [" in text and "1: +0.20, 2: +0.40, 3: -0.30 | converged |" in text
    assert "1 of 2 cells converged: not sst2 90% PST." in text


def test_a_last_epoch_before_the_final_sparsity_means_too_short(runs):
    _write(runs, "mvp", [70.0, 71.0, 71.1], seed=1, final_from=3)
    cells = {c.method: c for c in cell_convergence(load_records(runs), selection_seeds=(0,))}
    assert "too short" in cells["MvP"].verdict(0.5)


def test_make_tables_writes_it(runs, tmp_path):
    make_tables(runs, tmp_path / "out", selection_seeds=(0,))
    text = (tmp_path / "out" / "convergence.md").read_text()
    assert "still gaining" in text and text.startswith("# Convergence of the runs the tables show")


def test_cells_that_did_not_converge_are_keyed_as_the_claims_name_theirs(runs):
    """(model, column, sparsity, label), as ``claim_rules.Verdict.cells`` (the claims' convergence caveat)."""
    cells = cell_convergence(load_records(runs), selection_seeds=(0,))
    assert not_converged(cells) == {("minilm-l6", "SST-2", "90%", "PST"): "still gaining"}
    assert not_converged(cells, limit=0.7) == {}
