"""SparseGPT: the blocked algorithm against a plain column-by-column OBS reference from the paper's equations;
its reconstruction error against magnitude and Wanda; the one-shot calibration (sequential, per block) and
the fixed mask."""

from __future__ import annotations

import pytest
import torch

from pst_bench.sparsity.mask import kept_count, topv_mask
from pst_bench.sparsity.patterns import NM
from pst_bench.sparsity.sparsegpt import sparsegpt_prune


def reference_sparsegpt(weight, hessian, sparsity, nm=None, blocksize=128, percdamp=0.01):
    """SparseGPT as the paper states it, slowly: for each column j in order, the inverse Hessian of the
    columns not yet processed, (H_F)⁻¹ with F = {j, ..., k-1}, is computed afresh by a plain matrix
    inverse; every weight of column j the mask prunes is set to zero by the OBS update
    δ_F = −(w_j / [(H_F)⁻¹]_jj) · (H_F)⁻¹[:, j] (Eq. 3 of the paper, the kept weights of later columns
    absorb the error). The mask is chosen adaptively: at the first column of each block of ``blocksize``
    columns, the block's weights with the lowest OBS saliency w_c² / [(H_{F_c})⁻¹]_cc (weights as updated
    so far) are pruned, the block taking its share of the matrix's pruned count; under N:M, the M − N of
    lowest saliency of each row's group of M, chosen at the group's first column."""
    W = weight.double().clone()
    H = hessian.double().clone()
    n, k = W.shape
    dead = torch.diagonal(H) == 0
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    H += percdamp * torch.diagonal(H).mean() * torch.eye(k, dtype=H.dtype)
    total = n * k - kept_count(n * k, sparsity)
    pruned = torch.zeros(n, k, dtype=torch.bool)

    def inverse_from(c):  # (H_F)^-1 for F = {c, ..., k-1}
        return torch.linalg.inv(H[c:, c:])

    def saliency(columns):
        return torch.stack([W[:, c] ** 2 / inverse_from(c)[0, 0] for c in columns], dim=1)

    for j in range(k):
        if nm is None and j % blocksize == 0:
            end = min(j + blocksize, k)
            count = (total * end + k // 2) // k - (total * j + k // 2) // k
            block = saliency(range(j, end))
            pruned[:, j:end] = ~topv_mask(block, block.numel() - count)
        if nm is not None and j % nm.m == 0:
            group = saliency(range(j, j + nm.m))
            lowest = group.topk(nm.m - nm.n, dim=1, largest=False).indices
            pruned[:, j : j + nm.m] = torch.zeros(n, nm.m, dtype=torch.bool).scatter(1, lowest, True)
        inverse = inverse_from(j)
        rows = pruned[:, j]
        delta = -(W[rows, j] / inverse[0, 0]).unsqueeze(1) * inverse[0, :].unsqueeze(0)
        W[rows, j:] += delta
    return W, ~pruned


def _problem(n=12, k=32, tokens=200, seed=0, dead=()):
    """A weight and the Hessian 2·X·Xᵀ / T of correlated inputs (a few features with zero input: dead)."""
    generator = torch.Generator().manual_seed(seed)
    mixing = torch.randn(k, k, generator=generator, dtype=torch.float64) / k**0.5 + torch.eye(k, dtype=torch.float64)
    X = mixing @ torch.randn(k, tokens, generator=generator, dtype=torch.float64)
    X[list(dead)] = 0.0
    W = torch.randn(n, k, generator=generator, dtype=torch.float64)
    return W, 2.0 * X @ X.T / tokens, X


@pytest.mark.parametrize(
    "sparsity, nm, blocksize, dead",
    [
        (0.5, None, 8, ()),
        (0.9, None, 8, (3, 17)),
        (0.3, None, 32, ()),
        (0.5, NM(2, 4), 8, ()),
        (0.75, NM(2, 8), 16, (5,)),
    ],
)
def test_blocked_sparsegpt_equals_the_column_by_column_reference(sparsity, nm, blocksize, dead):
    W, H, _ = _problem(dead=dead)
    fast_w, fast_mask = sparsegpt_prune(W, H, sparsity, nm, blocksize=blocksize, percdamp=0.01)
    ref_w, ref_mask = reference_sparsegpt(W, H, sparsity, nm, blocksize=blocksize, percdamp=0.01)
    assert torch.equal(fast_mask, ref_mask)
    torch.testing.assert_close(fast_w, ref_w, rtol=1e-9, atol=1e-9)
    assert torch.all(fast_w[~fast_mask] == 0)
    n, k = W.shape
    if nm is None:
        assert int(fast_mask.sum()) == kept_count(n * k, sparsity)  # exact, across blocks
    else:
        assert torch.all(fast_mask.view(n, -1, nm.m).sum(-1) == nm.n)


def test_sparsegpt_in_float32_stays_close_to_float64():
    W, H, _ = _problem(n=24, k=64, seed=1)
    w32, mask32 = sparsegpt_prune(W.float(), H.float(), 0.5, blocksize=16)
    w64, mask64 = sparsegpt_prune(W, H, 0.5, blocksize=16)
    assert w32.dtype == torch.float32
    assert (mask32 != mask64).float().mean() < 0.02
    assert (w32.double() - w64).abs().max() < 1e-2 * W.abs().max()


def _reconstruction(W, W_pruned, X) -> float:
    return float(torch.linalg.matrix_norm((W - W_pruned) @ X) / torch.linalg.matrix_norm(W @ X))


def test_sparsegpt_reconstructs_the_layer_output_better_than_magnitude_and_wanda():
    W, H, X = _problem(n=32, k=64, tokens=400, seed=2)
    X[:8] *= 5.0  # a few loud input features: where Wanda's and SparseGPT's data awareness pays
    H = 2.0 * X @ X.T / X.shape[1]
    keep = kept_count(W.numel(), 0.7)
    magnitude = W * topv_mask(W.abs(), keep)
    wanda = W * topv_mask(W.abs() * X.norm(dim=1), keep)
    sparsegpt, _ = sparsegpt_prune(W, H, 0.7, blocksize=16)
    errors = [_reconstruction(W, pruned, X) for pruned in (magnitude, wanda, sparsegpt)]
    assert errors[2] < errors[1] < errors[0], errors


def test_an_unsupported_pattern_is_refused_in_one_line():
    from pst_bench.adapter import SparseConfig
    from pst_bench.errors import ConfigError

    with pytest.raises(ConfigError, match="method=sparsegpt prunes unstructured or N:M.*method=wanda"):
        SparseConfig(method="sparsegpt", sparsity=0.5, pattern="block")
    with pytest.raises(ConfigError, match="method.scope=global and method.pattern=units need a gradual method"):
        SparseConfig(method="sparsegpt", sparsity=0.5, scope="global")
    with pytest.raises(ConfigError, match="blocksize=6 must be a multiple of M=4"):
        SparseConfig(method="sparsegpt", sparsity=0.5, pattern="2:4", method_options={"blocksize": 6})
    SparseConfig(method="sparsegpt", sparsity=0.5, pattern="2:4")


# --------------------------------------------------------------------------- calibration in a model


def _tiny_bert(seed=0):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32)
    return BertForSequenceClassification(config).eval()


