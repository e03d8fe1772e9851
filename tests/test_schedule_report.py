"""The schedule probe's report: the last epoch's gain decides whether a schedule converged."""

from __future__ import annotations

import json

import pytest

from helpers import fake_record
from pst_bench.report import schedule


def _write(folder, method: str, values: list[float], final_from: int, seed: int = 0) -> None:
    """A record whose dev value after epoch i is values[i] (x100); epochs from ``final_from`` (1-based) ended
    at the final sparsity."""
    record = fake_record(
        [f"method={method}", "model=minilm-l6", "task=sst2", "method.sparsity=0.9", f"train.seed={seed}"], dev=0.5
    )
    template = record["epochs"][0]
    record["epochs"] = [
        {**template, "epoch": i + 1, "eval": {"validation": {"main": v / 100}}, "in_final_window": i + 1 >= final_from}
        for i, v in enumerate(values)
    ]
    (folder / f"{record['run_id']}.json").write_text(json.dumps(record))


def test_verdicts_follow_the_last_epochs_gain(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    _write(runs, "map", [70.0, 74.0, 75.0, 75.3], final_from=3, seed=1)  # +0.30 < 0.5: converged
    _write(runs, "pst", [70.0, 72.0, 74.0, 75.0], final_from=3, seed=2)  # +1.00: still gaining
    _write(runs, "map", [70.0, 72.0, 76.0], final_from=3, seed=3)  # epoch 2 ended before the final window
    assert schedule.main(["--runs", str(runs), "--out", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "schedule.md").read_text()
    lines = {line.split("|")[2].split("(")[1].split(")")[0]: line for line in text.splitlines() if "sst2_" in line}
    by_seed = {label.rsplit(" s", 1)[1]: line for label, line in lines.items()}
    assert "+0.30" in by_seed["1"] and "| converged |" in by_seed["1"]
    assert "+1.00" in by_seed["2"] and "still gaining" in by_seed["2"]
    assert "not wholly at the final sparsity" in by_seed["3"]
    assert by_seed["1"].endswith("| 30 | 0.0 |"), "steps and wall time (fake_record: 30 steps, 1 s)"
    assert "**75.30**" in by_seed["1"] and "74.00 ·" in by_seed["1"], "final-window epochs are bold, others not"
    assert (tmp_path / "out" / "schedule.png").stat().st_size > 0


def test_the_limit_is_an_option(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    _write(runs, "map", [70.0, 74.0, 75.0, 75.3], final_from=3)
    assert schedule.main(["--runs", str(runs), "--limit", "0.2"]) == 0
    assert "still gaining" in (runs / "schedule.md").read_text()


def test_an_empty_or_missing_folder_says_so(tmp_path, capsys):
    assert schedule.main(["--runs", str(tmp_path / "nothing")]) == 2
    assert "not a folder of run records" in capsys.readouterr().err
    assert schedule.main(["--runs", str(tmp_path)]) == 2
    assert "no finished run records" in capsys.readouterr().err


@pytest.mark.parametrize("values, gain", [([1.0], None), ([1.0, 3.5], 2.5)])
def test_last_gain(tmp_path, values, gain):
    runs = tmp_path / "runs"
    runs.mkdir()
    _write(runs, "map", values, final_from=1)
    curve = schedule.curve_of(schedule.load_records(runs)[0])
    assert curve.last_gain == (None if gain is None else pytest.approx(gain))
