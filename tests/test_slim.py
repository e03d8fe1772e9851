"""Physical slimming: masks that remove whole FFN neurons and heads give a smaller model, same logits."""

from __future__ import annotations

import pytest
import torch
import transformers

from helpers import compose_cfg, tiny_run_overrides
from pst_bench.errors import ConfigError
from pst_bench.models.loading import load_model, load_tokenizer
from pst_bench.models.prepare import prepare_model
from pst_bench.run.export import export_model
from pst_bench.run.slim import SLIM_KEY, load_slim, save_slim
from pst_bench.schema.validate import validate_config
from pst_bench.sparsity.inject import set_sparsity


def _masked_and_slim(tmp_path, model_name: str, task: str, *extra: str):
    """(logits of the masked model, logits of the reloaded slim export, slim summary, slim model)."""
    heads = "model.arch.num_attention_heads=4" if model_name == "tiny-bert" else "model.arch.n_head=4"
    cfg = compose_cfg(
        [
            f"model={model_name}",
            f"task={task}",
            "method=mvp",
            "method.pattern=units",
            "method.sparsity=0.5",
            heads,
            *extra,
        ]
    )
    model = load_model(cfg.model, cfg.task, 0)
    prepare_model(model, cfg.model, cfg.method)
    set_sparsity(model, 0.5)
    with torch.no_grad():  # scores away from |W|, so the kept units are not simply the first ones
        for name, param in model.named_parameters():
            if name.endswith("mask_scores"):
                param.add_(torch.randn_like(param) * param.std())
    model.eval()
    inputs = torch.randint(0, 1000, (3, 12))
    with torch.no_grad():
        masked = model(input_ids=inputs).logits
    tokenizer = load_tokenizer(cfg.model)
    export_model(model, tokenizer, tmp_path / "merged")
    summary = save_slim(model, tokenizer, cfg.model.units, tmp_path / "slim")
    slim = load_slim(tmp_path / "slim")
    with torch.no_grad():
        reloaded = slim(input_ids=inputs).logits
    return masked, reloaded, summary, slim


def test_heads_and_neurons_removed_give_identical_logits_and_a_smaller_model(tmp_path):
    masked, reloaded, summary, slim = _masked_and_slim(tmp_path, "tiny-bert", "sst2")
    torch.testing.assert_close(reloaded, masked, atol=1e-5, rtol=1e-5)
    assert summary["params_after"] < summary["params_before"]
    assert summary["heads_per_layer"] == {"0": 2, "1": 2} and summary["ffn_width"] == 32
    attention = slim.bert.encoder.layer[0].attention
    assert attention.self.query.weight.shape == (16, 32) and attention.output.dense.weight.shape == (32, 16)
    assert slim.bert.encoder.layer[0].intermediate.dense.weight.shape == (32, 32)
    assert getattr(slim.config, SLIM_KEY)["heads"] == {"0": 2, "1": 2}


def test_ffn_neurons_alone_load_in_vanilla_transformers(tmp_path):
    masked, _, summary, _ = _masked_and_slim(tmp_path, "tiny-bert", "sst2", "method.units=[ffn]")
    assert summary["loader"] == "transformers from_pretrained"
    vanilla = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / "slim")
    assert vanilla.config.intermediate_size == 32
    assert not hasattr(vanilla.config, SLIM_KEY)
    with torch.no_grad():
        logits = vanilla(input_ids=torch.randint(0, 1000, (3, 12))).logits
    assert logits.shape == masked.shape


def test_uneven_neuron_counts_are_padded_to_the_widest_layer(tmp_path):
    masked, reloaded, summary, _ = _masked_and_slim(tmp_path, "tiny-bert", "sst2", "method.scope=global")
    torch.testing.assert_close(reloaded, masked, atol=1e-5, rtol=1e-5)
    assert summary["ffn_width"] == max(summary["ffn_live_per_layer"].values())


def test_a_fused_gpt2_attention_slims_with_identical_logits(tmp_path):
    masked, reloaded, summary, slim = _masked_and_slim(tmp_path, "tiny-gpt2", "e2e")
    torch.testing.assert_close(reloaded, masked, atol=1e-5, rtol=1e-5)
    assert slim.transformer.h[0].attn.c_attn.weight.shape == (32, 3 * 16)  # Conv1D: (in, out)
    assert slim.transformer.h[0].attn.split_size == 16


def test_a_run_with_export_slim_writes_the_slim_model_and_records_it(tmp_path, synthetic_data):
    from pst_bench.run.experiment import run_experiment

    overrides = tiny_run_overrides(synthetic_data, "pst", "method.pattern=units", "export_slim=true")
    record = run_experiment(compose_cfg(overrides, tmp_path))
    slim = record["export_slim"]
    assert slim["dir"].endswith(".slim") and slim["params_after"] < slim["params_before"]
    assert load_slim(slim["dir"]).num_parameters() == slim["params_after"]


def test_export_slim_without_units_is_refused():
    cfg = compose_cfg(["model=tiny-bert", "task=sst2", "method=map", "export_slim=true"])
    with pytest.raises(ConfigError, match="export_slim=true needs export=true and method.pattern=units"):
        validate_config(cfg)
