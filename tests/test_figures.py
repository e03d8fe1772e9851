"""make figures: the paper's Figures 2-5 from real tiny runs' records, masks and score samples."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from helpers import fake_record

pytest.importorskip("matplotlib")

from pst_bench.export import load_masks  # noqa: E402
from pst_bench.record import RecordSkipped, as_record  # noqa: E402
from pst_bench.report import figures, masks  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def runs(tiny_runs, tmp_path_factory):
    """Tiny real runs in one results folder of their own: MaP, MvP, PST at 90%, and PST at 50%.

    The session's shared runs (conftest.TinyRuns: trained once, diagnostics every 2 steps), copied.
    """
    keys = (("map", 0.9), ("mvp", 0.9), ("pst", 0.9), ("pst", 0.5))
    folder = tiny_runs.folder(tmp_path_factory.mktemp("figures") / "runs", *keys)
    return folder, {key: tiny_runs.get(*key) for key in keys}


def _png(path):
    from PIL import Image

    assert path.is_file(), path
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 5_000, (path, len(data))
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        width, height = image.size
    assert width > 300 and height > 200
    return data


# -- pure functions -----------------------------------------------------------------------
def test_sparsity_histograms_of_a_known_mask():
    # 4 rows x 10 columns; kept entries per row: 10, 7, 0, 1 -> row sparsity 0.0, 0.3, 1.0, 0.9
    mask = np.zeros((4, 10), dtype=bool)
    mask[0, :] = True
    mask[1, :7] = True
    mask[3, 9] = True
    hist = figures.sparsity_histograms(mask)
    np.testing.assert_allclose(hist["edges"], np.linspace(0, 1, 11))
    expected_rows = np.zeros(10)
    expected_rows[[0, 3, 9]] = [25.0, 25.0, 50.0]  # 0.3 in [0.3, 0.4); 0.9 and 1.0 in the last bin
    np.testing.assert_allclose(hist["rows"], expected_rows)
    # columns (4 entries each): 0-6 keep rows 0 and 1 -> 0.5; 7, 8 keep row 0 -> 0.75; 9 keeps rows 0, 3 -> 0.5
    expected_cols = np.zeros(10)
    expected_cols[5] = 80.0
    expected_cols[7] = 20.0
    np.testing.assert_allclose(hist["columns"], expected_cols)
    assert hist["rows"].sum() == pytest.approx(100.0) and hist["columns"].sum() == pytest.approx(100.0)


def test_sparsity_histogram_of_a_saved_mask_matches_its_sparsity(runs):
    runs_dir, records = runs
    record = records["pst", 0.9]
    mask = load_masks(runs_dir / record["artifacts"]["masks"])["bert.encoder.layer.0.attention.self.query"]
    hist = figures.sparsity_histograms(mask)
    centers = (hist["edges"][:-1] + hist["edges"][1:]) / 2
    # the mean row sparsity is 0.9 (v = 10% kept), and the histogram's mean is within half a bin of it
    assert abs((hist["rows"] / 100 * centers).sum() - 0.9) <= 0.05
    assert abs((hist["columns"] / 100 * centers).sum() - 0.9) <= 0.05


def test_hamming_similarity_hand_values():
    a = np.array([[1, 0, 1, 0], [1, 1, 0, 0]], dtype=bool)
    b = np.array([[1, 1, 1, 0], [0, 1, 0, 1]], dtype=bool)  # differs in 3 of 8 entries
    assert masks.hamming_similarity(a, b) == pytest.approx(5 / 8)
    assert masks.hamming_similarity(a, a) == 1.0
    assert masks.hamming_similarity(a, ~a) == 0.0
    with pytest.raises(ValueError):
        masks.hamming_similarity(a, b[:, :2])
    sims = masks.similarity_by_layer({"x": a, "y": a, "z": a}, {"y": ~a, "x": b})
    assert sims == [("x", pytest.approx(5 / 8)), ("y", 0.0)]  # first's order, only shared names


def test_mask_distance_hand_values():
    a = np.array([[1, 0, 0, 0], [0, 1, 0, 0]], dtype=bool)  # keeps 2 of 8
    b = np.array([[1, 0, 0, 0], [0, 0, 1, 0]], dtype=bool)  # shares one kept entry, two entries differ
    result = masks.mask_distance({"x": a, "y": a}, {"x": b, "y": a, "z": a})
    assert result.matrices == 2
    assert result.distance == pytest.approx(2 / 16)
    assert result.kept_overlap == pytest.approx(3 / 4)
    assert masks.mask_distance({"x": a}, {"y": a}) is None


def test_mask_pairs_compare_the_shown_runs_seed_by_seed(runs):
    runs_dir, records = runs
    from pst_bench.record import load_records

    pairs = masks.mask_pairs(load_records(runs_dir))
    at90 = {(p.first, p.second): p for p in pairs if p.sparsity == 90.0}
    assert set(at90) == set(masks.PAIRS)
    loaded = {m: load_masks(runs_dir / records[m, 0.9]["artifacts"]["masks"]) for m in ("map", "mvp", "pst")}
    a, b = loaded["map"], loaded["mvp"]
    differ = sum(int(np.count_nonzero(a[n] != b[n])) for n in a)
    assert at90["MaP", "MvP"].result.distance == pytest.approx(differ / sum(m.size for m in a.values()))
    assert at90["MaP", "MvP"].seed == 42


def test_mask_similarity_of_saved_runs(runs):
    runs_dir, records = runs
    loaded = {m: load_masks(runs_dir / records[m, 0.9]["artifacts"]["masks"]) for m in ("map", "mvp", "pst")}
    sims = masks.similarity_by_layer(loaded["map"], loaded["pst"])
    assert [name for name, _ in sims] == list(loaded["map"])
    for name, value in sims:
        a, b = loaded["map"][name], loaded["pst"][name]
        assert value == pytest.approx(np.count_nonzero(a == b) / a.size)
        # both keep exactly 10%: agreement is at least 80% and (at 90%) at most 100%
        assert 0.8 - 1e-9 <= value <= 1.0


def test_metric_vs_sparsity_series(runs):
    _, records = runs
    series = figures.metric_vs_sparsity(list(records.values()))
    assert list(series) == [("tiny-bert", "sst2")]
    methods = series["tiny-bert", "sst2"]
    assert sorted(methods) == ["MaP", "MvP", "PST"]
    assert [p["sparsity"] for p in methods["PST"]] == [50, 90]
    assert [p["sparsity"] for p in methods["MaP"]] == [90]
    labels = {"map": "MaP", "mvp": "MvP", "pst": "PST"}
    for (method, sparsity), record in records.items():
        point = next(p for p in methods[labels[method]] if p["sparsity"] == round(sparsity * 100))
        expected = (record["best_in_final_window"] or record["final"])["main"]
        assert point["median"] == point["min"] == point["max"] == pytest.approx(expected)
        assert point["seeds"] == [42]
        assert point["metric"] == "accuracy"


def test_metric_vs_sparsity_median_and_range_over_seeds():
    def record(seed, value, *extra):
        return fake_record(
            ["task=rte", "model=tiny-bert", "method=pst", f"train.seed={seed}", *extra], dev=value, final=0.0
        )

    no_window = {**record(4, 0.65), "best_in_final_window": None}  # no window: the final epoch (0.0)
    records = [
        record(1, 0.6),
        record(2, 0.7),
        record(3, 0.9),
        record(3, 0.5),  # the same run again: counted once
        no_window,
        fake_record(["task=e2e", "model=tiny-gpt2", "method=pst"], dev=1.0),  # NLG: not in Figure 3
        {"status": "running", "task": "rte"},
    ]  # partial: ignored
    points = figures.metric_vs_sparsity(records)["tiny-bert", "rte"]["PST"]
    assert len(points) == 1
    assert points[0]["seeds"] == [1, 2, 3, 4]
    assert points[0]["median"] == pytest.approx(0.65)
    assert points[0]["min"] == 0.0 and points[0]["max"] == pytest.approx(0.9)
    # A learning-rate grid on top: the setting with the best median dev value is the point.
    better = [record(seed, 0.8, "train.lr=3e-4") for seed in (1, 2)]
    points = figures.metric_vs_sparsity(records + better)["tiny-bert", "rte"]["PST"]
    assert points[0]["seeds"] == [1, 2] and points[0]["median"] == pytest.approx(0.8)
    assert points[0]["constant"] is False


def test_figure3_marks_a_cell_of_constant_predictors(tmp_path):
    from helpers import class_counts

    one_class = [
        fake_record(
            ["task=rte", "model=tiny-bert", "method=map", f"train.seed={s}"], dev=0.53, predictions=class_counts(0, 9)
        )
        for s in (1, 2)
    ]
    learned = fake_record(["task=rte", "model=tiny-bert", "method=pst"], dev=0.6)
    series = figures.metric_vs_sparsity([*one_class, learned])["tiny-bert", "rte"]
    assert series["MaP"][0]["constant"] is True and series["PST"][0]["constant"] is False


def test_constant_baselines_per_panel():
    """Figure 3's dotted line: the baseline any classification record of the panel stored."""
    from helpers import class_counts

    stored = {**class_counts(4, 5), "constant_baseline": {"class": 1, "main": 0.5271}}
    records = [
        fake_record(["task=rte", "model=tiny-bert", "method=map"], dev=0.6, predictions=stored),
        fake_record(["task=rte", "model=tiny-bert", "method=pst"], dev=0.6, predictions=None),  # older record
        fake_record(["task=sst2", "model=tiny-bert", "method=pst"], dev=0.7, predictions=class_counts(4, 5)),
    ]
    baselines = figures.constant_baselines([as_record(r) for r in records], by=figures.panel_key)
    assert baselines == {("tiny-bert", "rte"): pytest.approx(0.5271)}


