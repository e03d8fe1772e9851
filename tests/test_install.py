"""A regular (non-editable) install carries the configs: the console script works outside the checkout."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_regular_install_runs_the_console_script(tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(ROOT)], check=True, capture_output=True, timeout=300)
    assert (target / "pst_bench" / "conf" / "method" / "pst.yaml").is_file()
    assert (target / "pst_bench" / "metrics" / "glue_metric" / "glue_metric.py").is_file()
    env = {**os.environ, "PYTHONPATH": str(target), "HF_HUB_OFFLINE": "1"}
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    probe = subprocess.run([sys.executable, "-c", "import pst_bench; print(pst_bench.__file__)"],
                           capture_output=True, text=True, env=env, cwd=workdir, check=True)
    assert probe.stdout.strip().startswith(str(target)), "the test must exercise the installed copy"
    out = subprocess.run([str(target / "bin" / "pst-bench"), "--cfg", "job", "method=mvp", "model=roberta-large"],
                         capture_output=True, text=True, env=env, cwd=workdir, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "kind: mvp" in out.stdout and "FacebookAI/roberta-large" in out.stdout
    info = subprocess.run([str(target / "bin" / "pst-bench"), "info=params", "method=pst"],
                          capture_output=True, text=True, env=env, cwd=workdir, timeout=120)
    assert info.returncode == 0 and "2,820,096" in info.stdout, info.stderr
