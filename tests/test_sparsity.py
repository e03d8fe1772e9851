"""The method itself: masks, schedule, straight-through gradients, merge."""

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from pst_bench.sparsity.inject import configure_trainable, merge_sparse_layers, sparsify
from pst_bench.sparsity.layers import MagnitudeSparseLinear, MovementSparseLinear, PSTSparseLinear
from pst_bench.sparsity.mask import StraightThroughMask, kept_count, topv_mask
from pst_bench.sparsity.modules import matching_module_names, replace_module
from pst_bench.sparsity.pst_autograd import reference_pst_linear
from pst_bench.sparsity.schedule import cubic_sparsity, schedule_knots


# -- masks -----------------------------------------------------------------------
@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.5, 0.9, 0.97, 0.999])
def test_mask_keeps_exactly_v_entries_and_the_largest(sparsity):
    torch.manual_seed(0)
    scores = torch.randn(48, 80)
    keep = kept_count(scores.numel(), sparsity)
    mask = topv_mask(scores, keep)
    assert mask.dtype == torch.bool and int(mask.sum()) == keep
    if 0 < keep < scores.numel():
        assert scores[mask].min() >= scores[~mask].max()


def test_mask_with_ties_keeps_exact_count_deterministically():
    scores = torch.tensor([[3.0, 1.0, 1.0, 1.0], [1.0, 1.0, 0.0, 2.0]])
    mask = topv_mask(scores, 4)
    assert int(mask.sum()) == 4
    # 3 and 2 are kept, then the tied 1.0s by position: (0,1), (0,2)
    expected = torch.tensor([[1, 1, 1, 0], [0, 0, 0, 1]], dtype=torch.bool)
    assert torch.equal(mask, expected)
    assert torch.equal(topv_mask(torch.zeros(5, 5), 7).sum(), torch.tensor(7))


def test_kept_count_rounds():
    assert kept_count(768 * 768, 0.9) == round(0.1 * 768 * 768)
    assert kept_count(10, 0.0) == 10


def test_straight_through_mask_passes_gradient_unchanged():
    scores = torch.randn(3, 4, requires_grad=True)
    mask = topv_mask(scores, 5)
    out = StraightThroughMask.apply(scores, mask)
    assert torch.equal(out, mask.float())
    upstream = torch.randn(3, 4)
    out.backward(upstream)
    assert torch.equal(scores.grad, upstream)


# -- schedule ---------------------------------------------------------------------
def test_cubic_schedule_at_its_knots():
    total = 1000
    start, end = schedule_knots(total, 0.1, 0.3)
    assert (start, end) == (100, 700)
    f = lambda s: cubic_sparsity(s, total, 0.0, 0.9, 0.1, 0.3)  # noqa: E731
    assert f(0) == 0.0 and f(100) == 0.0
    assert f(400) == pytest.approx(0.9 - 0.9 * 0.5**3)
    assert f(700) == pytest.approx(0.9) and f(1000) == pytest.approx(0.9)
    assert f(101) > 0.0 and f(699) < 0.9
    values = [f(s) for s in range(total + 1)]
    assert all(a <= b for a, b in zip(values, values[1:]))
    assert cubic_sparsity(50, 100, 0.2, 0.5, 0.0, 0.0) == pytest.approx(0.5 - 0.3 * 0.5**3)


# -- gradients --------------------------------------------------------------------
def _pst_layer(terms=("mag", "ab", "rc"), n=6, k=5, seed=0):
    torch.manual_seed(seed)
    layer = PSTSparseLinear(nn.Linear(k, n), r1=2, r2=3, alpha1=0.7, alpha2=1.3, beta=0.9, score_terms=terms)
    with torch.no_grad():  # move off the zero init so every gradient is non-trivial
        for name in layer.added_param_names:
            getattr(layer, name).normal_()
    layer.sparsity = 0.5
    return layer


