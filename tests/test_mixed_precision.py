"""Every method under mixed precision (CPU autocast): the precision rule of pst_bench.sparsity.precision.

Masks come from float32 scores, PST's fused backward under bf16 / fp16 autocast stays within TOLERANCE of
the float32 reference on the same batch and mask, and the runner and the library train under bf16.
"""

from __future__ import annotations

import itertools
import json

import pytest
import torch
from torch import nn

from helpers import compose_cfg, tiny_run_overrides
from pst_bench.methods.pst import SCORE_TERMS
from pst_bench.sparsity.layers import MagnitudeSparseLinear, MovementSparseLinear, PSTSparseLinear
from pst_bench.sparsity.mask import kept_count
from pst_bench.sparsity.precision import SCORE_DTYPE, TOLERANCE, relative_error
from pst_bench.sparsity.pst_autograd import reference_pst_linear

AUTOCAST_DTYPES = [torch.bfloat16, torch.float16]
#: every non-empty subset of the score terms (the Table 5 variants)
TERM_SETS = [combo for r in (1, 2, 3) for combo in itertools.combinations(SCORE_TERMS, r)]


def _pst_layer(score_terms=SCORE_TERMS, n=48, k=40, seed=0) -> PSTSparseLinear:
    torch.manual_seed(seed)
    layer = PSTSparseLinear(nn.Linear(k, n), r1=4, r2=4, score_terms=score_terms)
    with torch.no_grad():  # trained-looking factors: every score term and U·V matter
        for name in layer.added_param_names:
            getattr(layer, name).normal_(0, 0.1)
    layer.sparsity = 0.6
    return layer


def _reference(layer: PSTSparseLinear, inputs: torch.Tensor, bias: torch.Tensor | None):
    """Output and gradients of the float32 reference (Eq. 7 through autograd) for the layer's factors."""
    params = {name: getattr(layer, name).detach().clone().requires_grad_() for name in layer.added_param_names}
    factors = [params.get(name) for name in ("U", "V", "A", "B", "R", "C")]
    x = inputs.detach().clone().requires_grad_()
    b = None if bias is None else bias.detach().clone().requires_grad_()
    n, k = layer.weight_shape
    w0 = layer.base_layer.weight.detach()
    out = reference_pst_linear(
        x, w0, b, *factors, kept_count(n * k, layer.sparsity), layer.beta, layer.alpha1, layer.alpha2,
        layer.use_magnitude,
    )  # fmt: skip
    (out.square().sum() / 2).backward()
    grads = {name: p.grad for name, p in params.items()}
    grads["input"], grads["bias"] = x.grad, None if b is None else b.grad
    return out.detach(), grads


@pytest.mark.parametrize("dtype", AUTOCAST_DTYPES, ids=["bf16", "fp16"])
@pytest.mark.parametrize("score_terms", TERM_SETS, ids=["+".join(t) for t in TERM_SETS])
def test_fused_pst_under_autocast_matches_the_fp32_reference_within_tolerance(dtype, score_terms):
    layer = _pst_layer(score_terms)
    inputs = torch.randn(3, 7, layer.weight_shape[1], generator=torch.Generator().manual_seed(1)).requires_grad_()
    ref_out, ref_grads = _reference(layer, inputs, layer.base_layer.bias)
    with torch.autocast("cpu", dtype=dtype):
        out = layer(inputs)
        assert out.dtype == dtype  # like nn.Linear under autocast
    (out.float().square().sum() / 2).backward()
    # the mask is the float32 reference's exactly: scores are float32 whatever autocast does
    keep = kept_count(layer.base_layer.weight.numel(), layer.sparsity)
    assert int(layer.current_mask().sum()) == keep
    tolerance = TOLERANCE[dtype]
    assert relative_error(out, ref_out) < tolerance
    assert inputs.grad.dtype == torch.float32 and relative_error(inputs.grad, ref_grads["input"]) < tolerance
    assert relative_error(layer.base_layer.bias.grad, ref_grads["bias"]) < tolerance
    for name in layer.added_param_names:
        grad = getattr(layer, name).grad
        assert grad.dtype == torch.float32, name
        assert relative_error(grad, ref_grads[name]) < tolerance, name
    assert layer.base_layer.weight.grad is None  # W0 stays frozen


@pytest.mark.parametrize("dtype", AUTOCAST_DTYPES, ids=["bf16", "fp16"])
def test_masks_are_chosen_from_fp32_scores_under_autocast(dtype):
    plain = _pst_layer()
    expected = plain.current_mask().clone()
    for make in (
        lambda: _pst_layer(),
        lambda: _magnitude(MagnitudeSparseLinear),
        lambda: _magnitude(MovementSparseLinear),
    ):
        layer = make()
        if isinstance(layer, PSTSparseLinear):
            reference = expected
        else:
            reference = layer.current_mask().clone()
            layer._mask = None  # recompute under autocast
        with torch.autocast("cpu", dtype=dtype):
            assert layer.scores_for_mask().dtype == SCORE_DTYPE
            layer(torch.randn(2, layer.weight_shape[1]))
            assert torch.equal(layer.current_mask(), reference)