def test_pick_layer():
    names = [
        "bert.embeddings.x",
        "bert.encoder.layer.0.attention.self.query",
        "bert.encoder.layer.0.attention.self.key",
    ]
    assert figures.pick_layer(names) == "bert.encoder.layer.0.attention.self.query"
    assert (
        figures.pick_layer(["transformer.h.0.attn.c_attn.q", "transformer.h.0.attn.c_attn.k"])
        == "transformer.h.0.attn.c_attn.q"
    )
    assert figures.pick_layer(names, "self.key") == "bert.encoder.layer.0.attention.self.key"
    assert figures.pick_layer(names, "nothing") is None
    assert figures.pick_layer(["a", "b"]) == "a"


# -- the figures ----------------------------------------------------------------------------
EXPECTED = [
    "fig2_masks_tiny-bert_sst2_p90.png",
    "fig3_metric_vs_sparsity.png",
    "fig4_weight_vs_score_tiny-bert_sst2_p90.png",
    "fig5_mask_similarity_tiny-bert_sst2_p90.png",
    "fig_mask_dynamics_p90.png",  # the tiny runs record diagnostics (train.diagnostics_every_steps)
]


def test_make_figures_writes_valid_deterministic_pngs(runs, tmp_path):
    runs_dir, _ = runs
    written, skipped = figures.make_figures(runs_dir, tmp_path / "a")
    assert sorted(p.name for p in written) == EXPECTED
    assert skipped == []
    first = {name: _png(tmp_path / "a" / name) for name in EXPECTED}
    for data in first.values():
        assert b"Software" not in data and b"matplotlib" not in data.lower()
    figures.make_figures(runs_dir, tmp_path / "b")
    for name in EXPECTED:
        assert (tmp_path / "b" / name).read_bytes() == first[name], f"{name} is not deterministic"