@pytest.mark.parametrize("terms", [("mag", "ab", "rc"), ("mag",), ("ab",), ("rc",), ("ab", "rc")])
def test_pst_gradients_match_hand_derived_formulas(terms):
    layer = _pst_layer(terms)
    x = torch.randn(7, 5)
    upstream = torch.randn(7, 6)
    (layer(x) * upstream).sum().backward()

    w0, U, V, beta = layer.base_layer.weight, layer.U.detach(), layer.V.detach(), layer.beta
    mask = layer.current_mask().float()
    W = w0 + beta * U @ V
    G = upstream.t() @ x  # dL/dW' for y = x W'^T
    G_S = G * W  # straight-through: dL/dS = dL/dM = G ⊙ W
    dW = G * mask + (G_S * torch.sign(W) if "mag" in terms else 0)
    torch.testing.assert_close(layer.U.grad, beta * dW @ V.t())
    torch.testing.assert_close(layer.V.grad, beta * U.t() @ dW)
    if "ab" in terms:
        torch.testing.assert_close(layer.A.grad, layer.alpha1 * G_S @ layer.B.detach().t())
        torch.testing.assert_close(layer.B.grad, layer.alpha1 * layer.A.detach().t() @ G_S)
    if "rc" in terms:
        torch.testing.assert_close(layer.R.grad, layer.alpha2 * G_S.sum(dim=1))
        torch.testing.assert_close(layer.C.grad, layer.alpha2 * G_S.sum(dim=0))
    assert layer.base_layer.weight.grad is None and not layer.base_layer.weight.requires_grad


@pytest.mark.parametrize("terms", [("mag", "ab", "rc"), ("mag",), ("ab", "rc")])
@pytest.mark.parametrize("path", ["fused_linear", "masked_weight"])
def test_pst_gradients_match_autograd_of_the_papers_formula(terms, path):
    """The layer's two paths (the fused PSTLinear used in training, and PSTMaskedWeight used under
    autocast) equal reference_pst_linear, autograd through Eq. 7 with a straight-through mask, for
    the factors, the bias and the input (3-D, as in a transformer). tests/test_pst_autograd.py checks
    the functions themselves for every score-term subset."""
    layer = _pst_layer(terms).double()  # float64: the two computations round differently in float32
    layer.base_layer.bias.requires_grad_(True)
    x = torch.randn(2, 4, 5, dtype=torch.float64, requires_grad=True)
    if path == "fused_linear":
        out = layer(x)
    else:
        out = torch.nn.functional.linear(x, layer.masked_weight(layer.current_mask()), layer.base_layer.bias)
    out.pow(2).sum().backward()
    fused = {n: getattr(layer, n).grad.clone() for n in layer.added_param_names}
    fused["x"], fused["bias"] = x.grad.clone(), layer.base_layer.bias.grad.clone()

    names = ("U", "V", "A", "B", "R", "C")
    params = {
        n: getattr(layer, n).detach().clone().requires_grad_() if getattr(layer, n) is not None else None for n in names
    }
    params["x"] = x.detach().clone().requires_grad_()
    params["bias"] = layer.base_layer.bias.detach().clone().requires_grad_()
    reference = reference_pst_linear(
        params["x"],
        layer.base_layer.weight,
        params["bias"],
        *(params[n] for n in names),
        layer.kept,
        layer.beta,
        layer.alpha1,
        layer.alpha2,
        layer.use_magnitude,
    )
    reference.pow(2).sum().backward()
    for name, grad in fused.items():
        torch.testing.assert_close(grad, params[name].grad, msg=lambda m, name=name: f"{name}: {m}")


def test_pst_frozen_weight_gets_no_update_from_an_optimizer_step():
    layer = _pst_layer()
    before = layer.base_layer.weight.clone()
    opt = torch.optim.AdamW([p for p in layer.parameters() if p.requires_grad], lr=0.1)
    layer(torch.randn(3, 5)).sum().backward()
    opt.step()
    assert torch.equal(layer.base_layer.weight, before)
    assert not torch.equal(layer.U, _pst_layer().U)


