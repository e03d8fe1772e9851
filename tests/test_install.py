"""A regular (non-editable) install works outside the checkout: configs, console script, a real training run."""

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Building and installing the wheel takes a while: the whole module runs under `make test-all` only.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel `pip install .` would build, installed with --no-deps into its own folder."""
    tmp_path = tmp_path_factory.mktemp("install")
    dist, target = tmp_path / "dist", tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(dist),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheel = next(dist.glob("pst_bench-*.whl"))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    # The dependencies come from this interpreter's site-packages, pst_bench only from the wheel:
    # `python -S` skips the .pth files, so an editable install of the checkout (whose import hook
    # would quietly supply any module the wheel lacks) is out of sight.
    path = os.pathsep.join([str(target), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    env = {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env.pop("PST_DATA_DIR", None)
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    return wheel, target, env, workdir


def test_the_wheel_holds_every_package_of_the_source_tree(installed):
    wheel, *_ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    for init in sorted((ROOT / "pst_bench").rglob("__init__.py")):
        assert init.relative_to(ROOT).as_posix() in names, f"{init} is not in the wheel"
    # the top-level conf/ installs as the package pst_bench.conf (pyproject.toml's package-dir)
    assert "pst_bench/conf/__init__.py" in names and "pst_bench/conf/config.yaml" in names
    assert not any(name.startswith("conf/") for name in names)
    for yaml in sorted((ROOT / "conf").rglob("*.yaml")):
        assert f"pst_bench/conf/{yaml.relative_to(ROOT / 'conf').as_posix()}" in names, f"{yaml} is not in the wheel"
    assert "pst_bench/conf/method/pst.yaml" in names and "pst_bench/paper/paper_results.csv" in names
    assert "pst_bench/metrics/glue_metric/glue_metric.py" in names


def test_regular_install_runs_the_console_script(installed):
    _, target, env, workdir = installed
    probe = subprocess.run(
        [sys.executable, "-S", "-c", "import pst_bench; print(pst_bench.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=workdir,
        check=True,
    )
    assert probe.stdout.strip().startswith(str(target)), "the test must exercise the installed copy"
    script = [sys.executable, "-S", str(target / "bin" / "pst-bench")]
    out = subprocess.run(
        [*script, "--cfg", "job", "method=mvp", "model=roberta-large"],
        capture_output=True,
        text=True,
        env=env,
        cwd=workdir,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "kind: mvp" in out.stdout and "FacebookAI/roberta-large" in out.stdout
    info = subprocess.run(
        [*script, "info=params", "method=pst"], capture_output=True, text=True, env=env, cwd=workdir, timeout=120
    )
    assert info.returncode == 0 and "2,820,096" in info.stdout, info.stderr


def test_regular_install_trains_on_real_data(installed, shared_data):
    """`pst-bench method=pst task=sst2` from the installed wheel: a few real steps, a finished record."""
    _, target, env, workdir = installed
    command = [
        sys.executable,
        "-S",
        str(target / "bin" / "pst-bench"),
        "method=pst",
        "task=sst2",
        "model=tiny-bert",
        f"data.dir={shared_data}",
        "train.max_steps=4",
        "train.max_train_examples=64",
        "train.max_eval_examples=32",
        "train.batch_size=16",
        "train.progress_bar=false",
        "export=false",
    ]
    out = subprocess.run(command, capture_output=True, text=True, env=env, cwd=workdir, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    (path,) = (workdir / "results" / "runs").glob("sst2_tiny-bert_pst_p90_s42_*.json")
    record = json.loads(path.read_text())
    assert record["status"] == "finished" and record["steps"]["total"] == 4
    assert record["train_examples"] == 64 and record["eval_examples"] == {"validation": 32}
    assert record["sparsity_achieved"]["overall"] == pytest.approx(0.9, abs=1e-3)
    assert 0.0 <= record["final"]["main"] <= 1.0
    assert record["config"]["data"]["dir"] == str(shared_data)
