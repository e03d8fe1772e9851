"""GPT-2 on data-to-text: Conv1D handling, split q/k/v masks, counts, decoding, end-to-end runs."""

import json
from pathlib import Path

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel
from transformers.pytorch_utils import Conv1D

from helpers import compose_cfg

TINY = ["model=tiny-gpt2", "task=e2e"]


def _tiny_gpt2():
    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(vocab_size=64, n_positions=32, n_embd=16, n_layer=2, n_head=2)).eval()


def test_linearized_gpt2_computes_the_same_and_restores_to_conv1d():
    from pst_bench.sparsity.conv1d import QKVProjection, linearize_conv1d, restore_conv1d

    model = _tiny_gpt2()
    ids = torch.randint(0, 64, (2, 7))
    with torch.no_grad():
        reference = model(ids).logits
        linearize_conv1d(
            model,
            [r"transformer\.h\.\d+\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)"],
            [r"transformer\.h\.\d+\.attn\.c_attn"],
        )
        assert isinstance(model.transformer.h[0].attn.c_attn, QKVProjection)
        assert isinstance(model.transformer.h[0].mlp.c_fc, torch.nn.Linear)
        torch.testing.assert_close(model(ids).logits, reference)
        restore_conv1d(model)
        assert isinstance(model.transformer.h[0].attn.c_attn, Conv1D)
        torch.testing.assert_close(model(ids).logits, reference)


def test_split_qkv_gives_three_masks_with_exactly_v_entries_each():
    from pst_bench.models.loading import load_model
    from pst_bench.models.prepare import prepare_model
    from pst_bench.sparsity.mask import kept_count

    cfg = compose_cfg([*TINY, "method=pst", "method.sparsity=0.7"])
    model = load_model(cfg.model, cfg.task, 0)
    layers = prepare_model(model, cfg.model, cfg.method)
    attn = [n for n in layers if ".attn.c_attn." in n]
    assert sorted(n.rsplit(".", 1)[1] for n in attn if ".h.0." in n) == ["k", "q", "v"]
    assert len(layers) == 2 * 6  # q, k, v, c_proj, c_fc, mlp c_proj per block
    for name in attn:
        layers[name].sparsity = 0.7
        mask = layers[name].current_mask()
        assert mask.shape == (32, 32) and int(mask.sum()) == kept_count(32 * 32, 0.7)
    unsplit = compose_cfg([*TINY, "method=pst", "model.split_qkv=false"])
    model = load_model(unsplit.model, unsplit.task, 0)
    layers = prepare_model(model, unsplit.model, unsplit.method)
    assert layers["transformer.h.0.attn.c_attn"].weight_shape == (96, 32)


def test_gpt2_medium_parameter_counts():
    from pst_bench.models.params import parameter_report_for_config

    pst = parameter_report_for_config(compose_cfg(["model=gpt2-medium", "task=e2e", "method=pst"]))
    assert pst["trainable_sparse_added"] == 7_520_256 and pst["trainable_total"] == 7_520_256
    mvp = parameter_report_for_config(compose_cfg(["model=gpt2-medium", "task=e2e", "method=mvp"]))
    assert mvp["paper_rule_m"] == pytest.approx(656.91)
    assert mvp["trainable_sparse_added"] == 301_989_888


def test_beam_settings_reach_generate(monkeypatch):
    from pst_bench.models.loading import load_model, load_tokenizer
    from pst_bench.tasks.nlg import NlgRunner

    cfg = compose_cfg(
        [
            *TINY,
            "nlg.num_beams=3",
            "nlg.length_penalty=0.6",
            "nlg.no_repeat_ngram_size=2",
            "nlg.max_new_tokens=5",
            "nlg.decode_batch_size=2",
        ]
    )
    tokenizer = load_tokenizer(cfg.model)
    model = load_model(cfg.model, cfg.task, 0)
    seen = []
    real_generate = model.generate

    def spy(**kwargs):
        seen.append(kwargs)
        return real_generate(**kwargs)

    monkeypatch.setattr(model, "generate", spy)
    out = NlgRunner(cfg).decode(model, tokenizer, ["name : A | food : B", "name : C", "area : D"], "cpu")
    assert len(out) == 3 and all("\n" not in line for line in out)
    assert len(seen) == 2  # batches of 2
    first = seen[0]
    assert (first["num_beams"], first["length_penalty"], first["no_repeat_ngram_size"], first["max_new_tokens"]) == (
        3,
        0.6,
        2,
        5,
    )
    mask = first["attention_mask"]
    assert mask[:, -1].all() and not mask[:, 0].all(), "prompts must be left-padded"


# PST (split q, k, v) in the quick run; the other methods meet NLG there through the decoder families
# (test_adapter), and run on GPT-2 here under the slow mark.
@pytest.mark.parametrize(
    "method", [pytest.param(m, marks=pytest.mark.slow) for m in ("finetune", "map", "mvp")] + ["pst"]
)
def test_tiny_gpt2_on_real_e2e_per_method(tmp_path, shared_data, method):
    from transformers import AutoModelForCausalLM

    from pst_bench.run.experiment import run_experiment

    sparsity = "method.sparsity=0.0" if method == "finetune" else "method.sparsity=0.6"
    cfg = compose_cfg(
        [
            *TINY,
            f"method={method}",
            sparsity,
            f"data.dir={shared_data}",
            "train.max_train_examples=96",
            "train.max_eval_examples=32",
            "train.epochs=2",
            "train.batch_size=8",
            "train.lr=2e-3",
            "nlg.max_decode_examples=4",
            "nlg.num_beams=2",
            "nlg.max_new_tokens=8",
        ],
        tmp_path,
    )
    record = run_experiment(cfg)
    losses = [e["train_loss"] for e in record["epochs"]]
    assert losses[-1] < losses[0]
    if method != "finetune":
        assert all(abs(s - 0.6) < 1e-3 for s in record["sparsity_achieved"]["per_matrix"].values())
        assert len(record["sparsity_achieved"]["per_matrix"]) == 12
    test = record["generation"]["test"]
    assert test["inputs"] == 4 and {"bleu", "nist", "meteor", "ter", "rouge_l"} <= set(test["metrics"])
    runs = tmp_path / "results" / "runs"
    hyps = (runs / test["hypotheses"]).read_text().splitlines()
    refs = [json.loads(line) for line in (runs / test["references"]).read_text().splitlines()]
    assert len(hyps) == len(refs) == 4 and all(len(r) >= 1 for r in refs)
    assert test["generation"]["num_beams"] == 2
    on_disk = json.loads((runs / f"{record['run_id']}.json").read_text())
    assert on_disk["generation"]["test"]["metrics"] == test["metrics"]
    exported = AutoModelForCausalLM.from_pretrained(Path(record["export_dir"]))
    assert isinstance(exported.transformer.h[0].attn.c_attn, Conv1D)
    if method != "finetune":
        weight = exported.transformer.h[0].attn.c_attn.weight  # (in, 3·hidden): q | k | v
        for part in weight.split(32, dim=1):
            assert (part == 0).float().mean().item() == pytest.approx(0.6, abs=1e-3)
