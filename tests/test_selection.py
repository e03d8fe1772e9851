"""The one run-selection policy: tables and figures summarise the same records the same way."""

from __future__ import annotations

import csv
import json
import warnings

import pytest

from helpers import class_counts, fake_record
from pst_bench.record import RecordSkipped, as_record, load_records
from pst_bench.report import figures
from pst_bench.report.selection import select_cell, select_cells
from pst_bench.report.tables import make_tables


def sst2(method: str, seed: int, dev: float, *extra: str) -> dict:
    return fake_record(
        [f"method={method}", "task=sst2", "model=tiny-bert", "method.sparsity=0.9", f"train.seed={seed}", *extra],
        dev=dev,
    )


@pytest.fixture
def runs(tmp_path):
    """Records that made Table 2 and Figure 3 disagree before the policy had one owner."""
    folder = tmp_path / "runs"
    (folder / "later").mkdir(parents=True)
    records = {
        "a_pst_s1.json": sst2("pst", 1, 0.80),
        "b_pst_mag_ab_rc_s1.json": sst2("pst_mag_ab_rc", 1, 0.70),  # the same method and seed again
        "a_pst_s2.json": sst2("pst", 2, 0.82),
        "later/pst_s3.json": sst2("pst", 3, 0.84),  # a record in a sub-folder
        "c_pst_lr_s1.json": sst2("pst", 1, 0.60, "train.lr=1e-3"),  # a grid: a worse learning rate
        "c_pst_lr_s2.json": sst2("pst", 2, 0.62, "train.lr=1e-3"),
        "d_map_s1.json": sst2("map", 1, 0.75),
        "d_map_s1_again.json": sst2("map", 1, 0.55),  # a rerun: counted once, the first
    }
    for name, record in records.items():
        (folder / name).write_text(json.dumps(record))
    (folder / "finished_but_empty.json").write_text(json.dumps({"status": "finished"}))
    return folder


def test_tables_and_figure3_show_the_same_runs(runs, tmp_path):
    with pytest.warns(
        RecordSkipped,
        match="finished_but_empty.json: skipped, missing key[(]s[)]: task, model, "
        "method, sparsity, seed, main_split, final",
    ):
        make_tables(runs, tmp_path / "out")
    with open(tmp_path / "out" / "table2_cells.csv", encoding="utf-8", newline="") as handle:
        cells = {row["method"]: row for row in csv.DictReader(handle)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RecordSkipped)
        series = figures.metric_vs_sparsity(load_records(runs))[("tiny-bert", "sst2")]
    for label in ("PST", "MaP"):
        (point,) = series[label]
        assert float(cells[label]["median"]) == pytest.approx(100 * point["median"])
        assert cells[label]["seeds"] == ";".join(str(seed) for seed in point["seeds"])
    pst = cells["PST"]
    assert (pst["seeds"], pst["median"], pst["settings"]) == ("1;2;3", "82.000000", "2")
    assert pst["files"] == "a_pst_s1.json;a_pst_s2.json;later/pst_s3.json"
    assert pst["setting"] == "train.lr=3e-05"
    assert (cells["MaP"]["files"], cells["MaP"]["settings"]) == ("d_map_s1.json", "1")
    notes = (tmp_path / "out" / "table2.md").read_text(encoding="utf-8")
    assert "b_pst_mag_ab_rc_s1.json repeats a_pst_s1.json" in notes
    assert "d_map_s1_again.json repeats d_map_s1.json" in notes


def test_figures_draw_from_the_selected_runs(runs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RecordSkipped)
        chosen = figures.select_runs(figures.load_runs(runs))
    assert sorted(run.record.name for run in chosen) == [
        "a_pst_s1.json",
        "a_pst_s2.json",
        "d_map_s1.json",
        "later/pst_s3.json",
    ]


def test_a_key_older_records_lack_does_not_split_a_cell():
    old = sst2("pst", 1, 0.8)
    new = sst2("pst", 2, 0.9)
    del old["config"]["train"]["lr_warmup_frac"]  # a setting this record predates
    cell = select_cell("cell", [as_record(old, "old.json"), as_record(new, "new.json")])
    assert not cell.is_grid and [run.name for run in cell.runs] == ["old.json", "new.json"]


def test_generation_cells_prefer_the_lower_dev_loss():
    def e2e(seed, loss, lr):
        return as_record(
            fake_record(
                ["task=e2e", "model=tiny-gpt2", "method=pst", f"train.seed={seed}", f"train.lr={lr}"], dev=loss
            ),
            f"e2e_{lr}_{seed}.json",
        )

    cells = select_cells([e2e(1, 2.0, 1e-4), e2e(1, 1.5, 3e-4)], lambda record: record.task)
    assert cells["e2e"].chosen.setting == "train.lr=0.0003"
    assert [candidate.setting for candidate in cells["e2e"].candidates] == ["train.lr=0.0001", "train.lr=0.0003"]