def _magnitude(cls):
    torch.manual_seed(0)
    layer = cls(nn.Linear(40, 48))
    layer.sparsity = 0.6
    return layer


def test_pst_scores_are_fp32_when_the_parameters_are_bf16():
    layer = _pst_layer().to(torch.bfloat16)
    scores = layer.scores_for_mask()
    assert scores.dtype == torch.float32
    x = torch.randn(2, 40, dtype=torch.bfloat16)
    out = layer(x)  # no autocast, bf16 parameters: runs in bf16
    out.float().sum().backward()
    assert out.dtype == torch.bfloat16 and layer.U.grad.dtype == torch.bfloat16


def test_eval_cache_under_autocast_serves_a_later_fp32_forward():
    """The cached masked weight is kept in the parameters' dtype, so an evaluation under autocast
    followed by one without it (an export, a predict) does not mix dtypes."""
    layer = _pst_layer()
    x = torch.randn(2, 40)
    with torch.no_grad():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = layer(x)
        assert layer._eval_weight.dtype == torch.float32
        full = layer(x)
    assert low.dtype == torch.bfloat16 and full.dtype == torch.float32
    assert relative_error(low, full) < TOLERANCE[torch.bfloat16]
    assert layer.merged_weight().dtype == torch.float32


# -- the library: every method, pattern and scope trains a step under bf16 autocast ------------------------
STRUCTURES = [
    {},
    {"pattern": "2:4"},
    {"pattern": "block", "block_shape": [4, 4]},
    {"pattern": "row"},
    {"pattern": "column"},
    {"scope": "global"},
    {"pattern": "units", "units": ["ffn", "head"]},
]


def _tiny_bert():
    from transformers import AutoConfig, AutoModelForSequenceClassification

    torch.manual_seed(0)
    config = AutoConfig.for_model(
        "bert", vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_labels=2,
    )  # fmt: skip
    return AutoModelForSequenceClassification.from_config(config)


@pytest.mark.parametrize(
    "method,structure",
    [("map", {}), ("mvp", {})]
    + [("pst", s) for s in STRUCTURES]
    + [("pst", {"score_terms": list(t)}) for t in TERM_SETS if len(t) < 3],
    ids=lambda v: v if isinstance(v, str) else ("-".join(f"{k}={v}" for k, v in v.items()) or "default"),
)
def test_library_trains_under_bf16_autocast_with_exact_masks(method, structure):
    from pst_bench.adapter import SparseConfig, get_sparse_model

    sparse = get_sparse_model(_tiny_bert(), SparseConfig(method=method, sparsity=0.5, **structure))
    sparse.set_sparsity(0.5)
    optimizer = torch.optim.AdamW([p for p in sparse.parameters() if p.requires_grad], lr=1e-3)
    ids = torch.randint(3, 128, (4, 9), generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 0, 1])
    for _ in range(2):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = sparse(input_ids=ids, labels=labels).loss
        assert torch.isfinite(loss)
        loss.backward()
        grads = [p.grad for p in sparse.parameters() if p.requires_grad]
        assert all(g is not None and g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)
        optimizer.step()
        optimizer.zero_grad()
    assert abs(sparse.achieved_sparsity() - 0.5) < 1e-9
    for layer in sparse.sparse_layers.values():
        assert layer.current_mask().dtype == torch.bool


# -- the runner: `pst-bench ... train.mixed_precision=bf16` on the CPU, every method ---------------------
@pytest.mark.parametrize("method", ["finetune", "map", "mvp", "pst"])
def test_runner_trains_every_method_under_bf16(tmp_path, synthetic_data, method):
    from pst_bench.run.experiment import run_experiment

    overrides = tiny_run_overrides(
        synthetic_data, method, "train.epochs=1", "train.max_train_examples=64", "train.mixed_precision=bf16",
        "train.device=cpu", "export=false",
    )  # fmt: skip
    record = run_experiment(compose_cfg(overrides, tmp_path))
    on_disk = json.loads((tmp_path / "results" / "runs" / f"{record['run_id']}.json").read_text())
    assert on_disk["status"] == "finished"
    assert on_disk["config"]["train"]["mixed_precision"] == "bf16"
    assert type(on_disk["config"]["train"]["mixed_precision"]) is str
    loss = on_disk["epochs"][0]["train_loss"]
    assert loss == loss and abs(loss) != float("inf")
    if method != "finetune":
        assert all(abs(s - 0.5) < 1e-3 for s in on_disk["sparsity_achieved"]["per_matrix"].values())


def test_one_process_runs_jobs_of_different_precisions_in_turn(tmp_path, synthetic_data):
    """Hydra's basic launcher runs a multirun's jobs in one process: `-m train.mixed_precision=no,bf16` must not
    stop at the second job on accelerate's 'AcceleratorState has already been initialized'."""
    from pst_bench.run.experiment import run_experiment

    for precision in ("no", "bf16", "no"):
        overrides = tiny_run_overrides(
            synthetic_data, "pst", "train.epochs=1", "train.max_train_examples=32", "export=false",
            "train.device=cpu", f"train.mixed_precision={precision}",
        )  # fmt: skip
        record = run_experiment(compose_cfg(overrides, tmp_path / precision))
        assert record["config"]["train"]["mixed_precision"] == precision
