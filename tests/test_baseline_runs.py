"""The baselines beyond the paper (Wanda, one-shot Wanda, SparseGPT, soft movement pruning) as runs of the
runner: a tiny end-to-end run each, exact resume, what their records say; one real MiniLM-L6 run each on
real SST-2 (slow)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from helpers import ROOT, Interrupt, compose_cfg, die_after_checkpoint, tiny_run_overrides
from pst_bench.run.experiment import calibration_indices
from pst_bench.run.experiment import run_experiment as run

#: method file -> extra overrides of its tiny run
TINY = {
    "wanda": [],
    "wanda_oneshot": ["method.calibration_samples=32"],
    "sparsegpt": ["method.calibration_samples=32"],
    "soft_mvp": ["method.final_lambda=50", "method.score_lr=0.1"],
}


@pytest.mark.parametrize("method", list(TINY))
def test_tiny_run_end_to_end(method, tmp_path, synthetic_data):
    from pst_bench.record import as_record
    from pst_bench.report.labels import label_of

    cfg = compose_cfg(tiny_run_overrides(synthetic_data, method, *TINY[method]), tmp_path)
    record = run(cfg)
    assert record["status"] == "finished" and record["params"]["sparsified_matrices"] == 12
    achieved = record["sparsity_achieved"]["overall"]
    if method == "soft_mvp":
        assert record["sparsity_control"] == "penalty"
        assert [e["sparsity_achieved"] for e in record["epochs"]][-1] == pytest.approx(achieved)
        assert record["params"]["trainable_sparse_added"] == record["params"]["sparsified_weights"]
    else:
        assert achieved == pytest.approx(0.5, abs=0.02) and "sparsity_control" not in record
        assert record["params"]["trainable_sparse_added"] == 0
    if method in ("wanda_oneshot", "sparsegpt"):
        assert record["calibration"]["samples"] == 32 and record["calibration"]["tokens"] > 32
        assert all(e["sparsity_target"] == 0.5 for e in record["epochs"])  # the target from the first step
    else:
        assert "calibration" not in record
    exported = record["export_dir"]
    assert exported and (tmp_path / "exports").exists()
    label = {"wanda": "Wanda", "wanda_oneshot": "Wanda (one-shot)", "sparsegpt": "SparseGPT", "soft_mvp": "Soft MvP"}
    assert label_of(as_record(record)) == label[method]


def test_one_shot_wanda_is_another_computation_than_gradual_wanda():
    from helpers import fake_record
    from pst_bench.record import as_record
    from pst_bench.report.labels import method_of_label

    gradual = as_record(fake_record(["method=wanda", "model=tiny-bert"], dev=0.8))
    once = as_record(fake_record(["method=wanda_oneshot", "model=tiny-bert"], dev=0.8))
    assert gradual.computation == ("wanda",) and once.computation == ("wanda", "oneshot")
    assert method_of_label("Wanda (one-shot)") == "wanda_oneshot" and method_of_label("SparseGPT") == "sparsegpt"


def test_calibration_sequences_are_a_seeded_sample_of_the_training_set():
    first = calibration_indices(1000, 128, seed=3)
    assert first == calibration_indices(1000, 128, seed=3) and len(set(first)) == 128
    assert first != calibration_indices(1000, 128, seed=4)
    assert calibration_indices(20, 128, seed=3) == list(range(20))


@pytest.mark.parametrize("method", ["wanda", "sparsegpt"])
def test_resume_after_interruption_matches_an_uninterrupted_run(method, tmp_path, synthetic_data, monkeypatch):
    """Wanda's running statistics (a step's batches still pending at a mid-epoch checkpoint) and SparseGPT's
    fixed masks and updated weights come back from the checkpoint: no second calibration, same results."""
    import pst_bench.run.checkpoint as ckpt

    extra = ["train.epochs=3", "train.checkpoint_every_steps=2", *TINY.get(method, [])]
    overrides = tiny_run_overrides(synthetic_data, method, *extra)
    reference = run(compose_cfg(overrides, tmp_path / "reference"))
    interrupted = tmp_path / "interrupted"
    real_save = die_after_checkpoint(monkeypatch, step=8)  # mid-epoch 2 (6 steps per epoch)
    with pytest.raises(Interrupt):
        run(compose_cfg(overrides, interrupted))
    monkeypatch.setattr(ckpt, "save_checkpoint", real_save)
    if method == "sparsegpt":
        import pst_bench.adapter.model as adapter_model

        def no_second_calibration(*args, **kwargs):
            raise AssertionError("a resumed run calibrated again")

        monkeypatch.setattr(adapter_model, "calibrate_sequentially", no_second_calibration)
    resumed = run(compose_cfg(overrides, interrupted))
    assert [e["eval"] for e in resumed["epochs"]] == [e["eval"] for e in reference["epochs"]]
    assert resumed["sparsity_achieved"] == reference["sparsity_achieved"]
    if method == "sparsegpt":
        timeless = [{k: v for k, v in r["calibration"].items() if k != "seconds"} for r in (resumed, reference)]
        assert timeless[0] == timeless[1]  # the first process's calibration, kept in the checkpoint


def test_the_cli_runs_a_baseline_and_counts_its_parameters(tmp_path, synthetic_data):
    command = [
        sys.executable,
        "-m",
        "pst_bench.cli",
        "info=params",
        "model=tiny-bert",
        "method=sparsegpt",
        "method.pattern=2:4",
        "method.sparsity=0.5",
        f"hydra.run.dir={tmp_path}/hydra",
    ]
    out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "pattern=2:4" in out.stdout and "chosen once from calibration data" in out.stdout
    refused = subprocess.run(
        [*command[:-3], "method.pattern=row", command[-1]], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert refused.returncode == 2 and "method=sparsegpt prunes unstructured or N:M" in refused.stderr


@pytest.mark.slow
@pytest.mark.parametrize("method", list(TINY))
def test_real_minilm_run_on_real_sst2(method, tmp_path, shared_data):
    """MiniLM-L6 (real pretrained weights) on 64 real SST-2 sentences, 1 epoch: the method runs on real data,
    the one-shot methods calibrate on 64 real sequences, the masks reach the target."""
    extra = {"soft_mvp": ["method.final_lambda=50", "method.score_lr=0.1"]}.get(method, [])
    cfg = compose_cfg(
        [
            "model=minilm-l6",
            "task=sst2",
            f"method={method}",
            f"data.dir={shared_data}",
            "method.sparsity=0.5",
            "train.max_train_examples=64",
            "train.max_eval_examples=64",
            "train.epochs=1",
            "train.batch_size=16",
            "train.lr=1e-4",
            "export=false",
            *extra,
        ],
        tmp_path,
    )
    record = run(cfg)
    assert record["status"] == "finished" and record["epochs"][0]["train_loss"] > 0
    if method == "soft_mvp":
        assert 0.0 <= record["sparsity_achieved"]["overall"] < 1.0
    else:
        assert record["sparsity_achieved"]["overall"] == pytest.approx(0.5, abs=0.01)
    if method in ("wanda_oneshot", "sparsegpt"):
        assert record["calibration"]["samples"] == 64 and record["calibration"]["blocks"] == 6


DDP_SCRIPT = """
import torch, torch.distributed as dist
from transformers import BertConfig, BertForSequenceClassification
from pst_bench.adapter import SparseConfig, get_sparse_model

