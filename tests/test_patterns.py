"""Sparsity patterns and scopes: exact counts, valid patterns, units across matrices, config refusals."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from helpers import ROOT, compose_cfg
from pst_bench.errors import ConfigError
from pst_bench.models.loading import load_model
from pst_bench.models.prepare import prepare_model
from pst_bench.record import config_hash, run_id
from pst_bench.schema.validate import validate_config
from pst_bench.sparsity.allocation import Bounds, MaskGroup, MatrixEntry
from pst_bench.sparsity.inject import set_sparsity
from pst_bench.sparsity.layers import MagnitudeSparseLinear, MovementSparseLinear
from pst_bench.sparsity.mask import kept_count, topv_mask
from pst_bench.sparsity.patterns import NM, Blocks, parse_pattern


def _scores(n=16, k=32, seed=0):
    return torch.randn(n, k, generator=torch.Generator().manual_seed(seed))


# -- one matrix ---------------------------------------------------------------------
@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.5, 0.9])
def test_unstructured_pattern_is_the_papers_top_v(sparsity):
    scores = _scores()
    mask = parse_pattern("unstructured").mask(scores, sparsity)
    assert torch.equal(mask, topv_mask(scores, kept_count(scores.numel(), sparsity)))


@pytest.mark.parametrize("n,m", [(2, 4), (4, 8), (1, 4)])
def test_n_m_keeps_exactly_n_of_every_m_along_the_input_dimension(n, m):
    scores = _scores()
    pattern = parse_pattern(f"{n}:{m}")
    mask = pattern.mask(scores, pattern.final_sparsity)
    groups, group_scores = mask.reshape(16, -1, m), scores.reshape(16, -1, m)
    assert torch.all(groups.sum(dim=-1) == n)
    kept_min = torch.where(groups, group_scores, torch.inf).amin(dim=-1)
    dropped_max = torch.where(groups, -torch.inf, group_scores).amax(dim=-1)
    assert torch.all(kept_min >= dropped_max)  # the n best of each group


def test_n_m_ramps_the_fraction_of_groups_already_at_n_m():
    scores = _scores()
    pattern = parse_pattern("2:4")
    groups_total = scores.numel() // 4
    for sparsity in (0.0, 0.1, 0.25, 0.4, 0.5):
        mask = pattern.mask(scores, sparsity).reshape(-1, 4)
        per_group = mask.sum(dim=1)
        assert set(per_group.tolist()) <= {2, 4}  # a group is dense or exactly 2:4
        assert int((per_group == 2).sum()) == round(sparsity / 0.5 * groups_total)
    # the groups that go 2:4 first are those whose two dropped weights score least
    mask = pattern.mask(scores, 0.25).reshape(-1, 4)
    cost = pattern.unit_scores(scores)
    assert cost[mask.sum(dim=1) == 2].max() <= cost[mask.sum(dim=1) == 4].min()


@pytest.mark.parametrize(
    "pattern,tile",
    [(Blocks(4, 8), (4, 8)), (parse_pattern("row"), (1, 32)), (parse_pattern("column"), (16, 1))],
    ids=["block4x8", "row", "column"],
)
@pytest.mark.parametrize("sparsity", [0.5, 0.75, 0.9])
def test_blocks_rows_and_columns_are_kept_whole_and_counted_exactly(pattern, tile, sparsity):
    scores = _scores()
    mask = pattern.mask(scores, sparsity)
    tiles = mask.reshape(16 // tile[0], tile[0], 32 // tile[1], tile[1])
    whole = tiles.all(dim=(1, 3)) | ~tiles.any(dim=(1, 3))
    assert torch.all(whole), "a tile is partly kept"
    units = (16 // tile[0]) * (32 // tile[1])
    assert int(tiles.all(dim=(1, 3)).sum()) == round((1 - sparsity) * units)
    means = scores.reshape(16 // tile[0], tile[0], 32 // tile[1], tile[1]).mean(dim=(1, 3))
    kept = tiles.all(dim=(1, 3))
    assert means[kept].min() >= means[~kept].max()  # the tiles with the highest mean score


def test_patterns_refuse_shapes_they_cannot_tile():
    with pytest.raises(ConfigError, match="does not divide the 16x30"):
        Blocks(4, 4).check((16, 30), "layer.x")
    with pytest.raises(ConfigError, match="larger than the 16x32"):
        Blocks(32, 4).check((16, 32), "layer.x")
    with pytest.raises(ConfigError, match="divisible by 8"):
        NM(4, 8).check((16, 12), "layer.x")
    for bad in ("4:4", "5:4", "0:4", "sparse", "2-4"):
        with pytest.raises(ConfigError, match="method.pattern"):
            parse_pattern(bad)


def test_structured_mask_keeps_the_straight_through_gradient():
    torch.manual_seed(0)
    layer = MovementSparseLinear(nn.Linear(32, 16))
    layer.pattern = parse_pattern("2:4")
    layer.sparsity = 0.5
    x = torch.randn(5, 32)
    layer(x).pow(2).sum().backward()
    mask = layer.current_mask()
    weight = layer.base_layer.weight.detach()
    # dL/dS = dL/dW' ⊙ W for every weight, kept or not (dM/dS := 1)
    grad_out = 2 * torch.nn.functional.linear(x, weight * mask, layer.base_layer.bias.detach())
    expected = (grad_out.T @ x) * weight
    torch.testing.assert_close(layer.mask_scores.grad, expected)


# -- several matrices: global scope and bounds ---------------------------------------------
def _magnitude_layers(seed=0):
    torch.manual_seed(seed)
    return [MagnitudeSparseLinear(nn.Linear(k, n)) for n, k in ((16, 32), (32, 16), (8, 64))]


def test_global_scope_keeps_one_threshold_across_matrices():
    layers = _magnitude_layers()
    with torch.no_grad():
        layers[1].base_layer.weight.mul_(3.0)  # one matrix's scores much larger: it keeps more
    group = MaskGroup([MatrixEntry(layer, parse_pattern("unstructured")) for layer in layers], "global", Bounds())
    for layer in layers:
        layer.sparsity = 0.8
    masks = [layer.current_mask() for layer in layers]
    total = sum(mask.numel() for mask in masks)
    assert sum(int(mask.sum()) for mask in masks) == kept_count(total, 0.8)
    kept = torch.cat([layer.base_layer.weight.abs()[mask] for layer, mask in zip(layers, masks)])
    dropped = torch.cat([layer.base_layer.weight.abs()[~mask] for layer, mask in zip(layers, masks)])
    assert kept.min() >= dropped.max()
    assert masks[1].float().mean() > masks[0].float().mean()
    assert group.layers == layers


def test_global_bounds_hold_each_matrix_within_min_and_max():
    layers = _magnitude_layers()
    with torch.no_grad():
        layers[1].base_layer.weight.mul_(10.0)
    bounds = Bounds(min_sparsity=0.6, max_sparsity=0.95, final_sparsity=0.8)
    MaskGroup([MatrixEntry(layer, parse_pattern("unstructured")) for layer in layers], "global", bounds)
    for sparsity in (0.4, 0.8):
        for layer in layers:
            layer.sparsity = sparsity
        masks = [layer.current_mask() for layer in layers]
        total = sum(mask.numel() for mask in masks)
        assert sum(int(mask.sum()) for mask in masks) == kept_count(total, sparsity)
        ramp = sparsity / 0.8  # the bounds scale with the schedule
        for mask in masks:
            achieved = 1 - mask.float().mean().item()
            assert 0.6 * ramp - 1e-3 <= achieved <= 0.95 * ramp + 1e-3, (sparsity, achieved)


def test_global_rows_of_different_widths_fit_the_budget_within_one_unit():
    layers = _magnitude_layers()
    MaskGroup([MatrixEntry(layer, parse_pattern("row")) for layer in layers], "global", Bounds())
    for layer in layers:
        layer.sparsity = 0.7
    masks = [layer.current_mask() for layer in layers]
    kept = sum(int(mask.sum()) for mask in masks)
    target = kept_count(sum(mask.numel() for mask in masks), 0.7)
    assert target - 64 < kept <= target  # 64: the widest row
    for mask in masks:
        assert torch.all(mask.all(dim=1) | ~mask.any(dim=1))


# -- units across matrices -----------------------------------------------------------
def _prepared(tmp_overrides, model="tiny-bert", task="sst2"):
    cfg = compose_cfg([f"model={model}", f"task={task}", *tmp_overrides])
    validate_config(cfg)
    model = load_model(cfg.model, cfg.task, 0)
    layers = prepare_model(model, cfg.model, cfg.method)
    set_sparsity(model, cfg.method.sparsity)
    return cfg, model, layers


def _unit_masks(layers, prefix):
    return {name.removeprefix(prefix): layer.current_mask() for name, layer in layers.items() if prefix in name}


@pytest.mark.parametrize("method", ["map", "mvp", "pst"])
def test_units_prune_ffn_neurons_and_heads_whole_across_their_matrices(method):
    cfg, model, layers = _prepared(
        [f"method={method}", "method.pattern=units", "method.sparsity=0.5", "model.arch.num_attention_heads=4"]
    )
    heads, head_dim = 4, 32 // 4
    for index in range(2):
        masks = _unit_masks(layers, f"bert.encoder.layer.{index}.")
        ffn_rows = masks["intermediate.dense"].all(dim=1)
        assert torch.all(ffn_rows | ~masks["intermediate.dense"].any(dim=1))
        assert torch.equal(masks["output.dense"].all(dim=0), ffn_rows)  # neuron j: row j in, column j out
        assert int(ffn_rows.sum()) == 32  # half of the 64 neurons, in this layer
        head_kept = masks["attention.output.dense"].reshape(32, heads, head_dim).all(dim=(0, 2))
        assert int(head_kept.sum()) == 2
        for part in ("query", "key", "value"):
            rows = masks[f"attention.self.{part}"].reshape(heads, head_dim, 32)
            assert torch.equal(rows.all(dim=(1, 2)), head_kept) and torch.equal(rows.any(dim=(1, 2)), head_kept)


def test_units_on_a_fused_gpt2_attention_prune_the_same_head_in_q_k_and_v():
    cfg, model, layers = _prepared(
        ["method=map", "method.pattern=units", "method.sparsity=0.5", "model.split_qkv=false"],
        model="tiny-gpt2",
        task="e2e",
    )
    masks = _unit_masks(layers, "transformer.h.0.")
    head_kept = masks["attn.c_proj"].reshape(32, 2, 16).all(dim=(0, 2))
    fused = masks["attn.c_attn"].reshape(3, 2, 16, 32)  # q, k, v one after another
    for part in range(3):
        assert torch.equal(fused[part].all(dim=(1, 2)), head_kept)
    assert int(head_kept.sum()) == 1


def test_units_global_ranks_every_unit_together_and_only_ffn_leaves_attention_dense():
    _, _, layers = _prepared(["method=pst", "method.pattern=units", "method.scope=global"])
    kept = sum(int(layer.current_mask().sum()) for layer in layers.values())
    total = sum(layer.base_layer.weight.numel() for layer in layers.values())
    head_size = 16 * (3 * 32 + 32)  # the largest unit
    assert kept_count(total, 0.9) - head_size < kept <= kept_count(total, 0.9)
    _, _, layers = _prepared(["method=map", "method.pattern=units", "method.units=[ffn]"])
    for name, layer in layers.items():
        sparsity = layer.achieved_sparsity()
        assert sparsity == (0.0 if "attention" in name else pytest.approx(1 - round(0.1 * 64) / 64)), name


# -- configs ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "overrides,message",
    [
        (["method=pst", "method.pattern=2:4"], "prunes exactly 50%.*method.sparsity=0.5"),
        (["method=map", "method.pattern=4:4", "method.sparsity=0.0"], "1 <= N < M"),
        (["method=finetune", "method.pattern=row"], "is dense"),
        (["method=map", "method.scope=everywhere"], "method.scope='everywhere'"),
        (["method=map", "method.pattern=units", "method.units=[neurons]"], "method.units="),
        (["method=map", "method.scope=global", "method.matrix_sparsity_max=0.5"], "within method.matrix_sparsity"),
        (["method=map", "method.pattern=diagonal"], "is unknown"),
    ],
)
def test_impossible_structures_are_refused_with_one_line(overrides, message):
    cfg = compose_cfg(["model=tiny-bert", "task=sst2", *overrides])
    with pytest.raises(ConfigError, match=message) as caught:
        validate_config(cfg)
    assert "\n" not in str(caught.value)


def test_a_block_that_does_not_divide_a_matrix_is_refused_when_the_model_is_built():
    with pytest.raises(ConfigError, match="block 3x3 does not divide the 32x32 matrix"):
        _prepared(["method=map", "method.pattern=block", "method.block_shape=[3,3]"])


def test_default_structure_keeps_the_run_ids_of_committed_records():
    folders = [ROOT / "results" / "runs", *sorted((ROOT / "results" / "archive").glob("cpu-*"))]
    records = {path: json.loads(path.read_text())["config"] for f in folders for path in sorted(f.glob("*.json"))}
    older = [path for path, config in records.items() if "pattern" not in config["method"]]
    assert len(older) >= 4, "no committed records from before the structure keys to check"
    for path, stored in records.items():  # every committed record's id is its config's hash, old or new
        assert config_hash(stored) == path.stem.rsplit("_", 1)[1], path.name
    for path in older:
        stored = records[path]
        with_keys = {**stored, "method": {**stored["method"], "pattern": "unstructured", "scope": "layer"}}
        assert config_hash(with_keys) == config_hash(stored), path.name
    base = compose_cfg(["model=tiny-bert", "task=sst2", "method=map"])
    assert run_id(base) != run_id(compose_cfg(["model=tiny-bert", "task=sst2", "method=map", "method.pattern=row"]))


# -- reports --------------------------------------------------------------------------
def test_structured_runs_are_labelled_and_kept_out_of_the_papers_tables(tmp_path):
    from helpers import fake_record
    from pst_bench.record import load_record
    from pst_bench.report.labels import label_of
    from pst_bench.report.tables import make_tables

    runs = tmp_path / "runs"
    runs.mkdir()
    base = ["task=sst2", "model=minilm-l6", "train.seed=42"]
    records = {
        "paper.json": fake_record([*base, "method=pst"], dev=0.80),
        "rows.json": fake_record([*base, "method=pst", "method.pattern=row"], dev=0.99),
        "ablation.json": fake_record([*base, "method=pst_rc", "method.pattern=block"], dev=0.99),
        "global.json": fake_record([*base, "method=map", "method.scope=global"], dev=0.99),
    }
    for name, record in records.items():
        (runs / name).write_text(json.dumps(record))
    labels = {name: label_of(load_record(runs / name)) for name in records}
    assert labels == {
        "paper.json": "PST",
        "rows.json": "PST (row)",
        "ablation.json": "PST[rc] (block:4x4)",
        "global.json": "MaP (global)",
    }
    make_tables(runs, tmp_path / "tables")
    written = " ".join(path.read_text() for path in (tmp_path / "tables").glob("table*"))
    assert "80.00" in written and "99.00" not in written


@pytest.mark.parametrize(
    "structure",
    [["method.pattern=2:4", "method.sparsity=0.5"], ["method.pattern=units", "method.scope=global"]],
    ids=["2:4", "units-global"],
)
def test_a_tiny_structured_run_trains_and_records_its_structure(tmp_path, synthetic_data, structure):
    from helpers import tiny_run_overrides
    from pst_bench.export import load_masks
    from pst_bench.run.experiment import run_experiment

    overrides = [o for o in tiny_run_overrides(synthetic_data, "pst") if not o.startswith("method.sparsity")]
    record = run_experiment(compose_cfg([*overrides, "method.sparsity=0.5", *structure], tmp_path))
    assert record["status"] == "finished"
    assert record["config"]["method"]["pattern"] == structure[0].split("=")[1]
    achieved = record["sparsity_achieved"]
    masks = load_masks(tmp_path / "results" / "runs" / record["artifacts"]["masks"])
    if "2:4" in structure[0]:
        assert record["params"]["mask_structure"].startswith("pattern=2:4, scope=layer: one selection per matrix")
        assert all(value == 0.5 for value in achieved["per_matrix"].values())
        for mask in masks.values():
            assert (mask.reshape(-1, 4).sum(axis=1) == 2).all()
    else:
        assert "ranking over all of them" in record["params"]["mask_structure"]
        assert abs(achieved["overall"] - 0.5) < 0.1
        ffn_in = masks["bert.encoder.layer.0.intermediate.dense"]
        ffn_out = masks["bert.encoder.layer.0.output.dense"]
        assert (ffn_in.all(axis=1) == ffn_out.all(axis=0)).all()
    from pst_bench.report.figures import make_figures

    written, _ = make_figures(tmp_path / "results" / "runs", tmp_path / "figures", sparsity=0.5)
    assert any(path.name.startswith("fig2_masks_tiny-bert_sst2_p50") for path in written)


def test_structured_table_compares_units_with_magnitude_and_unstructured_and_reads_the_speed(tmp_path):
    from helpers import fake_record
    from pst_bench.record import load_records
    from pst_bench.report.structured import write_structured

    runs, bench = tmp_path / "runs", tmp_path / "bench"
    runs.mkdir()
    bench.mkdir()
    base = ["task=sst2", "model=minilm-l6", "train.max_train_examples=2000"]
    made = {
        "ft": ([*base, "method=finetune", "train.seed=42"], 0.80),
        "map_u42": ([*base, "method=map", "method.pattern=units", "method.sparsity=0.5", "train.seed=42"], 0.70),
        "map_u43": ([*base, "method=map", "method.pattern=units", "method.sparsity=0.5", "train.seed=43"], 0.72),
        "pst_u42": ([*base, "method=pst", "method.pattern=units", "method.sparsity=0.5", "train.seed=42"], 0.74),
        "pst_u43": ([*base, "method=pst", "method.pattern=units", "method.sparsity=0.5", "train.seed=43"], 0.73),
        "pst": ([*base, "method=pst", "method.sparsity=0.5", "train.seed=42"], 0.78),
        "pst_90": ([*base, "method=pst", "method.sparsity=0.9", "train.seed=42"], 0.75),  # no structured run at 90%
    }
    for name, (overrides, value) in made.items():
        (runs / f"{name}.json").write_text(json.dumps(fake_record(overrides, dev=value)))
    speed = {
        "models": {
            "slim-50%": {"32x128": {"speedup_vs_dense": 1.8}},
            "unstructured": {"32x128": {"speedup_vs_dense": 1.0}},
        }
    }
    (bench / "infer_minilm-l6_cpu.json").write_text(json.dumps(speed))
    write_structured(load_records(runs), tmp_path, "runs", bench, "best-dev")
    table = (tmp_path / "structured.md").read_text()
    assert "| 50% | PST (units:ffn+head) | 42 43 | 73.50 [73.00–74.00] | 91.9% | 1.80× (slim-50%) |" in table
    assert "| 50% | MaP (units:ffn+head) | 42 43 | 71.00 [70.00–72.00] | 88.8% | 1.80× (slim-50%) |" in table
    assert "| minilm-l6 | sst2 | 50% | PST | 42 | 78.00 | 97.5% | 1.00× (unstructured) |" in table
    assert "| minilm-l6 | sst2 | 0% | Fine-tune | 42 |" in table and "90%" not in table
    assert "PST − MaP with units, per seed: +4.00, +1.00 (mean +2.50)" in table


@pytest.mark.parametrize("method", ["map", "mvp", "pst"])
@pytest.mark.parametrize("scope", ["layer", "global"])
@pytest.mark.parametrize("pattern", ["unstructured", "2:4", "block", "row", "column", "units"])
def test_every_pattern_and_scope_composes_and_appears_in_info_params(method, scope, pattern):
    from pst_bench.models.params import format_report, parameter_report_for_config

    sparsity = "0.5" if pattern == "2:4" else "0.9"
    overrides = [
        f"method={method}",
        f"method.pattern={pattern}",
        f"method.scope={scope}",
        f"method.sparsity={sparsity}",
    ]
    cfg = compose_cfg(["model=tiny-bert", "task=sst2", *overrides])
    validate_config(cfg)
    line = format_report(cfg, parameter_report_for_config(cfg))
    assert f"pattern={pattern}" in line and f"scope={scope}" in line
