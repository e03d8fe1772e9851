"""Every sweep composes and expands to the paper's grid; every job of it validates."""

from pathlib import Path

import pytest

CONF = Path(__file__).resolve().parents[1] / "pst_bench" / "conf"
SWEEPS = sorted(p.stem for p in (CONF / "sweep").glob("*.yaml"))

EXPECTED_JOBS = {
    "table2_bert": 8 * 3 * 2, "table2_roberta": 2 * 8 * 3, "table2_finetune": 3 * 8,
    "table3": 3 * 3, "table3_finetune": 3, "table4": 2 * 3 * 3, "table5": 6 * 7, "figure3": 6 * 3 * 5,
    "table2_cpu": 5 * 2 * 2, "table2_cpu_pst": 5 * 2, "table2_cpu_finetune": 5, "table4_cpu": 2 * 3 * 3,
    "table5_cpu": 5 * 7, "figure3_cpu": 2 * 2 * 5, "figure3_cpu_pst": 2 * 5,
}


def expand(sweep: str) -> list[list[str]]:
    """The job override lists Hydra's basic sweeper makes of `-m sweep=<sweep>`."""
    from hydra import compose, initialize_config_module
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    with initialize_config_module(config_module="pst_bench.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"sweep={sweep}"], return_hydra_config=True)
    params = [f"{key}={value}" for key, value in cfg.hydra.sweeper.params.items()]
    batches = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(params), None)
    return batches[0]


def test_every_sweep_has_an_expected_size():
    assert set(SWEEPS) == set(EXPECTED_JOBS)


@pytest.mark.parametrize("sweep", SWEEPS)
def test_sweep_expands_to_the_expected_jobs_and_each_validates(sweep):
    from hydra import compose, initialize_config_module

    from pst_bench.models.prepare import validate_config
    from pst_bench.record import run_id

    jobs = expand(sweep)
    assert len(jobs) == EXPECTED_JOBS[sweep]
    ids = set()
    with initialize_config_module(config_module="pst_bench.conf", version_base="1.3"):
        for job in jobs:
            cfg = compose(config_name="config", overrides=[f"sweep={sweep}", *job])
            validate_config(cfg)
            ids.add(run_id(cfg))
            if sweep.endswith(("_cpu", "_cpu_pst", "_cpu_finetune")):
                assert cfg.model.name == "minilm-l6" and cfg.train.max_train_examples == 1000
    assert len(ids) == len(jobs), "two jobs of one sweep would share a run id (and a results record)"


def test_a_sweep_file_runs_through_the_cli_with_seeds_as_an_extra_axis(tmp_path):
    """`pst-bench -m sweep=table4_cpu train.seed=1,2 ...`: the file's grid times the seeds, for real
    (shrunk to the tiny model: command-line values replace the file's for the same key)."""
    import json

    from helpers import write_synthetic_sst2
    from test_cli import run_cli

    data = write_synthetic_sst2(tmp_path / "data", n_train=32, n_dev=16)
    out = run_cli("-m", "sweep=table4_cpu", "model=tiny-bert", "task=sst2", f"data.dir={data}", "method.r1=4",
                  "train.seed=1,2", "train.epochs=1", "train.max_train_examples=32", "train.progress_bar=false",
                  cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    records = [json.loads(p.read_text()) for p in (tmp_path / "results" / "runs").glob("*.json")]
    grid = sorted((r["config"]["method"]["r2"], r["seed"]) for r in records)
    assert grid == [(4, 1), (4, 2), (8, 1), (8, 2), (16, 1), (16, 2)]
    assert all(r["config"]["method"]["r1"] == 4 and r["sparsity"] == 0.9 for r in records)