dist.init_process_group("gloo")
rank = dist.get_rank()
torch.manual_seed(0)  # the same model on both processes
config = BertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32)
sparse = get_sparse_model(BertForSequenceClassification(config), SparseConfig(method="wanda", sparsity=0.5))
sparse.set_sparsity(0.5)
sparse.train()
ids = torch.randint(1, 60, (4, 9), generator=torch.Generator().manual_seed(10 + rank))  # each its own batch
sparse(input_ids=ids, labels=torch.tensor([0, 1, 0, 1])).loss.backward()
local = {}
for name, layer in sparse.sparse_layers.items():
    local[name] = layer.pending_sq.clone()
    with torch.no_grad():
        layer.base_layer.weight.add_(0.0)  # an optimizer step, the same on both
mask = torch.cat([layer.current_mask().flatten() for layer in sparse.sparse_layers.values()]).to(torch.uint8)
masks = [torch.zeros_like(mask) for _ in range(2)]
dist.all_gather(masks, mask)
stats = [torch.zeros_like(local[name]) for _ in range(2)]
dist.all_gather(stats, local[name])
if rank == 0:
    print("SAME_MASKS", bool(torch.equal(masks[0], masks[1])), "DIFFERENT_DATA", not torch.equal(stats[0], stats[1]))
dist.destroy_process_group()
"""


@pytest.mark.slow
def test_gradual_wanda_ranks_by_one_statistic_across_processes(tmp_path):
    """Under several processes each sees its own batches; the statistics are summed over processes when
    folded, so every process keeps the same masks."""
    import shutil
    from pathlib import Path

    script = tmp_path / "ddp_wanda.py"
    script.write_text(DDP_SCRIPT)
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).with_name("torchrun"))
    command = [torchrun, "--nproc_per_node", "2", "--master_port", "29573", str(script)]
    out = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "SAME_MASKS True DIFFERENT_DATA True" in out.stdout


@pytest.mark.parametrize("model", ["tiny-gpt2", "tiny-llama"])
@pytest.mark.parametrize("method", ["wanda", "sparsegpt"])
def test_decoder_families_run_the_data_aware_methods(model, method, tmp_path, synthetic_data):
    """GPT-2 (Conv1D made linear, q/k/v split) and Llama: the token mask and the block-by-block calibration
    find their layers."""
    extra = ["train.epochs=1", "export=false", f"model={model}", "method.calibration_samples=32"]
    record = run(compose_cfg(tiny_run_overrides(synthetic_data, method, *extra), tmp_path))
    assert record["sparsity_achieved"]["overall"] == pytest.approx(0.5, abs=0.02)
    if method == "sparsegpt":
        assert record["calibration"]["blocks"] == 2


def test_labels_and_colours_come_from_the_registry():
    from pst_bench.methods import get_method
    from pst_bench.report.labels import OTHER_COLORS, color_of

    labels = ["MaP", "PST", "Wanda", "Wanda (one-shot)", "SparseGPT", "Soft MvP", "PST[mag]"]
    colors = {label: color_of(label, labels) for label in labels}
    for name in ("wanda", "sparsegpt", "soft_mvp"):
        assert colors[get_method(name).label] == get_method(name).color
    assert len(set(colors.values())) == len(labels)  # the other labels take colours no method named
    assert [color_of(label, ["PST[mag]", "PST[ab]"]) for label in ("PST[mag]", "PST[ab]")] == list(OTHER_COLORS[:2])
