"""Wanda: S = |W|·||X_j||; the running statistic of gradual Wanda (EMA or cumulative, non-padding tokens,
once per optimizer step), the per-output comparison group, one-shot Wanda's calibration, patterns."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pst_bench.adapter import SparseConfig, get_sparse_model
from pst_bench.errors import ConfigError
from pst_bench.sparsity.activations import TokenMask, select_tokens
from pst_bench.sparsity.mask import kept_count
from pst_bench.sparsity.wanda import OneShotWandaSparseLinear, WandaSparseLinear, per_output_mask, wanda_layer


def _tiny_bert(seed=0):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32)
    return BertForSequenceClassification(config)


def _batch(seed=0):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 60, (4, 9), generator=generator)
    attention = torch.ones_like(ids)
    attention[1, 5:] = 0
    attention[3, 2:] = 0
    return {"input_ids": ids, "attention_mask": attention, "labels": torch.tensor([0, 1, 0, 1])}


def _moved(layer):
    """What an optimizer step does to the statistics' bookkeeping: the weight's version moves."""
    with torch.no_grad():
        layer.base_layer.weight.add_(0.0)


def test_per_output_mask_keeps_each_rows_best_exactly():
    scores = torch.rand(5, 40, generator=torch.Generator().manual_seed(0))
    mask = per_output_mask(scores, 0.7)
    keep = kept_count(40, 0.7)
    assert torch.all(mask.sum(dim=1) == keep)
    for row in range(5):
        assert scores[row][mask[row]].min() > scores[row][~mask[row]].max()
    assert per_output_mask(scores, 0.0).all() and not per_output_mask(scores, 0.999).any()


@pytest.mark.parametrize("ema", [0.9, None])
def test_gradual_wanda_folds_each_steps_token_mean_square_into_its_statistic(ema):
    layer = WandaSparseLinear(nn.Linear(6, 3), norm_ema=ema, comparison="matrix")
    weight = layer.base_layer.weight.detach().clone()
    assert torch.equal(layer.importance_scores(), weight.abs())  # no statistic yet: |W|
    generator = torch.Generator().manual_seed(1)
    steps = [[torch.randn(2, 5, 6, generator=generator) for _ in range(2)] for _ in range(3)]  # 2 micro-batches
    layer.train()
    layer.sparsity = 0.5
    for micro_batches in steps:
        before = layer.mask_computations
        for x in micro_batches:
            layer(x).sum().backward()
        assert layer.mask_computations - before == 1  # one mask per optimizer step, shared by its micro-batches
        _moved(layer)
    layer.score_inputs()  # the last step's batches fold in when a mask is next asked for
    means = [torch.cat([x.reshape(-1, 6) for x in micro]).square().mean(dim=0) for micro in steps]
    if ema is None:
        expected = torch.stack(means).mean(dim=0)  # equal token counts: the cumulative mean
    else:
        weights = torch.tensor([ema**2, ema, 1.0])  # bias-corrected EMA over the three steps
        expected = (weights[:, None] * torch.stack(means)).sum(0) / weights.sum()
    torch.testing.assert_close(layer.input_norms(), expected.sqrt())
    torch.testing.assert_close(layer.importance_scores(), layer.base_layer.weight.abs() * expected.sqrt())
    with torch.no_grad():  # evaluation never counts
        layer.eval()
        stat = layer.input_stat.clone()
        layer(torch.randn(3, 6) * 100)
        _moved(layer)
        layer.score_inputs()
        assert torch.equal(layer.input_stat, stat)


def test_statistics_count_only_non_padding_tokens():
    tokens = TokenMask()
    inputs = torch.arange(2 * 3 * 2, dtype=torch.float32).view(2, 3, 2)
    tokens.mask = torch.tensor([[1, 1, 0], [1, 0, 0]]).bool()
    assert torch.equal(select_tokens(inputs, tokens), inputs[tokens.mask])
    tokens.mask = None
    assert select_tokens(inputs, tokens).shape == (6, 2)

    model = _tiny_bert()
    sparse = get_sparse_model(model, SparseConfig(method="wanda", sparsity=0.5, warmup_frac=0.0))
    name = "bert.encoder.layer.0.attention.self.query"
    layer = sparse.sparse_layers[name]
    seen = []
    layer.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach()))
    batch = _batch()
    sparse.train()
    sparse(**batch).loss.backward()
    real = seen[0][batch["attention_mask"].bool()]
    assert float(layer.pending_tokens) == real.shape[0] == 4 * 9 - 4 - 7
    torch.testing.assert_close(layer.pending_sq, real.square().sum(0))


def test_one_shot_wanda_prunes_from_the_calibration_norms_per_output_row():
    model = _tiny_bert()
    batch = _batch()
    sparse = get_sparse_model(model, SparseConfig(method="wanda", sparsity=0.5, method_options={"schedule": "oneshot"}))
    assert sparse.prunes_once and all(isinstance(x, OneShotWandaSparseLinear) for x in sparse.sparse_layers.values())
    name = "bert.encoder.layer.0.attention.self.query"
    weight = sparse.sparse_layers[name].base_layer.weight.detach().clone()
    seen = []
    handle = sparse.sparse_layers[name].register_forward_pre_hook(lambda m, args: seen.append(args[0].detach()))
    sparse.calibrate([batch])
    handle.remove()
    X = seen[0][batch["attention_mask"].bool()]
    scores = weight.abs() * X.square().mean(0).sqrt()
    layer = sparse.sparse_layers[name]
    assert torch.equal(layer.current_mask(), per_output_mask(scores, 0.5))
    assert torch.equal(layer.base_layer.weight, weight)  # Wanda updates no weight
    assert sparse.schedule(10)(0) == 0.5


@pytest.mark.parametrize(
    "options, pattern, check",
    [
        ({"comparison": "matrix"}, "block", lambda m: torch.equal(m.view(8, 2, 4, 4).all((1, 3)), m[::2, ::4])),
        ({}, "2:4", lambda m: torch.all(m.view(16, -1, 4).sum(-1) == 2)),
        ({"schedule": "oneshot"}, "2:4", lambda m: torch.all(m.view(16, -1, 4).sum(-1) == 2)),
    ],
)
def test_wanda_takes_the_patterns_that_make_sense(options, pattern, check):
    config = SparseConfig(
        method="wanda", sparsity=0.5, pattern=pattern, block_shape=[2, 4], warmup_frac=0.0, method_options=options
    )
    sparse = get_sparse_model(_tiny_bert(), config)
    if sparse.prunes_once:
        sparse.calibrate([_batch()])
    sparse.set_sparsity(0.5)
    sparse.train()
    sparse(**_batch()).loss.backward()
    mask = sparse.sparse_layers["bert.encoder.layer.0.attention.self.query"].current_mask()
    assert check(mask) and mask.float().mean() == 0.5


def test_patterns_that_do_not_fit_are_refused_in_one_line():
    with pytest.raises(
        ConfigError, match="comparison=output compares weights within each output row.*comparison=matrix"
    ):
        SparseConfig(method="wanda", sparsity=0.5, pattern="row")
    with pytest.raises(ConfigError, match="comparison=output.*scope=global"):
        SparseConfig(method="wanda", sparsity=0.5, scope="global")
    SparseConfig(method="wanda", sparsity=0.5, scope="global", method_options={"comparison": "matrix"})
    with pytest.raises(ConfigError, match="prunes block by block before training.*method.scope=layer"):
        SparseConfig(
            method="wanda",
            sparsity=0.5,
            pattern="units",
            method_options={"schedule": "oneshot", "comparison": "matrix"},
        )
    with pytest.raises(ConfigError, match="method.schedule='once'"):
        SparseConfig(method="wanda", method_options={"schedule": "once"})
    with pytest.raises(ConfigError, match="method.norm_ema=1.0 must be in"):
        SparseConfig(method="wanda", method_options={"norm_ema": 1.0})


def test_wanda_adds_no_parameter_and_saves_its_statistics_with_the_adapter(tmp_path):
    from pst_bench.adapter import load_sparse_model

    sparse = get_sparse_model(_tiny_bert(), SparseConfig(method="wanda", sparsity=0.5, warmup_frac=0.0))
    trainable, total = sparse.get_nb_trainable_parameters()
    assert trainable == total == sum(p.numel() for p in _tiny_bert().parameters())
    optimizer = torch.optim.SGD([p for p in sparse.parameters() if p.requires_grad], lr=0.1)
    sparse.train()
    for seed in range(3):
        sparse(**_batch(seed)).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    sparse.set_sparsity(0.5)
    sparse.eval()
    masks = {name: layer.current_mask().clone() for name, layer in sparse.sparse_layers.items()}
    sparse.save_pretrained(tmp_path / "adapter")
    loaded = load_sparse_model(_tiny_bert(seed=1), tmp_path / "adapter")
    for name, layer in loaded.sparse_layers.items():
        assert torch.equal(layer.current_mask(), masks[name]), name
    assert isinstance(wanda_layer(nn.Linear(4, 4), schedule="oneshot"), OneShotWandaSparseLinear)
