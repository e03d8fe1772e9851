"""pst_bench.report.runs: the one load_runs of the tables and figures, and the one constant-baseline rule."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from helpers import class_counts, fake_record
from pst_bench.record import RecordSkipped, as_record
from pst_bench.report.runs import Run, constant_baselines, dev_set_key, load_runs, panel_key


def _write(folder: Path, name: str, data: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(data))


def _with_baseline(value: float) -> dict:
    return {**class_counts(4, 5), "constant_baseline": {"class": 1, "main": value}}


def _rte(seed: int, predictions, eval_size: int | None = None, model: str = "tiny-bert") -> dict:
    data = fake_record(
        [f"model={model}", "task=rte", "method=map", f"train.seed={seed}"], dev=0.6, predictions=predictions
    )
    if eval_size is not None:
        data["eval_examples"] = {"validation": eval_size}
    return data


def test_runs_carry_what_the_reports_ask_of_a_record(tmp_path):
    _write(tmp_path, "a.json", fake_record(["task=sst2", "model=tiny-bert", "method=pst", "method.r1=4"], dev=0.81))
    (run,) = load_runs(tmp_path)
    assert isinstance(run, Run) and run.file == "a.json"
    assert (run.label, run.task, run.model, run.sparsity, run.r1, run.r2) == ("PST", "sst2", "tiny-bert", 90.0, 4, 8)
    assert run.values == {"SST-2": pytest.approx(81.0)}
    assert run.family == "glue" and not run.dirty and run.constant is False and not run.unchecked


def test_records_without_a_value_are_skipped_for_the_tables_and_kept_for_the_figures(tmp_path):
    nan = fake_record(["task=stsb", "model=tiny-bert", "method=map"], dev=float("nan"))
    _write(tmp_path, "nan.json", nan)
    _write(tmp_path, "ok.json", fake_record(["task=sst2", "model=tiny-bert", "method=map"], dev=0.8))
    with pytest.warns(RecordSkipped, match="nan.json: skipped, pearson on validation is nan"):
        assert [run.file for run in load_runs(tmp_path)] == ["ok.json"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecordSkipped)
        every = load_runs(tmp_path, valued=False)
    assert [(run.file, run.values == {}) for run in every] == [("nan.json", True), ("ok.json", False)]


def test_a_run_without_a_baseline_gets_the_one_of_its_task_and_dev_set(tmp_path):
    _write(tmp_path, "a.json", _rte(1, _with_baseline(0.5271)))
    _write(tmp_path, "b.json", _rte(2, None))  # an older record: no prediction summary
    _write(tmp_path, "c.json", _rte(3, None, eval_size=20))  # another dev set: not shared
    runs = {run.file: run for run in load_runs(tmp_path)}
    assert runs["a.json"].constant_baseline == pytest.approx(52.71)
    assert runs["b.json"].constant_baseline == pytest.approx(52.71)
    assert runs["c.json"].constant_baseline is None


def test_the_key_is_the_one_difference_between_the_tables_and_figure_3():
    records = [
        as_record(_rte(1, _with_baseline(0.50), eval_size=10), "a.json"),
        as_record(_rte(2, _with_baseline(0.60), eval_size=20), "b.json"),
        as_record(_rte(3, _with_baseline(0.60), eval_size=20), "c.json"),
        as_record(_rte(4, _with_baseline(0.70), eval_size=30, model="minilm-l6"), "d.json"),
    ]
    assert constant_baselines(records, by=dev_set_key) == {
        ("rte", 10): pytest.approx(0.5),
        ("rte", 20): pytest.approx(0.6),
        ("rte", 30): pytest.approx(0.7),
    }
    # one line per panel: the most common value of the panel's records wins
    assert constant_baselines(records, by=panel_key) == {
        ("tiny-bert", "rte"): pytest.approx(0.6),
        ("minilm-l6", "rte"): pytest.approx(0.7),
    }
    # equally common values: the last one read
    assert constant_baselines(records[:2], by=panel_key) == {("tiny-bert", "rte"): pytest.approx(0.6)}


def test_the_reports_read_files_not_the_benchmark_or_run_code():
    """Importing every report module loads no training, benchmark or task code (issue 22)."""
    import subprocess
    import sys

    modules = ["tables", "figures", "claims", "structured", "schedule", "masks"]
    code = (
        "import sys\n"
        + "".join(f"import pst_bench.report.{name}\n" for name in modules)
        + "print(' '.join(m for m in sys.modules if m.split('.')[:2] in "
        + "(['pst_bench', 'run'], ['pst_bench', 'perf'], ['pst_bench', 'tasks'], ['pst_bench', 'models'])))"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert found == []