def test_the_pool_rule_and_an_unknown_rule():
    records = [as_record(sst2("pst", 1, 0.8), "a.json"), as_record(sst2("pst", 1, 0.6, "train.lr=1e-3"), "b.json")]
    pooled = select_cell("cell", records, rule="pool")
    assert sorted(run.name for run in pooled.runs) == ["a.json", "b.json"] and pooled.setting.startswith("pooled: ")
    with pytest.raises(ValueError, match="grid rule 'best'"):
        select_cell("cell", records, rule="best")


def test_a_grid_tuned_on_one_seed_is_ranked_on_that_seed():
    """The winner of seed 1 was repeated on seeds 2 and 3, which happened to be worse: it still wins,
    since the settings are compared on the seed they share, not a 3-seed median against a 1-seed value."""
    records = [
        as_record(sst2("pst", 1, 0.80), "tuned_s1.json"),
        as_record(sst2("pst", 2, 0.70), "tuned_s2.json"),
        as_record(sst2("pst", 3, 0.71), "tuned_s3.json"),
        as_record(sst2("pst", 1, 0.75, "train.lr=1e-3"), "other_s1.json"),
    ]
    cell = select_cell("cell", records)
    assert cell.chosen.setting == "train.lr=3e-05" and cell.chosen.seeds == [1, 2, 3]
    assert cell.chosen.ranking_seeds == (1,) and cell.chosen.median_dev == pytest.approx(0.80)
    # with no seed in common, each setting is ranked on its own seeds
    alone = select_cell("cell", records[1:])
    assert alone.chosen.setting == "train.lr=0.001" and alone.chosen.ranking_seeds == (1,)


def test_constant_predictor_thresholds():
    from helpers import class_counts, regression_spread

    def constant(predictions, task="sst2"):
        return as_record(fake_record([f"task={task}"], dev=0.5, predictions=predictions)).constant_predictor

    assert constant(class_counts(1, 99)) is True  # 99% of the dev set in one class
    assert constant(class_counts(3, 97)) is False
    assert constant(None) is None  # an older record without a prediction summary
    assert constant(regression_spread(0.07, label_std=1.5), "stsb") is True  # below 5% of the labels' std
    assert constant(regression_spread(0.08, label_std=1.5), "stsb") is False


def test_a_constant_predictor_never_wins_a_grid_over_a_setting_that_learned():
    """MRPC at 90%: MvP's scores at 3e-3 predict "paraphrase" for every pair (F1 81.22), at 1e-3 they
    learned (F1 80.61, both classes): the grid shows the run that learned."""
    learned = fake_record(
        ["task=mrpc", "method=mvp", "method.score_lr=1e-3"], dev=0.8061, predictions=class_counts(99, 309)
    )
    constant = fake_record(
        ["task=mrpc", "method=mvp", "method.score_lr=3e-3"], dev=0.8122, predictions=class_counts(0, 408)
    )
    cell = select_cell("cell", [as_record(learned, "learned.json"), as_record(constant, "constant.json")])
    assert cell.chosen.setting == "method.score_lr=0.001" and not cell.chosen.constant
    assert [c.constant for c in cell.candidates] == [False, True]
    # when every setting is a constant predictor, the best value still wins (the cell prints `constant (v)`)
    lower = fake_record(["task=mrpc", "method=mvp", "method.score_lr=1e-2"], dev=0.0, predictions=class_counts(408, 0))
    both = select_cell("cell", [as_record(constant, "constant.json"), as_record(lower, "lower.json")])
    assert both.chosen.setting == "method.score_lr=0.003"


# --------------------------------------------------------------------------- selection seed vs held-out seeds


def grid_run(seed: int, lr: float, dev: float, *extra: str):
    """An SST-2 PST run of a learning-rate grid, as a RunRecord named by its lr and seed."""
    return as_record(sst2("pst", seed, dev, f"train.lr={lr}", *extra), f"pst_lr{lr:g}_s{seed}.json")