def test_mvp_score_gradient_is_grad_times_weight():
    torch.manual_seed(0)
    layer = MovementSparseLinear(nn.Linear(5, 4))
    layer.sparsity = 0.5
    torch.testing.assert_close(layer.mask_scores.detach(), layer.base_layer.weight.abs().detach())
    x, upstream = torch.randn(3, 5), torch.randn(3, 4)
    (layer(x) * upstream).sum().backward()
    G = upstream.t() @ x
    mask = layer.current_mask().float()
    torch.testing.assert_close(layer.mask_scores.grad, G * layer.base_layer.weight.detach())
    torch.testing.assert_close(layer.base_layer.weight.grad, G * mask)


def test_first_pst_mask_equals_magnitude_mask():
    torch.manual_seed(1)
    base = nn.Linear(32, 24)
    pst = PSTSparseLinear(nn.Linear(32, 24), r1=8, r2=8)
    pst.base_layer.load_state_dict(base.state_dict())
    mag = MagnitudeSparseLinear(base)
    for layer in (pst, mag):
        layer.sparsity = 0.8
    assert torch.equal(pst.current_mask(), mag.current_mask())


# -- mask caching -----------------------------------------------------------------
def test_mask_is_computed_once_per_optimizer_step_and_once_for_evaluation():
    layer = _pst_layer()
    opt = torch.optim.SGD([p for p in layer.parameters() if p.requires_grad], lr=0.01)
    x = torch.randn(2, 5)
    for _ in range(3):  # three micro-batches of one optimizer step share the mask
        layer(x).sum().backward()
    assert layer.mask_computations == 1
    opt.step()
    with torch.no_grad():
        for _ in range(5):
            layer(x)
    assert layer.mask_computations == 2
    layer.sparsity = 0.7
    layer(x)
    assert layer.mask_computations == 3


# -- model-level helpers ---------------------------------------------------------
class _Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.ModuleDict({"q": nn.Linear(8, 8), "ffn": nn.Linear(8, 16)})
        self.norm = nn.LayerNorm(16)
        self.classifier = nn.Linear(16, 2)

    def forward(self, x):
        return self.classifier(self.norm(self.encoder["ffn"](self.encoder["q"](x))))


def _method(kind, **kw):
    base = dict(
        kind=kind,
        r1=2,
        r2=2,
        alpha1=1.0,
        alpha2=1.0,
        beta=1.0,
        score_terms=["mag", "ab", "rc"],
        train_bias_and_norm=False,
    )
    return OmegaConf.create({**base, **kw})


def test_matching_module_names_matches_whole_names_leaves_and_kinds():
    model = _Toy()
    assert matching_module_names(model, [r"encoder\..*"]) == ["encoder.q", "encoder.ffn"]
    assert matching_module_names(model, ["q", "encoder.f"]) == []  # whole names only, never a prefix
    assert matching_module_names(model, ["encoder", "norm"]) == ["encoder", "norm"]
    assert matching_module_names(model, ["encoder", "norm"], leaves_only=True) == ["norm"]
    assert matching_module_names(model, [".*"], kind=nn.Linear) == ["encoder.q", "encoder.ffn", "classifier"]
    assert matching_module_names(model, [".*"], kind=(nn.LayerNorm, nn.ModuleDict)) == ["encoder", "norm"]


def test_replace_module_at_the_top_and_deeper_down():
    model = _Toy()
    head, query = nn.Linear(16, 3), nn.Identity()
    replace_module(model, "classifier", head)
    replace_module(model, "encoder.q", query)
    assert model.classifier is head and model.encoder["q"] is query
    assert model(torch.randn(2, 8)).shape == (2, 3)


def test_sparsify_fails_when_no_module_matches():
    from pst_bench.errors import ConfigError

    with pytest.raises(ConfigError, match="no module"):
        sparsify(_Toy(), [r"decoder\..*"], _method("pst"))


