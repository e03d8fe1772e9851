"""The benchmark runs on the tiny model and writes its files; the memory counter counts right.

No timing assertions: speed is measured by `make bench`, not tested. Memory is deterministic
(bytes of live tensors), so the design properties it shows are asserted.
"""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from pst_bench.perf.bench import METHODS, run
from pst_bench.perf.memory import PeakTensorMemory
from pst_bench.sparsity.layers import PSTSparseLinear


def test_bench_on_the_tiny_model_writes_markdown_and_json(tmp_path):
    report = run(
        [
            "model=tiny-bert",
            "--batch-size",
            "2",
            "--seq-length",
            "8",
            "--warmup",
            "1",
            "--repeats",
            "2",
            "--eval-repeats",
            "2",
            "--out",
            str(tmp_path),
            "--name",
            "tiny",
            "--quiet",
        ]
    )
    on_disk = json.loads((tmp_path / "tiny.json").read_text())
    assert on_disk["methods"] == report["methods"]
    assert list(on_disk["methods"]) == list(METHODS)
    for name, result in on_disk["methods"].items():
        assert len(result["step_s_all"]) == 2 and len(result["eval_s_all"]) == 2, name
        assert result["step_s"] > 0 and result["eval_s"] > 0
        assert 0 < result["resident_bytes"] <= result["peak_bytes"]
    methods = on_disk["methods"]
    # Masks are recomputed every step for the sparse methods only.
    assert methods["finetune"]["mask_s"] == methods["lora"]["mask_s"] == 0
    assert all(methods[m]["mask_s"] > 0 for m in ("map", "mvp", "pst", "wanda", "soft_mvp"))
    # The one-shot methods calibrate once (timed), then train with their masks fixed.
    for name in ("wanda_oneshot", "sparsegpt"):
        assert methods[name]["calibration"]["seconds"] > 0 and methods[name]["calibration"]["samples"] == 128
        assert methods[name]["mask_s"] == 0
    assert (
        "calibration" not in methods["wanda"]
        and methods["wanda"]["trainable_params"] == methods["map"]["trainable_params"]
    )
    # Frozen W0 with no gradient or optimizer state: PST holds far less than MvP (and dense).
    assert methods["pst"]["trainable_params"] < methods["finetune"]["trainable_params"] / 10
    assert methods["pst"]["peak_bytes"] < 0.5 * methods["mvp"]["peak_bytes"]
    assert methods["mvp"]["resident_bytes"] > methods["finetune"]["resident_bytes"]
    assert [t["target"] for t in on_disk["targets"]][0].startswith("PST step")
    sizes = on_disk["compressed_export"]["float16"]
    assert 0 < sizes["compressed_bytes"] < sizes["dense_bytes"]
    markdown = (tmp_path / "tiny.md").read_text()
    assert "| pst |" in markdown and "python -m pst_bench.perf.bench model=tiny-bert" in markdown


def test_bench_on_a_causal_lm_with_split_qkv(tmp_path):
    """GPT-2's fused c_attn becomes q, k, v: LoRA targets those leaves, like the sparse methods."""
    report = run(
        [
            "model=tiny-gpt2",
            "task=e2e",
            "--methods",
            "lora,pst",
            "--batch-size",
            "2",
            "--seq-length",
            "8",
            "--warmup",
            "0",
            "--repeats",
            "1",
            "--eval-repeats",
            "1",
            "--no-memory",
            "--no-export",
            "--out",
            str(tmp_path),
            "--name",
            "gpt2",
            "--quiet",
        ]
    )
    assert set(report["methods"]) == {"lora", "pst"} and (tmp_path / "gpt2.md").is_file()
    # same matrices: LoRA's r(n + k) per matrix is below PST's (r1 + r2 + 1)(n + k)
    assert 0 < report["methods"]["lora"]["trainable_params"] < report["methods"]["pst"]["trainable_params"]


def test_bench_rejects_bad_arguments(capsys):
    with pytest.raises(SystemExit):
        run(["--methods", "pst,nonsense"])
    assert "unknown method" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run(["--sparsity", "1.0"])


def test_peak_memory_counts_parameters_states_and_frees():
    layer = nn.Linear(64, 32)
    optimizer = torch.optim.AdamW(layer.parameters())
    tracker = PeakTensorMemory()
    tracker.register(layer, optimizer)
    param_bytes = (64 * 32 + 32) * 4
    assert tracker.live_bytes == param_bytes
    with tracker:
        for _ in range(2):
            layer(torch.randn(8, 64)).sum().backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        scratch = torch.empty(1000)
        assert tracker.live_bytes >= 3 * param_bytes + 4000
        del scratch
    # parameters + two Adam moments (+ the two scalar step counters); gradients are gone
    assert tracker.live_bytes == 3 * param_bytes + 2 * 4
    assert tracker.peak_bytes >= 4 * param_bytes  # the gradients existed during the step


def test_pst_layer_keeps_no_dense_copy_between_forward_and_backward():
    """What a PST layer's forward leaves alive for the backward: the input (kept by any linear
    layer), the output and the boolean mask, but no float n x k masked weight."""
    n, k, rows = 512, 512, 4
    layer = PSTSparseLinear(nn.Linear(k, n))
    layer.sparsity = 0.9
    x = torch.randn(rows, k, requires_grad=True)  # as inside a model: the input needs a gradient too
    tracker = PeakTensorMemory()
    tracker.register(layer, x)
    before = tracker.live_bytes
    with tracker:
        out = layer(x)
        kept_for_backward = tracker.live_bytes - before
        out.sum().backward()
    dense_copy = n * k * 4
    assert kept_for_backward >= n * k  # the boolean mask is cached
    assert kept_for_backward < n * k + dense_copy // 4
