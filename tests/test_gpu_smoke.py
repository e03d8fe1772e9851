"""`make gpu-smoke` (pst_bench.perf.gpu_smoke): run here with --device cpu (CPU bf16 autocast), so that a dtype
error of any method shows on a machine without a GPU."""

from __future__ import annotations

import pytest
import torch

from pst_bench.perf import gpu_smoke


@pytest.mark.skipif(torch.cuda.is_available(), reason="the message of a machine without CUDA")
def test_without_cuda_it_says_so_in_one_line_and_runs_nothing(capsys, monkeypatch):
    monkeypatch.setattr(gpu_smoke, "smoke_method", lambda *args: pytest.fail("nothing may run"))
    assert gpu_smoke.main([]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "no CUDA device" in out


def test_every_method_passes_under_cpu_bf16_autocast(capsys):
    assert gpu_smoke.main(["--device", "cpu", "--steps", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "bf16 autocast, tiny-bert shape" in lines[0] and lines[-1] == "gpu-smoke: all methods passed"
    rows = {line.split()[0]: line for line in lines[1:-1]}
    assert list(rows) == list(gpu_smoke.METHODS)
    assert all(row.endswith("ok") and " step " in row and " peak " in row for row in rows.values())
    assert "sparsity 0.90" in rows["pst"] and "grad rel. err. vs fp32" in rows["pst"] and "dense" in rows["finetune"]
    assert "calibration " in rows["sparsegpt"] and "calibration " in rows["wanda_oneshot"]
    assert "calibration " not in rows["wanda"] and "sparsity 0.90" in rows["sparsegpt"]


def test_a_failed_check_fails_the_run_and_names_the_method(capsys, monkeypatch):
    monkeypatch.setattr(gpu_smoke, "MODEL_TOLERANCE", 0.0)
    assert gpu_smoke.main(["--device", "cpu", "--steps", "1", "--methods", "pst"]) == 1
    out = capsys.readouterr().out
    assert "FAILED: PST gradients" in out and out.strip().endswith("FAILED: pst")
