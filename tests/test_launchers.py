"""Launchers and distributed runs: joblib, submitit (local; SLURM composes), torchrun with 2 CPU processes.

Each launcher run starts worker processes that import torch and transformers anew: those tests are marked
slow (make test-all); a failing multirun job sparing the others under the basic launcher is in test_cli."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import SCRIPT, run_cli, write_synthetic_sst2

TINY = ["model=tiny-bert", "train.epochs=1", "train.progress_bar=false", "export=false"]


def _records(tmp_path):
    return [json.loads(p.read_text()) for p in sorted((tmp_path / "results" / "runs").glob("*.json"))]


@pytest.mark.slow
def test_joblib_launcher_runs_jobs_in_parallel_and_a_failure_spares_the_others(tmp_path):
    data = write_synthetic_sst2(tmp_path / "data", n_train=32, n_dev=16)
    out = run_cli(
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        *TINY,
        f"data.dir={data}",
        "method.sparsity=1.0,0.5,0.8",
        cwd=tmp_path,
    )
    assert out.returncode != 0 and "method.sparsity=1.0 must be in [0, 1)" in out.stderr
    assert sorted(r["sparsity"] for r in _records(tmp_path)) == [0.5, 0.8]


@pytest.mark.slow
def test_submitit_local_launcher_runs_a_job(tmp_path):
    data = write_synthetic_sst2(tmp_path / "data", n_train=32, n_dev=16)
    out = run_cli(
        "-m",
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=10",
        *TINY,
        f"data.dir={data}",
        "method.sparsity=0.5",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert [r["sparsity"] for r in _records(tmp_path)] == [0.5]


def test_submitit_slurm_launcher_composes(tmp_path):
    out = run_cli(
        "hydra/launcher=submitit_slurm",
        "hydra.launcher.partition=gpu",
        "hydra.launcher.gpus_per_node=1",
        "sweep=table4",
        "--cfg",
        "hydra",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "submitit_slurm" in out.stdout and "partition: gpu" in out.stdout


@pytest.mark.slow
def test_torchrun_with_two_cpu_processes_writes_once(tmp_path):
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).with_name("torchrun"))
    data = write_synthetic_sst2(tmp_path / "data", n_train=64, n_dev=32)
    cmd = [
        torchrun,
        "--nproc_per_node",
        "2",
        "--master_port",
        "29561",
        SCRIPT,
        *TINY,
        f"data.dir={data}",
        "method.sparsity=0.5",
        "train.batch_size=16",
        "train.epochs=2",
    ]
    env = {**__import__("os").environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    out = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    (record,) = _records(tmp_path)
    assert record["num_processes"] == 2
    # 64 examples / batch 16 per process / 2 processes = 2 steps per epoch
    assert record["steps"]["per_epoch"] == 2 and record["eval_examples"] == {"validation": 32}
    assert out.stdout.count(record["run_id"] + ":") == 1, "only rank 0 reports"
    assert len(list((tmp_path / "checkpoints").iterdir())) == 1