def test_held_out_cells_rank_on_the_selection_seed_only_and_never_show_it():
    """lr 1e-3 is best on the held-out seeds but worse on seed 0: the seed-0 winner (1e-4) is shown, on its
    held-out seeds only; ranked over all common seeds, 1e-3 would win."""
    records = [
        grid_run(0, 1e-4, 0.80),
        grid_run(0, 1e-3, 0.75),
        *(grid_run(seed, 1e-4, 0.70) for seed in (1, 2, 3)),
        *(grid_run(seed, 1e-3, 0.95) for seed in (1, 2, 3)),
    ]
    cell = select_cell("cell", records)
    assert cell.chosen.setting == "train.lr=0.0001" and cell.chosen.median_dev == pytest.approx(0.80)
    assert [c.ranking_seeds for c in cell.candidates] == [(0,), (0,)]
    assert cell.held_out and cell.selection_seeds == (0,) and cell.tuning_seeds == (0,) and not cell.pending
    assert [run.seed for run in cell.runs] == [1, 2, 3]
    assert {run.name for run in cell.runs} == {f"pst_lr0.0001_s{seed}.json" for seed in (1, 2, 3)}
    # the pool rule pools the held-out runs of every setting: still never seed 0
    assert sorted(run.seed for run in select_cell("cell", records, rule="pool").runs) == [1, 1, 2, 2, 3, 3]
    # with no selection seed (--selection-seeds given empty) the cell is ranked and shown as before
    before = select_cell("cell", records, selection_seeds=())
    assert not before.held_out and before.chosen.setting == "train.lr=0.001"
    assert [run.seed for run in before.runs] == [0, 1, 2, 3]
    # another selection seed: seed 1 tunes too, so only seeds 2 and 3 are shown
    two = select_cell("cell", records, selection_seeds=(0, 1))
    assert two.tuning_seeds == (0, 1) and [run.seed for run in two.runs] == [2, 3]


def test_a_cell_without_a_selection_seed_keeps_the_old_rule():
    records = [grid_run(42, 1e-4, 0.80), grid_run(43, 1e-4, 0.70), grid_run(42, 1e-3, 0.75)]
    cell = select_cell("cell", records)
    assert not cell.held_out and cell.selection_seeds == () and cell.chosen.ranking_seeds == (42,)
    assert [run.seed for run in cell.runs] == [42, 43]


def test_a_winner_with_only_the_selection_seed_is_pending():
    cell = select_cell("cell", [grid_run(0, 1e-4, 0.80), grid_run(0, 1e-3, 0.75), grid_run(1, 1e-3, 0.9)])
    assert cell.held_out and cell.pending and cell.runs == ()
    assert cell.chosen.setting == "train.lr=0.0001"
    # the figures leave a pending cell out instead of drawing an empty point
    records = [grid_run(0, 1e-4, 0.80)]
    assert figures.metric_vs_sparsity(records) == {}


@pytest.mark.parametrize(
    ("values", "edge"),
    [
        ({1e-4: 0.80, 3e-4: 0.75, 1e-3: 0.70}, "lowest"),
        ({1e-4: 0.70, 3e-4: 0.75, 1e-3: 0.80}, "highest"),
        ({1e-4: 0.70, 3e-4: 0.80, 1e-3: 0.75}, None),
        ({1e-4: 0.70, 3e-4: 0.80}, "highest"),
        ({3e-4: 0.80}, None),
    ],
)
def test_a_winner_on_the_grid_edge_is_flagged(values, edge):
    cell = select_cell("cell", [grid_run(0, lr, dev) for lr, dev in values.items()])
    assert cell.on_edge == edge
    assert len(cell.grid) == len(values)
    if len(values) > 1:
        assert cell.edge_key == "train.lr" and cell.edge_values == tuple(sorted(values))


def test_the_edge_of_a_score_learning_rate_grid_and_of_the_pool_rule():
    """MvP's grid varies method.score_lr (train.lr fixed): its edge is read there; the pool rule has no winner."""

    def mvp(score_lr, dev):
        record = fake_record(
            ["task=sst2", "method=mvp", "method.sparsity=0.9", "train.seed=0", f"method.score_lr={score_lr}"], dev=dev
        )
        return as_record(record, f"mvp_{score_lr}.json")

    records = [mvp(1e-3, 0.7), mvp(3e-3, 0.8), mvp(1e-2, 0.9)]
    cell = select_cell("cell", records)
    assert (cell.on_edge, cell.edge_key) == ("highest", "method.score_lr")
    assert select_cell("cell", records, rule="pool").on_edge is None


def test_a_setting_without_a_selection_seed_run_is_not_a_grid_point():
    """A setting run only on held-out seeds was never ranked: it cannot win and does not count as tuned."""
    records = [grid_run(0, 1e-4, 0.70), grid_run(0, 3e-4, 0.75), grid_run(1, 1e-3, 0.99), grid_run(1, 3e-4, 0.7)]
    cell = select_cell("cell", records)
    assert cell.chosen.setting == "train.lr=0.0003" and len(cell.candidates) == 3
    assert [c.setting for c in cell.grid] == ["train.lr=0.0001", "train.lr=0.0003"]
    assert cell.on_edge == "highest"  # the highest of the two ranked points, not of all three
