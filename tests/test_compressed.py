"""Compressed export (bitmask + values in safetensors): sizes, exact reload, tied GPT-2 weights."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from helpers import compose_cfg
from pst_bench.export.compressed import FORMAT, WEIGHTS_NAME, checkpoint_sizes, load_compressed, main, save_compressed
from pst_bench.models.loading import load_model
from pst_bench.models.prepare import prepare_model
from pst_bench.sparsity.conv1d import restore_conv1d
from pst_bench.sparsity.inject import merge_sparse_layers, set_sparsity


def _merged_sparse_model(model_name: str, task: str, sparsity: float = 0.9):
    """A randomly initialised model, PST at `sparsity` with non-trivial factors, merged."""
    cfg = compose_cfg([f"model={model_name}", f"task={task}", "method=pst"])
    model = load_model(cfg.model, cfg.task, seed=0)
    layers = prepare_model(model, cfg.model, cfg.method)
    set_sparsity(model, sparsity)
    with torch.no_grad():
        for layer in layers.values():
            layer.V.normal_(std=0.01)
    merge_sparse_layers(model)
    restore_conv1d(model)
    return model.eval(), list(layers)


def _inputs(vocab: int):
    ids = torch.randint(0, vocab, (3, 12), generator=torch.Generator().manual_seed(1))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


@torch.no_grad()
def _logits(model, inputs):
    return model(**inputs).logits


def test_float32_reload_gives_identical_predictions_and_stores_sparse_matrices_as_bitmasks(tmp_path):
    model, sparse_names = _merged_sparse_model("tiny-bert", "sst2")
    folder = save_compressed(model, tmp_path / "c32", value_dtype="float32")
    reloaded = load_compressed(folder)
    inputs = _inputs(model.config.vocab_size)
    assert torch.equal(_logits(reloaded, inputs), _logits(model, inputs))
    for name, tensor in model.state_dict().items():
        assert torch.equal(reloaded.state_dict()[name], tensor), name
    with safe_open(str(folder / WEIGHTS_NAME), framework="pt") as handle:
        entries = json.loads(handle.metadata()["entries"])
    assert {f"{n}.weight" for n in sparse_names} <= {n for n, e in entries.items() if e["kind"] == "bitmask"}
    assert entries["bert.embeddings.word_embeddings.weight"]["kind"] == "dense"


def test_float16_reload_equals_the_model_with_values_rounded_to_float16(tmp_path):
    model, _ = _merged_sparse_model("tiny-bert", "sst2")
    reloaded = load_compressed(save_compressed(model, tmp_path / "c16", value_dtype="float16"))
    rounded = {k: (v.half().float() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    for name, tensor in reloaded.state_dict().items():
        assert torch.equal(tensor, rounded[name]), name
    inputs = _inputs(model.config.vocab_size)
    assert torch.equal(_logits(reloaded, inputs).argmax(-1), _logits(model, inputs).argmax(-1))


def test_size_against_the_dense_checkpoint(tmp_path):
    """At 90% sparsity the sparsified matrices shrink to 10% values + 1 bit per entry; the dense
    parts (here mostly the 30k-token embedding of the tiny model) only halve with float16."""
    model, _ = _merged_sparse_model("tiny-bert", "sst2")
    model.save_pretrained(tmp_path / "dense")
    save_compressed(model, tmp_path / "c16", value_dtype="float16")
    sizes = checkpoint_sizes(tmp_path / "dense", tmp_path / "c16")
    state = model.state_dict()
    sparse = sum(v.numel() for k, v in state.items() if (v == 0).float().mean() > 0.8)
    dense_rest = sum(v.numel() for v in state.values()) - sparse
    expected = sparse * (0.1 * 2 + 1 / 8) + dense_rest * 2  # bytes, before the header
    assert sizes["compressed_bytes"] == pytest.approx(expected, rel=0.02)
    assert sizes["ratio"] < 0.55


def test_gpt2_conv1d_and_tied_lm_head_round_trip(tmp_path):
    model, _ = _merged_sparse_model("tiny-gpt2", "e2e", sparsity=0.6)
    folder = save_compressed(model, tmp_path / "gpt2", value_dtype="float32")
    reloaded = load_compressed(folder)
    assert reloaded.lm_head.weight.data_ptr() == reloaded.transformer.wte.weight.data_ptr()
    inputs = _inputs(model.config.vocab_size)
    assert torch.equal(_logits(reloaded, inputs), _logits(model, inputs))


def test_expand_writes_a_plain_save_pretrained_folder(tmp_path):
    from transformers import AutoModelForSequenceClassification

    model, _ = _merged_sparse_model("tiny-bert", "sst2")
    folder = save_compressed(model, tmp_path / "c32", value_dtype="float32")
    assert main(["expand", str(folder), str(tmp_path / "plain")]) == 0
    plain = AutoModelForSequenceClassification.from_pretrained(tmp_path / "plain").eval()
    inputs = _inputs(model.config.vocab_size)
    assert torch.equal(_logits(plain, inputs), _logits(model, inputs))


def test_refuses_unmerged_models_and_foreign_folders(tmp_path):
    cfg = compose_cfg(["model=tiny-bert", "method=pst"])
    model = load_model(cfg.model, cfg.task, seed=0)
    prepare_model(model, cfg.model, cfg.method)
    with pytest.raises(ValueError, match="merge the sparse layers first"):
        save_compressed(model, tmp_path / "x")
    with pytest.raises(FileNotFoundError, match="not a folder written by save_compressed"):
        load_compressed(tmp_path)
    with pytest.raises(ValueError, match="value_dtype"):
        save_compressed(merge_sparse_layers(model), tmp_path / "y", value_dtype="int8")


def test_refuses_a_v1_file_packed_in_the_old_bit_order(tmp_path):
    """v1 packed the bitmask little-endian; read with v2's order its masks would be silently wrong."""
    from safetensors.torch import load_file, save_file

    model, _ = _merged_sparse_model("tiny-bert", "sst2")
    folder = save_compressed(model, tmp_path / "c32", value_dtype="float32")
    weights = folder / WEIGHTS_NAME
    with safe_open(str(weights), framework="pt") as handle:
        metadata = handle.metadata()
    assert metadata["format"] == FORMAT == "pst-bench/bitmask-v2"
    save_file(load_file(str(weights)), str(weights), metadata={**metadata, "format": "pst-bench/bitmask-v1"})
    with pytest.raises(ValueError, match="pst-bench/bitmask-v1 files .* re-export the model") as refused:
        load_compressed(folder)
    assert "\n" not in str(refused.value)
