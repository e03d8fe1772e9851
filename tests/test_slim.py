"""Physical slimming: masks that remove whole FFN neurons and heads give a smaller model, same logits."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
import transformers

from helpers import compose_cfg, tiny_run_overrides
from pst_bench.errors import ConfigError
from pst_bench.export.export import export_model
from pst_bench.export.slim import SLIM_KEY, load_slim, save_slim
from pst_bench.models.loading import load_model, load_tokenizer
from pst_bench.models.prepare import prepare_model
from pst_bench.schema.validate import validate_config
from pst_bench.sparsity.inject import set_sparsity

INPUTS = torch.randint(0, 1000, (3, 12), generator=torch.Generator().manual_seed(0))


def _masked_and_slim(tmp_path, model_name: str, task: str, *extra: str):
    """(logits of the masked model on INPUTS, logits of the reloaded slim export, slim summary, slim model)."""
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
    with torch.no_grad():
        masked = model(input_ids=INPUTS).logits
    tokenizer = load_tokenizer(cfg.model)
    export_model(model, tokenizer, tmp_path / "merged")
    summary = save_slim(model, tokenizer, cfg.model.units, tmp_path / "slim")
    slim = load_slim(tmp_path / "slim")
    with torch.no_grad():
        reloaded = slim(input_ids=INPUTS).logits
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
    assert summary["loader"] == "from_pretrained"
    vanilla = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / "slim")
    assert vanilla.config.intermediate_size == 32
    assert not hasattr(vanilla.config, SLIM_KEY) and not (tmp_path / "slim" / "modeling_pst_slim.py").exists()
    with torch.no_grad():
        logits = vanilla.eval()(input_ids=INPUTS).logits
    torch.testing.assert_close(logits, masked, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "model_name,task,auto_class",
    [("tiny-bert", "sst2", "AutoModelForSequenceClassification"), ("tiny-gpt2", "e2e", "AutoModelForCausalLM")],
)
def test_removed_heads_load_in_plain_transformers_without_pst_bench(tmp_path, model_name, task, auto_class):
    masked, _, summary, _ = _masked_and_slim(tmp_path, model_name, task)
    assert summary["loader"] == "from_pretrained(trust_remote_code=True)"
    torch.save(INPUTS, tmp_path / "inputs.pt")
    script = f"""
import sys
sys.modules["pst_bench"] = None  # any import of pst-bench fails: the export must load on its own
import torch, transformers
model = transformers.{auto_class}.from_pretrained({str(tmp_path / "slim")!r}, trust_remote_code=True).eval()
assert type(model).__name__.startswith("PstSlim"), type(model)
with torch.no_grad():
    torch.save(model(input_ids=torch.load({str(tmp_path / "inputs.pt")!r})).logits, {str(tmp_path / "out.pt")!r})
"""
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules")}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, cwd=tmp_path)
    torch.testing.assert_close(torch.load(tmp_path / "out.pt"), masked, atol=1e-5, rtol=1e-5)


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
