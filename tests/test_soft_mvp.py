"""Soft movement pruning: threshold mask on σ(S), its schedule, the L1 penalty and its gradient, the
straight-through movement gradient, the achieved sparsity in records and the cells it may join."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pst_bench.adapter import SparseConfig, get_sparse_model
from pst_bench.errors import ConfigError
from pst_bench.sparsity.soft_movement import MIN_KEPT_SHARE, SoftMovementSparseLinear


def _layer(**kw):
    torch.manual_seed(0)
    layer = SoftMovementSparseLinear(nn.Linear(10, 20), **kw)
    layer.final_sparsity = 0.8
    return layer


def test_threshold_and_lambda_ramp_with_the_schedule():
    layer = _layer(threshold=0.2, initial_threshold=0.05, final_lambda=100.0)
    for sparsity, tau in ((0.0, 0.05), (0.4, 0.125), (0.8, 0.2), (0.9, 0.2)):
        layer.sparsity = sparsity
        assert layer.current_threshold == pytest.approx(tau)
        assert layer.current_lambda == pytest.approx(100.0 * tau / 0.2)


def test_the_mask_keeps_scores_whose_sigmoid_passes_the_threshold_and_at_least_half_a_percent():
    layer = _layer(threshold=0.5)
    layer.sparsity = 0.8
    with torch.no_grad():
        layer.mask_scores.copy_(torch.linspace(-3, 3, 200).view(20, 10))
    mask = layer.current_mask()
    assert torch.equal(mask, torch.sigmoid(layer.mask_scores) > 0.5)
    assert layer.achieved_sparsity() == pytest.approx(0.5)
    with torch.no_grad():
        layer.mask_scores.fill_(-10.0)
        layer.mask_scores[3, 4] = -9.0
    mask = layer.current_mask()
    assert int(mask.sum()) == int(MIN_KEPT_SHARE * 200) + 1 and mask[3, 4]


def test_penalty_and_straight_through_gradients():
    layer = _layer(threshold=0.1, final_lambda=400.0, score_init=0.5)
    layer.sparsity = 0.4  # halfway: tau 0.05, lambda 200
    penalty = layer.penalty()
    assert float(penalty.detach()) == pytest.approx(200.0 * torch.sigmoid(torch.tensor(0.5)).item())
    penalty.backward()
    sig = torch.sigmoid(torch.tensor(0.5))
    torch.testing.assert_close(layer.mask_scores.grad, torch.full((20, 10), float(200.0 * sig * (1 - sig) / 200)))
    layer.mask_scores.grad = None
    x = torch.randn(3, 10)
    out = layer(x)
    grad_out = torch.randn_like(out)
    out.backward(grad_out)
    grad_weight = grad_out.T @ x  # dL/dW' of y = x W'^T
    torch.testing.assert_close(layer.mask_scores.grad, grad_weight * layer.base_layer.weight.detach())
    assert _layer(initial_threshold=0.0).penalty() is None  # warm-up: tau 0, lambda 0


def test_the_penalty_joins_the_loss_in_training_mode_and_scores_count_as_parameters():
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=60,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    model = BertForSequenceClassification(config)
    sparse = get_sparse_model(model, SparseConfig(method="soft_mvp", sparsity=0.5))
    sparse.set_sparsity(0.5)
    batch = {"input_ids": torch.randint(1, 60, (2, 6)), "labels": torch.tensor([0, 1])}
    sparse.train()
    with_penalty = sparse(**batch).loss
    plain = sparse.base_model(**batch).loss
    assert float(with_penalty - plain) == pytest.approx(float(sparse.penalty()), abs=1e-4)
    assert float(sparse.penalty().detach()) == pytest.approx(400.0 * 0.5)  # every score at 0: sigma = 0.5
    sparse.eval()
    torch.testing.assert_close(sparse(**batch).loss, sparse.base_model(**batch).loss)
    trainable, _ = sparse.get_nb_trainable_parameters()
    weights = sum(layer.base_layer.weight.numel() for layer in sparse.sparse_layers.values())
    assert trainable == sum(p.numel() for p in BertForSequenceClassification(config).parameters()) + weights


def test_patterns_are_refused_in_one_line():
    with pytest.raises(ConfigError, match="method=soft_mvp keeps every weight.*top-v method"):
        SparseConfig(method="soft_mvp", sparsity=0.5, pattern="2:4")
    with pytest.raises(ConfigError, match="soft_mvp needs a nominal target above 0"):
        SparseConfig(method="soft_mvp", sparsity=0.0)
    with pytest.raises(ConfigError, match="0 <= initial_threshold <= threshold < 1"):
        SparseConfig(method="soft_mvp", method_options={"threshold": 0.1, "initial_threshold": 0.2})


def test_a_record_of_soft_mvp_joins_a_cell_only_at_the_sparsity_it_reached():
    from helpers import fake_record
    from pst_bench.record import as_record

    data = fake_record(["method=soft_mvp", "method.sparsity=0.9", "model=tiny-bert"], dev=0.8)
    assert data["sparsity_control"] == "penalty"
    record = as_record(data)
    assert record.sparsity_control == "penalty" and record.cell_sparsity() == 0.9  # the fake reached 0.9
    data["sparsity_achieved"]["overall"] = 0.85
    far = as_record(data)
    assert far.achieved_sparsity == 0.85 and far.cell_sparsity() is None and far.cell_sparsity(0.06) == 0.9
    mvp = as_record(fake_record(["method=mvp", "method.sparsity=0.9", "model=tiny-bert"], dev=0.8))
    assert "sparsity_control" not in mvp.data and mvp.sparsity_control == "schedule" and mvp.cell_sparsity() == 0.9