def test_cli_and_skipped_figures(runs, tmp_path, capsys):
    runs_dir, _ = runs
    out = tmp_path / "figs"
    assert figures.main(["--runs", str(runs_dir), "--out", str(out), "--layer", "layer.1.output.dense"]) == 0
    printed = capsys.readouterr().out
    # Figure 4's score sample holds the first 6 matrices only: layer 1's FFN output is not in it
    assert sorted(p.name for p in out.iterdir()) == sorted(set(EXPECTED) - {EXPECTED[2]})
    assert f"skipped {EXPECTED[2]}" in printed and "score sample" in printed
    for name in EXPECTED:
        if name != EXPECTED[2]:
            assert f"wrote {out / name}" in printed

    # at 50% only PST ran: Figures 2 and 4 have one panel, Figure 5 (needs two methods) is skipped
    assert figures.main(["--runs", str(runs_dir), "--out", str(out / "p50"), "--sparsity", "0.5"]) == 0
    printed = capsys.readouterr().out
    assert sorted(p.name for p in (out / "p50").iterdir()) == [
        "fig2_masks_tiny-bert_sst2_p50.png",
        "fig3_metric_vs_sparsity.png",
        "fig4_weight_vs_score_tiny-bert_sst2_p50.png",
        "fig_mask_dynamics_p50.png",
    ]
    assert "skipped fig5_mask_similarity_tiny-bert_sst2_p50.png" in printed

    # no records at all: nothing written, and it says why
    empty = tmp_path / "empty"
    empty.mkdir()
    assert figures.main(["--runs", str(empty), "--out", str(tmp_path / "none")]) == 0
    assert not (tmp_path / "none").exists()
    assert "no usable records" in capsys.readouterr().out


