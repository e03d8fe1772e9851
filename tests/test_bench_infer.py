"""`make bench-infer` on a tiny model, the CSR layer against the dense one, and the 2:4 loader's skip."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from pst_bench.errors import PstBenchError
from pst_bench.export.semi_structured import is_two_four, semi_structured_support, to_semi_structured
from pst_bench.perf.infer import CsrLinear, run


def test_csr_linear_computes_what_the_dense_layer_does():
    torch.manual_seed(0)
    linear = nn.Linear(24, 16)
    with torch.no_grad():
        linear.weight.mul_(torch.rand_like(linear.weight) > 0.9)
    inputs = torch.randn(3, 5, 24)
    torch.testing.assert_close(CsrLinear(linear)(inputs), linear(inputs), atol=1e-5, rtol=1e-5)


def test_bench_infer_writes_every_model_and_says_why_2_4_was_skipped(tmp_path):
    argv = ["model=tiny-bert", "--units", "0.5,0.75", "--repeats", "1", "--warmup", "0", "--out", str(tmp_path)]
    report = run([*argv, "--quiet"])
    written = json.loads((tmp_path / "infer_tiny-bert_cpu.json").read_text())
    names = {"dense", "unstructured", "unstructured-csr", "slim-50%", "slim-75%"}
    assert written["models"].keys() == names == report["models"].keys()
    for entry in written["models"].values():
        assert entry["1x128"]["latency_s"] > 0 and entry["32x128"]["sequences_per_s"] > 0 and entry["peak_mib"] > 0
    assert written["models"]["dense"]["32x128"]["speedup_vs_dense"] == 1.0
    sizes = [written["models"][name]["weight_bytes"] for name in ("dense", "slim-50%", "slim-75%")]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > sizes[1]
    if not torch.cuda.is_available():
        assert [skip["name"] for skip in written["skipped"]] == ["2:4"]
        assert "compute capability" in written["skipped"][0]["reason"]
    assert "| slim-75% |" in (tmp_path / "infer_tiny-bert_cpu.md").read_text()


def test_two_four_detection():
    weight = torch.tensor([[1.0, 0.0, 2.0, 0.0, 0.0, 0.0, 3.0, 4.0]])
    assert is_two_four(weight)
    weight[0, 1] = 5.0
    assert not is_two_four(weight)
    assert not is_two_four(torch.ones(2, 6))  # no groups of 4


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal where no kernel exists")
def test_semi_structured_refuses_without_a_capable_gpu():
    available, reason = semi_structured_support("cpu")
    assert not available and "compute capability >= 8.0" in reason
    with pytest.raises(PstBenchError, match="compute capability"):
        to_semi_structured(nn.Sequential(nn.Linear(8, 8)), "cpu")


@pytest.mark.skipif(not semi_structured_support("cuda")[0], reason="needs a GPU with 2:4 sparse tensor cores")
def test_semi_structured_outputs_match_the_dense_2_4_model_in_fp16():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 64))
    with torch.no_grad():
        for layer in (model[0], model[2]):
            groups = layer.weight.view(layer.weight.shape[0], -1, 4)
            drop = groups.abs().topk(2, dim=-1, largest=False).indices
            groups.scatter_(-1, drop, 0.0)
    inputs = torch.randn(32, 128, device="cuda", dtype=torch.float16)
    dense = model.to("cuda", torch.float16)
    expected = dense(inputs)
    converted = to_semi_structured(dense, "cuda")
    assert len(converted) == 2
    torch.testing.assert_close(dense(inputs), expected, atol=2e-2, rtol=2e-2)