def test_pst_trains_only_small_matrices_and_head():
    model = _Toy()
    sparsify(model, [r"encoder\..*"], _method("pst"))
    configure_trainable(model, _method("pst"), ["classifier"])
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"encoder.{m}.{p}" for m in ("q", "ffn") for p in "UVABRC"} | {
        "classifier.weight",
        "classifier.bias",
    }
    configure_trainable(model, _method("pst", train_bias_and_norm=True), ["classifier"])
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert {"norm.weight", "encoder.q.base_layer.bias"} <= trainable
    assert "encoder.q.base_layer.weight" not in trainable


def test_merge_gives_plain_linear_with_same_outputs_and_sparsity():
    model = _Toy()
    layers = sparsify(model, [r"encoder\..*"], _method("pst"))
    for layer in layers.values():
        layer.sparsity = 0.75
        with torch.no_grad():
            layer.V.normal_()
    x = torch.randn(4, 8)
    with torch.no_grad():
        before = model(x)
        merge_sparse_layers(model)
        after = model(x)
    assert all(type(m) is nn.Linear for m in model.encoder.values())
    torch.testing.assert_close(before, after)
    zeros = (model.encoder["q"].weight == 0).float().mean().item()
    assert zeros == pytest.approx(0.75, abs=1 / 64)


@pytest.mark.parametrize("sparsity", [0.01, 0.9, 0.999])
def test_mask_on_a_bert_sized_matrix_and_with_heavy_ties(sparsity):
    torch.manual_seed(3)
    scores = torch.randn(3072, 768).abs()
    keep = kept_count(scores.numel(), sparsity)
    mask = topv_mask(scores, keep)
    assert int(mask.sum()) == keep and scores[mask].min() >= scores[~mask].max()
    quantised = (scores * 4).round()  # few distinct values: ties everywhere
    assert int(topv_mask(quantised, keep).sum()) == keep


@pytest.mark.parametrize("kind", ["normal", "ties", "constant", "structured"])
def test_kth_smallest_equals_kthvalue_at_every_kind_of_rank(kind):
    from pst_bench.sparsity import mask as mask_module

    torch.manual_seed(5)
    n, k = 1024, 768
    values = {
        "normal": torch.randn(n * k),
        "ties": (torch.randn(n * k) * 3).round(),
        "constant": torch.full((n * k,), 0.5),
        # PST-like: |W| + row + column terms
        "structured": (torch.randn(n, k).abs() + torch.randn(n, 1) + torch.randn(1, k)).reshape(-1),
    }[kind]
    assert values.numel() >= mask_module._BRACKET_MIN_NUMEL  # the bracketed path, not the small-size one
    for rank in (1, 2, 100, values.numel() // 2, int(0.9 * values.numel()), values.numel() - 1, values.numel()):
        assert mask_module.kth_smallest(values, rank) == torch.kthvalue(values, rank).values, rank


def test_kth_smallest_is_exact_when_the_sampled_bracket_misses(monkeypatch):
    from pst_bench.sparsity import mask as mask_module

    values = torch.randn(1 << 18)
    monkeypatch.setattr(mask_module, "_sample_bracket", lambda flat, rank: (flat.new_tensor(5.0), flat.new_tensor(6.0)))
    assert mask_module.kth_smallest(values, 1000) == torch.kthvalue(values, 1000).values


def test_kth_smallest_selects_among_a_small_bracket_not_the_whole_tensor(monkeypatch):
    from pst_bench.sparsity import mask as mask_module

    seen = []
    real = torch.kthvalue
    monkeypatch.setattr(torch, "kthvalue", lambda t, r: seen.append(t.numel()) or real(t, r))
    values = torch.randn(3072 * 768)
    assert mask_module.kth_smallest(values, int(0.9 * values.numel())) == real(values, int(0.9 * values.numel())).values
    assert max(seen[:3]) < values.numel() / 10  # two sample quantiles and the bracket's candidates