def _batches(count=3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(count):
        ids = torch.randint(1, 60, (4, 9), generator=generator)
        attention = torch.ones_like(ids)
        attention[1, 5:] = 0  # padding
        attention[3, 2:] = 0
        batches.append({"input_ids": ids, "attention_mask": attention, "labels": torch.tensor([0, 1, 0, 1])})
    return batches


def _layer_inputs(model, name, batches):
    """Every non-padding token's input to module ``name`` in a plain forward of ``model``."""
    seen = []

    def grab(module, args):
        seen.append(args[0])

    handle = model.get_submodule(name).register_forward_pre_hook(grab)
    rows = []
    with torch.no_grad():
        for batch in batches:
            seen.clear()
            model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
            rows.append(seen[0][batch["attention_mask"].bool()])
    handle.remove()
    return torch.cat(rows).double()


def test_calibration_is_sequential_block_by_block_over_non_padding_tokens():
    """Block 1's Hessians come from block 0's *pruned* outputs, over real tokens only: each layer's pruned
    weight is exactly ``sparsegpt_prune`` of its original weight under that Hessian."""
    from pst_bench.adapter import SparseConfig, get_sparse_model

    dense = _tiny_bert()
    original = {n: m.weight.detach().clone() for n, m in dense.named_modules() if isinstance(m, torch.nn.Linear)}
    batches = _batches()
    dense_inputs = _layer_inputs(dense, "bert.encoder.layer.1.attention.self.query", batches)
    sparse = get_sparse_model(dense, SparseConfig(method="sparsegpt", sparsity=0.5, method_options={"blocksize": 8}))
    assert sparse.needs_calibration() and sparse.prunes_once
    with pytest.raises(Exception, match="call SparseModel.calibrate"):
        sparse(**batches[0])
    info = sparse.calibrate(batches)
    assert info["blocks"] == 2 and info["samples"] == 12 and info["tokens"] == 3 * (4 * 9 - 4 - 7)
    assert not sparse.needs_calibration()
    name = "bert.encoder.layer.1.attention.self.query"
    layer = sparse.sparse_layers[name]
    X = _layer_inputs(sparse.base_model, name, batches)  # block 0 pruned: exactly the calibration inputs
    assert not torch.allclose(X, dense_inputs)  # the dense model's would differ
    H = 2.0 * X.T @ X / X.shape[0]
    expected_w, expected_mask = sparsegpt_prune(original[name].double(), H, 0.5, blocksize=8)
    assert torch.equal(layer.frozen_mask, expected_mask)
    torch.testing.assert_close(layer.base_layer.weight.double(), expected_w, rtol=1e-4, atol=1e-5)


def test_the_one_shot_mask_stays_fixed_while_the_kept_weights_train(tmp_path):
    from pst_bench.adapter import SparseConfig, get_sparse_model, load_sparse_model

    sparse = get_sparse_model(_tiny_bert(), SparseConfig(method="sparsegpt", sparsity=0.75))
    sparse.calibrate(_batches())
    masks = {name: layer.current_mask().clone() for name, layer in sparse.sparse_layers.items()}
    schedule = sparse.schedule(4)
    assert [schedule(step) for step in range(5)] == [0.75] * 5  # the target from the first step
    sparse.train()
    optimizer = torch.optim.AdamW([p for p in sparse.parameters() if p.requires_grad], lr=1e-2)
    for step, batch in enumerate(_batches(4, seed=1)):
        sparse.set_sparsity(schedule(step))
        sparse(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    for name, layer in sparse.sparse_layers.items():
        assert torch.equal(layer.current_mask(), masks[name])
        assert torch.all(layer.merged_weight()[~masks[name]] == 0)
        assert layer.mask_computations == 0  # nothing is ever re-selected
    assert sparse.achieved_sparsity() == pytest.approx(0.75, abs=1e-3)
    trainable, _ = sparse.get_nb_trainable_parameters()
    assert trainable == sum(p.numel() for p in _tiny_bert().parameters())  # no added parameter
    sparse.save_pretrained(tmp_path / "adapter")  # the masks travel with the adapter: no second calibration
    loaded = load_sparse_model(_tiny_bert(seed=1), tmp_path / "adapter")
    assert not loaded.needs_calibration()
    for name, layer in loaded.sparse_layers.items():
        assert torch.equal(layer.current_mask(), masks[name])
        assert torch.equal(layer.merged_weight(), sparse.sparse_layers[name].merged_weight())


def test_the_reconstruction_report_runs_on_a_tiny_model(tmp_path, synthetic_data):
    """``python -m pst_bench.perf.reconstruction`` (real MiniLM-L6 by default) on the tiny model: every method
    and pattern reported, SparseGPT's layer-wise error below magnitude's."""
    import json

    from pst_bench.perf.reconstruction import main

    main(["model=tiny-bert", f"data.dir={synthetic_data}", "--samples", "16", "--out", str(tmp_path)])
    report = json.loads((tmp_path / "reconstruction.json").read_text())
    assert report["matrices"] == 12 and set(report["summary"]) == {"0.5", "0.9"}
    half = report["summary"]["0.5"]
    assert {"magnitude", "wanda (per output)", "sparsegpt", "sparsegpt 2:4"} <= set(half)
    assert half["sparsegpt"]["all 12"] < half["magnitude"]["all 12"]
    assert "python -m pst_bench.perf.reconstruction model=tiny-bert" in (tmp_path / "reconstruction.md").read_text()