def test_corrupt_records_and_artifacts_are_skipped_with_a_warning(runs, tmp_path):
    runs_dir, records = runs
    copy = tmp_path / "runs"
    shutil.copytree(runs_dir, copy)
    (copy / "truncated.json").write_text('{"status": "finished", "task": "sst2", "mod')
    (copy / "partial.json").write_text(json.dumps({"status": "running", "task": "sst2"}))
    (copy / "no_seed.json").write_text(
        json.dumps({"status": "finished", "task": "sst2", "model": "m", "method": "pst", "sparsity": 0.9})
    )
    # MvP's masks file is damaged: Figure 5 keeps MaP-PST only, Figure 2 shows MaP and PST
    mvp_masks = copy / records["mvp", 0.9]["artifacts"]["masks"]
    mvp_masks.write_bytes(mvp_masks.read_bytes()[:100])
    with pytest.warns((figures.FigureWarning, RecordSkipped)) as caught:
        written, skipped = figures.make_figures(copy, tmp_path / "out")
    messages = [str(w.message) for w in caught if issubclass(w.category, (figures.FigureWarning, RecordSkipped))]
    for name, why in (
        ("truncated.json", "not readable JSON"),
        ("partial.json", "status is 'running'"),
        ("no_seed.json", "missing key(s): seed, main_split, final"),
    ):
        assert any(str(copy / name) in m and why in m for m in messages), (name, messages)
    assert any(str(mvp_masks) in m for m in messages)
    assert sum(str(mvp_masks) in m for m in messages) == 1, messages  # warned once, not per figure
    assert sorted(p.name for p in written) == EXPECTED
    assert skipped == []


def test_metric_vs_sparsity_uses_pst_at_the_papers_ranks_only():
    def record(value, r1, r2):
        return fake_record(
            ["task=sst2", "model=tiny-bert", "method=pst", f"method.r1={r1}", f"method.r2={r2}"], dev=value
        )

    records = [record(0.70, 8, 8), record(0.80, 16, 16), record(0.75, 4, 8)]  # Table 4's grid beside it
    points = figures.metric_vs_sparsity(records)["tiny-bert", "sst2"]["PST"]
    assert [p["median"] for p in points] == [pytest.approx(0.70)]
