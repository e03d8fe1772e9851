"""`make tables` (pst_bench.report.tables): hand-made records in, the paper's Tables 2-5 out."""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import pytest

from helpers import class_counts, fake_record, regression_spread
from pst_bench.report import tables
from pst_bench.report.selection import PAPER_RANKS
from pst_bench.report.tables import RecordSkipped, make_tables

SHARED_PAPER_CSV = Path(__file__).resolve().parents[2] / "shared" / "paper" / "paper_results.csv"


PARAMS = {
    "trainable_total": 2_821_634,
    "trainable_sparse_added": 2_820_096,
    "paper_rule_m": 2.82,
    "model_params": 109_483_778,
}


def glue_record(
    task: str,
    model: str,
    method: str,
    sparsity: float,
    seed: int,
    value: float,
    r1: int = 8,
    r2: int = 8,
    final: float | None = None,
    predictions: dict | None | str = "varied",
    **train,
) -> dict:
    """A GLUE results record from the real builder (value: the paper's metric, 0-1)."""
    overrides = [
        f"task={task}",
        f"model={model}",
        f"method={method}",
        f"method.sparsity={sparsity}",
        f"train.seed={seed}",
        *(f"train.{key}={value}" for key, value in train.items()),
    ]
    if method.startswith("pst"):
        overrides += [f"method.r1={r1}", f"method.r2={r2}"]
    return fake_record(overrides, dev=value, final=final, params=PARAMS, predictions=predictions)


def nlg_record(task: str, model: str, seed: int, metrics: dict) -> dict:
    """A GPT-2 PST record from the real builder, with the test metrics Table 3 reads."""
    return fake_record(
        [f"task={task}", f"model={model}", "method=pst", f"train.seed={seed}"],
        dev=1.5,
        params={"trainable_total": 7_520_256, "paper_rule_m": 7.52},
        extra={"generation": {"test": {"metrics": metrics}}},
    )


PST_RC_PAPER = {"qnli": 0.8510, "sst2": 0.8727, "cola": 0.3493, "stsb": 0.8150, "mrpc": 0.8512, "rte": 0.6173}


def write_records(folder: Path) -> None:
    """Every case the tables must handle, written as files into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    records = {
        # Table 2 / 4 / 5: full PST at 90%, r1 = r2 = 8; SST-2 on two seeds (best epoch != final).
        "sst2_pst_s1.json": glue_record("sst2", "bert-base", "pst", 0.9, 1, 0.881, final=0.5),
        "sst2_pst_s2.json": glue_record("sst2", "bert-base", "pst", 0.9, 2, 0.889),
        # pst_mag_ab_rc is the same method: it joins the PST cells (three seeds on MRPC).
        "mrpc_pst_s1.json": glue_record("mrpc", "bert-base", "pst", 0.9, 1, 0.85),
        "mrpc_pst_s2.json": glue_record("mrpc", "bert-base", "pst", 0.9, 2, 0.87),
        "mrpc_pst_s3.json": glue_record("mrpc", "bert-base", "pst_mag_ab_rc", 0.9, 3, 0.86),
        # MNLI: the matched dev set; no best_in_final_window -> the final epoch.
        "mnli_map.json": {**glue_record("mnli", "bert-base", "map", 0.5, 42, 0.8), "best_in_final_window": None},
        # A model the paper did not run, on a training subset.
        "sst2_minilm.json": glue_record("sst2", "minilm-l6", "pst", 0.9, 42, 0.789, max_train_examples=4000),
        # A paper number quoted from prior work (RoBERTa-base fine-tune).
        "rte_roberta_ft.json": glue_record("rte", "roberta-base", "finetune", 0.0, 42, 0.75),
        # Table 4: another rank setting (not a Table 2 or 5 cell).
        "mrpc_pst_r4_16.json": glue_record("mrpc", "bert-base", "pst", 0.9, 42, 0.87, r1=4, r2=16),
        # Table 5: a variant on one task, and one on all six tasks with the paper's own numbers.
        "cola_pst_ab.json": glue_record("cola", "bert-base", "pst_ab", 0.9, 42, 0.25),
        **{
            f"{task}_pst_rc.json": glue_record(task, "bert-base", "pst_rc", 0.9, 42, value)
            for task, value in PST_RC_PAPER.items()
        },
        # Table 3: GPT-2 medium on E2E; a stand-in model on DART.
        "e2e_gpt2.json": nlg_record(
            "e2e",
            "gpt2-medium",
            42,
            {"bleu": 69.0, "nist": 8.5, "meteor": 0.46, "ter": 40.0, "ter_fraction": 0.40, "rouge_l": 0.7},
        ),
        "dart_tiny.json": nlg_record(
            "dart", "tiny-gpt2", 42, {"bleu": 1.5, "meteor": 0.1, "ter": 50.0, "ter_fraction": 0.5}
        ),
        # Unusable: still running, not a record, a record without its task.
        "running.json": {**glue_record("rte", "bert-base", "pst", 0.9, 7, 0.6), "status": "running"},
        "list.json": [1, 2, 3],
        "no_task.json": {k: v for k, v in glue_record("rte", "bert-base", "pst", 0.9, 8, 0.6).items() if k != "task"},
    }
    for name, record in records.items():
        (folder / name).write_text(json.dumps(record))
    (folder / "broken.json").write_text('{"status": "finished", "task": ')  # a crash mid-write
    (folder / "sst2_pst_s1.masks.npz").write_bytes(b"\x00\x01")  # ignored: not .json
    (folder / "e2e_gpt2.test.hyp.txt").write_text("a hypothesis\n")


@pytest.fixture
def built(tmp_path):
    """Tables built from the hand-made records, with the warnings they raised."""
    runs, out = tmp_path / "runs", tmp_path / "tables"
    write_records(runs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make_tables(runs, out)
    messages = [str(w.message) for w in caught if issubclass(w.category, RecordSkipped)]
    return runs, out, messages


def read_csv(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def row_of(rows: list[dict], **keys) -> dict:
    found = [row for row in rows if all(row[k] == v for k, v in keys.items())]
    assert len(found) == 1, (keys, rows)
    return found[0]


def test_unusable_files_are_skipped_with_a_warning_naming_them(built):
    _, out, messages = built
    for name, reason in (
        ("broken.json", "not readable JSON"),
        ("running.json", "status is 'running'"),
        ("list.json", "not a results record"),
        ("no_task.json", "missing key(s): task"),
    ):
        assert any(name in m and reason in m for m in messages), (name, messages)
    assert len(messages) == 4  # nothing about the .npz / .txt files
    assert (out / "table2.md").is_file()


def test_table2_cells_median_range_paper_and_difference(built):
    _, out, _ = built
    rows = read_csv(out / "table2.csv")
    pst = row_of(rows, Model="bert-base", Method="PST", Sparsity="90%")
    # Two seeds: median [min-max] of the best-in-window values (seed 1's final epoch is ignored).
    assert (pst["SST-2 ours"], pst["SST-2 paper"], pst["SST-2 diff"]) == (
        "88.50 [88.10–88.90] · 88.50 ± 5.08 (n=2)",
        "88.65",
        "-0.15",
    )
    # Three seeds, pst and pst_mag_ab_rc together; the r1=4/r2=16 run is not in this cell.
    assert (pst["MRPC ours"], pst["MRPC paper"], pst["MRPC diff"]) == (
        "86.00 [85.00–87.00] · 86.00 ± 2.48 (n=3)",
        "85.57",
        "+0.43",
    )
    assert (pst["CoLA ours"], pst["CoLA paper"], pst["CoLA diff"]) == ("-", "42.49", "-")
    assert (pst["Avg. ours"], pst["Avg. paper"]) == ("-", "75.99")
    assert (pst["Params exact (M)"], pst["Params paper rule (M)"], pst["Params paper (M)"]) == ("2.82", "2.82", "2.91")
    mnli = row_of(rows, Model="bert-base", Method="MaP", Sparsity="50%")
    assert (mnli["MNLI ours"], mnli["MNLI paper"], mnli["MNLI diff"]) == ("80.00", "83.58", "-3.58")
    minilm = row_of(rows, Model="minilm-l6", Method="PST")
    assert minilm["Paper model"] == "bert-base (stand-in)"
    assert (minilm["SST-2 ours"], minilm["SST-2 paper"], minilm["SST-2 diff"]) == ("78.90† · ret -", "ret 95.3%", "-")
    roberta = row_of(rows, Model="roberta-base", Method="Fine-tune")
    assert (roberta["Paper model"], roberta["RTE ours"], roberta["RTE paper"], roberta["RTE diff"]) == (
        "roberta-base",
        "75.00",
        "78.70*",
        "-3.70",
    )
    # Table 2 rows only: the ablation variants are Table 5's.
    assert {row["Method"] for row in rows} == {"Fine-tune", "MaP", "PST"}
    md = (out / "table2.md").read_text(encoding="utf-8")
    assert "from 8 results records" in md and "`make tables`" in md
    assert "| 88.50 [88.10–88.90] · 88.50 ± 5.08 (n=2) / 88.65 (-0.15) |" in md
    assert "| bert-base (stand-in) |" in md and "The paper did not run minilm-l6 (marked" in md


def test_missing_paper_cells_are_listed(built):
    _, out, _ = built
    missing = read_csv(out / "table2_missing.csv")
    keys = {(m["model"], m["method"], m["sparsity"], m["column"]) for m in missing}
    assert ("bert-base", "PST", "90%", "CoLA") in keys
    assert ("bert-base", "PST", "90%", "SST-2") not in keys
    assert ("minilm-l6", "MaP", "50%", "RTE") in keys
    assert not any(m["method"] == "L0-regu" or m["column"] == "Avg." for m in missing)
    assert ("roberta-base", "MvP", "90%", "QQP") in keys
    assert not any(m["model"] == "roberta-base" and m["sparsity"] == "50%" for m in missing)  # not in its grid
    cola = row_of(missing, model="bert-base", method="PST", sparsity="90%", column="CoLA")
    assert cola["command"] == "pst-bench model=bert-base task=cola method=pst method.sparsity=0.9"
    md = (out / "table2.md").read_text(encoding="utf-8")
    section = md.split("## Missing")[1]
    assert "- bert-base (paper bert-base), PST 90%: MNLI, QQP, QNLI, CoLA, STS-B, RTE\n" in section
    table4 = read_csv(out / "table4_missing.csv")
    assert row_of(table4, model="bert-base", task="SST-2", r1="4", r2="16")["command"] == (
        "pst-bench model=bert-base task=sst2 method=pst method.sparsity=0.9 method.r1=4 method.r2=16"
    )
    assert not [m for m in table4 if (m["model"], m["task"], m["r1"], m["r2"]) == ("bert-base", "MRPC", "4", "16")]


def test_table3_nlg_scaling_and_stand_in(built):
    _, out, _ = built
    rows = read_csv(out / "table3.csv")
    e2e = row_of(rows, Model="gpt2-medium")
    assert (e2e["E2E BLEU ours"], e2e["E2E BLEU paper"], e2e["E2E BLEU diff"]) == ("69.00", "70.04", "-1.04")
    assert (e2e["E2E MET ours"], e2e["E2E MET diff"]) == ("46.00", "-0.51")  # METEOR x 100 for E2E
    assert (e2e["E2E NIST ours"], e2e["E2E NIST paper"]) == ("8.50", "8.81")
    assert (e2e["DART BLEU ours"], e2e["DART BLEU paper"]) == ("-", "45.27")
    tiny = row_of(rows, Model="tiny-gpt2")
    assert tiny["Paper model"] == "gpt2-medium (stand-in)"
    # a stand-in compares retention: no tiny-gpt2 Fine-tune run here; the paper's PST TER 0.49 / its Fine-tune 0.46
    assert (tiny["DART TER ours"], tiny["DART TER paper"], tiny["DART TER diff"]) == ("0.50 · ret -", "ret 106.5%", "-")
    assert tiny["DART MET ours"] == "0.10 · ret -"  # a fraction for DART
    missing = {(m["model"], m["method"], m["column"]) for m in read_csv(out / "table3_missing.csv")}
    assert ("gpt2-medium", "PST", "WebNLG TER") in missing and ("gpt2-medium", "PST", "E2E BLEU") not in missing
    assert ("tiny-gpt2", "PST", "E2E BLEU") in missing


def test_table4_ranks(built):
    _, out, _ = built
    rows = read_csv(out / "table4.csv")
    r16 = row_of(rows, Model="bert-base", Task="MRPC", r2="16")
    assert (r16["r1=4 ours"], r16["r1=4 paper"], r16["r1=4 diff"]) == ("87.00", "86.45", "+0.55")
    assert (r16["r1=8 ours"], r16["r1=8 paper"]) == ("-", "86.75")
    r8 = row_of(rows, Model="bert-base", Task="MRPC", r2="8")
    assert r8["r1=8 ours"] == "86.00 [85.00–87.00] · 86.00 ± 2.48 (n=3)" and r8["r1=8 paper"] == "85.57"
    assert (
        row_of(rows, Model="bert-base", Task="SST-2", r2="8")["r1=8 ours"] == "88.50 [88.10–88.90] · 88.50 ± 5.08 (n=2)"
    )
    # The paper's order: (a) MRPC, (b) SST-2; models in the paper's order, stand-ins last.
    assert [(r["Model"], r["Task"], r["r2"]) for r in rows] == [
        ("bert-base", "MRPC", "8"),
        ("bert-base", "MRPC", "16"),
        ("bert-base", "SST-2", "8"),
        ("minilm-l6", "SST-2", "8"),
    ]
    # roberta-base has GLUE runs, but the paper's rank grid is BERT-base only: not listed for it.
    missing = read_csv(out / "table4_missing.csv")
    assert {m["model"] for m in missing} == {"bert-base", "minilm-l6"}


def test_table5_ablation_and_average(built):
    _, out, _ = built
    rows = read_csv(out / "table5.csv")
    methods = [row["Method"] for row in rows if row["Model"] == "bert-base"]
    assert methods == ["PST[mag+ab+rc]", "PST[ab]", "PST[rc]"]  # the paper's row order
    full = row_of(rows, Model="bert-base", Method="PST[mag+ab+rc]")
    assert (full["r1"], full["r2"], full["MRPC ours"], full["MRPC paper"]) == (
        "8",
        "8",
        "86.00 [85.00–87.00] · 86.00 ± 2.48 (n=3)",
        "85.57",
    )
    ab = row_of(rows, Model="bert-base", Method="PST[ab]")
    assert (ab["CoLA ours"], ab["CoLA paper"], ab["CoLA diff"]) == ("25.00", "22.02", "+2.98")
    assert (ab["Avg. ours"], ab["Avg. paper"]) == ("-", "65.98")
    rc = row_of(rows, Model="bert-base", Method="PST[rc]")
    assert (rc["STS-B ours"], rc["STS-B diff"]) == ("81.50", "+0.00")
    assert (rc["Avg. ours"], rc["Avg. paper"], rc["Avg. diff"]) == ("72.61", "72.61", "+0.00")
    cells = read_csv(out / "table5_cells.csv")
    assert row_of(cells, method="PST[ab]", column="CoLA")["files"] == "cola_pst_ab.json"


def test_rerun_is_byte_identical(built, tmp_path):
    runs, out, _ = built
    first = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
    assert len(first) == 16 + 6  # four files per table, claims.md, convergence.md, mask_distance.md/.csv, structured.*
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RecordSkipped)
        make_tables(runs, out)
        # A fresh folder, and the records written in another order, give the same bytes.
        shuffled = tmp_path / "shuffled"
        shuffled.mkdir()
        for path in sorted(runs.iterdir(), reverse=True):
            (shuffled / path.name).write_bytes(path.read_bytes())
        make_tables(shuffled, tmp_path / "again")
    assert {p.name: p.read_bytes() for p in sorted(out.iterdir())} == first
    again = {
        p.name: p.read_bytes().replace(str(shuffled).encode(), str(runs).encode())
        for p in sorted((tmp_path / "again").iterdir())
    }
    assert again == first


def test_cli(tmp_path, capsys):
    runs = tmp_path / "runs"
    write_records(runs)
    assert tables.main(["--runs", str(runs), "--out", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    assert "warning" in captured.err and "broken.json" in captured.err
    assert "table2: 8 records" in captured.out
    assert (tmp_path / "out" / "table5.md").is_file()
    assert tables.main(["--runs", str(tmp_path / "nowhere")]) == 2


def test_empty_runs_folder_writes_empty_tables(tmp_path):
    (tmp_path / "runs").mkdir()
    make_tables(tmp_path / "runs", tmp_path / "out")
    md = (tmp_path / "out" / "table3.md").read_text(encoding="utf-8")
    assert "No finished run for this table yet." in md and "from 0 results records" in md


def test_glue_metrics_match_the_paper_csv():
    """The metric read from each record is the one the paper's column reports."""
    paper = {(c.task, c.column): c for c in tables.load_paper(tables.default_paper_csv()) if c.table == 2}
    import pandas as pd

    frame = pd.read_csv(tables.default_paper_csv())
    for column, metric in tables.GLUE.values():
        assert (column, column) in paper
        assert set(frame[(frame.table == 2) & (frame.task == column)]["metric"]) == {metric}
    pst = frame[(frame.method == "PST") & frame.table.isin([2, 3])]
    assert set(zip(pst.r1, pst.r2)) == {PAPER_RANKS}


@pytest.mark.skipif(not SHARED_PAPER_CSV.is_file(), reason="no ../shared/paper/paper_results.csv here")
def test_packaged_paper_csv_equals_the_shared_one():
    assert tables.default_paper_csv().read_bytes() == SHARED_PAPER_CSV.read_bytes()


def test_grid_duplicates_and_non_finite_values(tmp_path):
    """A learning-rate grid shows its best setting on dev; a same-seed rerun counts once; NaN skips."""
    runs = tmp_path / "runs"
    runs.mkdir()
    grid = {("lr1", 1e-4, 1): 0.60, ("lr1", 1e-4, 2): 0.62, ("lr3", 3e-4, 1): 0.66, ("lr3", 3e-4, 2): 0.64}
    for (name, lr, seed), value in grid.items():
        record = glue_record("rte", "bert-base", "pst", 0.9, seed, value, lr=lr)
        (runs / f"rte_{name}_s{seed}.json").write_text(json.dumps(record))
    rerun = glue_record("rte", "bert-base", "pst_mag_ab_rc", 0.9, 1, 0.99, lr=3e-4)  # same setting, seed 1
    (runs / "rte_lr3_s1_again.json").write_text(json.dumps(rerun))
    (runs / "stsb_nan.json").write_text(json.dumps(glue_record("stsb", "bert-base", "pst", 0.9, 1, float("nan"))))
    # `method=pst method.score_terms=[rc,mag]` keeps paper_label PST but is PST[mag+rc].
    override = fake_record(["task=rte", "method=pst", "method.score_terms=[rc,mag]"], dev=0.62)
    (runs / "rte_override.json").write_text(json.dumps(override))
    with pytest.warns(RecordSkipped, match="stsb_nan.json: skipped, pearson on validation is nan"):
        make_tables(runs, tmp_path / "out")
    row = row_of(read_csv(tmp_path / "out" / "table2.csv"), Model="bert-base")
    assert (row["RTE ours"], row["RTE diff"], row["STS-B ours"]) == (
        "65.00 [64.00–66.00] · 65.00 ± 12.71 (n=2)",
        "+2.18",
        "-",
    )
    cell = row_of(read_csv(tmp_path / "out" / "table2_cells.csv"), column="RTE")
    assert (cell["settings"], cell["setting"], cell["seeds"]) == ("2", "train.lr=0.0003", "1;2")
    assert cell["files"] == "rte_lr3_s1.json;rte_lr3_s2.json"
    md = (tmp_path / "out" / "table2.md").read_text(encoding="utf-8")
    assert "Run selection (`--grid best-dev`)" in md and "shown: train.lr=0.0003" in md
    assert "rte_lr3_s1_again.json repeats rte_lr3_s1.json" in md
    ablation = row_of(read_csv(tmp_path / "out" / "table5.csv"), Method="PST[mag+rc]")
    assert (ablation["RTE ours"], ablation["RTE paper"]) == ("62.00", "62.82")
    assert (ablation["Params exact (M)"], ablation["Params paper rule (M)"]) == ("-", "-")
    # The pool rule shows every setting's runs (still one per setting and seed).
    make_tables(runs, tmp_path / "pooled", rule="pool")
    row = row_of(read_csv(tmp_path / "pooled" / "table2.csv"), Model="bert-base")
    assert row["RTE ours"] == "63.00 [60.00–66.00] · 63.00 ± 4.11 (n=4)"
    assert "Run selection (`--grid pool`)" in (tmp_path / "pooled" / "table2.md").read_text(encoding="utf-8")


def test_stand_in_rows_compare_retention_and_constant_cells_are_marked(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    balanced = class_counts(430, 442)
    records = [
        *(
            glue_record("sst2", "minilm-l6", "finetune", 0.0, s, v, predictions=balanced, max_train_examples=2000)
            for s, v in ((1, 0.80), (2, 0.82), (3, 0.84))
        ),
        *(
            glue_record("sst2", "minilm-l6", "pst", 0.9, s, v, predictions=balanced, max_train_examples=2000)
            for s, v in ((1, 0.78), (2, 0.79), (3, 0.80))
        ),
        # trained on another protocol than the Fine-tune runs: no retention
        glue_record("sst2", "minilm-l6", "map", 0.9, 1, 0.70, predictions=balanced, max_train_examples=1000),
        # one class for every dev example: a constant predictor, and one of two MvP runs
        glue_record(
            "sst2", "minilm-l6", "mvp", 0.9, 1, 0.5092, predictions=class_counts(0, 872), max_train_examples=2000
        ),
        glue_record("sst2", "minilm-l6", "mvp", 0.9, 2, 0.75, predictions=balanced, max_train_examples=2000),
        glue_record(
            "stsb", "minilm-l6", "map", 0.9, 1, 0.05, predictions=regression_spread(0.01), max_train_examples=2000
        ),
        glue_record(
            "stsb", "minilm-l6", "mvp", 0.9, 1, 0.05, predictions=regression_spread(0.4), max_train_examples=2000
        ),
    ]
    for record in records:
        (runs / f"{record['run_id']}.json").write_text(json.dumps(record))
    make_tables(runs, tmp_path / "out", tables.default_paper_csv())  # the packaged copy of the shared CSV
    rows = read_csv(tmp_path / "out" / "table2.csv")
    pst = row_of(rows, Model="minilm-l6", Method="PST", Sparsity="90%")
    # 79 / 82 = 96.3% of our Fine-tune; the paper's PST 88.65 / Fine-tune 93.00 = 95.3%
    assert (pst["SST-2 ours"], pst["SST-2 paper"], pst["SST-2 diff"]) == (
        "79.00 [78.00–80.00]† · 79.00 ± 2.48 (n=3) · ret 96.3%",
        "ret 95.3%",
        "+1.0",
    )
    dense = row_of(rows, Model="minilm-l6", Method="Fine-tune")
    assert (dense["SST-2 paper"], dense["SST-2 diff"]) == ("93.00", "-")  # shown, not compared
    assert row_of(rows, Model="minilm-l6", Method="MaP")["SST-2 ours"].endswith(" · ret -")
    mvp = row_of(rows, Model="minilm-l6", Method="MvP")
    assert mvp["SST-2 ours"].startswith("62.96 [50.92–75.00]") and "(1/2 constant)" in mvp["SST-2 ours"]
    assert mvp["SST-2 ours"].endswith(" · ret -")  # no retention from a cell with a constant run
    assert mvp["STS-B ours"] == "5.00† · ret -"  # std 0.4 of the labels' 1.5: it predicts, if badly
    assert row_of(rows, Model="minilm-l6", Method="MaP")["STS-B ours"].startswith("constant (5.00)")
    cells = read_csv(tmp_path / "out" / "table2_cells.csv")
    mvp_cell = row_of(cells, method="MvP", column="SST-2")
    assert (mvp_cell["constant_runs"], mvp_cell["values"], mvp_cell["seeds"]) == ("1", "50.920000;75.000000", "1;2")
    assert row_of(cells, method="PST", column="SST-2")["retention"] == "96.341463"


# --------------------------------------------------------------------------- the held-out protocol (issue 21)

HELD_OUT_SST2_PST = {1: 0.81, 2: 0.82, 3: 0.83, 4: 0.85, 5: 0.86}


def protocol_record(task: str, method: str, sparsity: float, seed: int, lr: float, value: float, dirty=False):
    overrides = [
        f"task={task}",
        "model=minilm-l6",
        f"method={method}",
        f"method.sparsity={sparsity}",
        f"train.seed={seed}",
        f"train.lr={lr}",
        "train.max_train_examples=2000",
    ]
    return fake_record(overrides, dev=value, params=PARAMS, dirty=dirty)


def write_protocol_records(folder: Path) -> None:
    """New-protocol records: every grid on seed 0, the winners on held-out seeds."""
    folder.mkdir(parents=True, exist_ok=True)
    records = {}

    def add(task, method, sparsity, seed, lr, value, dirty=False):
        name = f"{task}_{method}_p{sparsity:g}_lr{lr:g}_s{seed}.json"
        records[name] = protocol_record(task, method, sparsity, seed, lr, value, dirty)

    grids = {  # (task, method, sparsity): {lr: seed-0 value}
        ("sst2", "finetune", 0.0): {1e-4: 0.83, 3e-4: 0.85, 1e-3: 0.84},  # interior
        ("sst2", "pst", 0.9): {1e-4: 0.80, 3e-4: 0.84, 1e-3: 0.82},  # interior
        ("sst2", "map", 0.9): {1e-4: 0.79, 3e-4: 0.78, 1e-3: 0.77},  # lowest: on the edge
        ("sst2", "mvp", 0.9): {1e-4: 0.70, 3e-4: 0.72, 1e-3: 0.74},  # highest; no held-out run: pending
        ("stsb", "pst", 0.9): {1e-4: 0.50, 3e-4: 0.60, 1e-3: 0.55},
        ("stsb", "map", 0.9): {1e-4: 0.40},  # one point against PST's three: unequal budgets
    }
    for (task, method, sparsity), grid in grids.items():
        for lr, value in grid.items():
            add(task, method, sparsity, 0, lr, value)
    for seed in (1, 2, 3):
        add("sst2", "finetune", 0.0, seed, 3e-4, 0.86)
        add("sst2", "map", 0.9, seed, 1e-4, 0.70 + seed / 100, dirty=seed == 2)
        add("sst2", "pst", 0.9, seed, 1e-3, 0.95)  # best on held-out seeds, worse on seed 0: must not win
        add("stsb", "map", 0.9, seed, 1e-4, 0.40)
    for seed, value in HELD_OUT_SST2_PST.items():
        add("sst2", "pst", 0.9, seed, 3e-4, value)
    add("stsb", "pst", 0.9, 1, 3e-4, 0.61)  # a single held-out run: no interval
    for name, record in records.items():
        (folder / name).write_text(json.dumps(record))


@pytest.fixture(scope="module")
def protocol(tmp_path_factory):
    root = tmp_path_factory.mktemp("protocol")
    write_protocol_records(root / "runs")
    make_tables(root / "runs", root / "out")
    return root / "out"


def _cell(out: Path, method: str, column: str, table: int = 2) -> dict:
    return row_of(read_csv(out / f"table{table}_cells.csv"), method=method, column=column)


def test_held_out_cells_show_the_seed0_winner_on_held_out_seeds(protocol):
    pst = _cell(protocol, "PST", "SST-2")
    assert (pst["setting"], pst["seeds"], pst["held_out"], pst["tuning_seeds"]) == (
        "train.lr=0.0003",
        "1;2;3;4;5",
        "True",
        "0",
    )
    for name in ("Fine-tune", "MaP", "PST"):
        assert "0" not in _cell(protocol, name, "SST-2")["seeds"].split(";")
    assert _cell(protocol, "PST", "STS-B")["seeds"] == "1"
    md = (protocol / "table2.md").read_text(encoding="utf-8")
    assert "shown: train.lr=0.0003 on held-out seeds [1, 2, 3, 4, 5]" in md
    assert "Selection seeds (`--selection-seeds 0`)" in md


def test_a_winner_without_held_out_runs_is_pending(protocol):
    rows = read_csv(protocol / "table2.csv")
    mvp = row_of(rows, Model="minilm-l6", Method="MvP", Sparsity="90%")
    assert mvp["SST-2 ours"] == "-"  # no value until a held-out seed runs
    assert not [c for c in read_csv(protocol / "table2_cells.csv") if c["method"] == "MvP"]
    md = (protocol / "table2.md").read_text(encoding="utf-8")
    assert (
        "Selected, held-out seeds pending (no value shown until a held-out seed runs): "
        "minilm-l6 SST-2 90% MvP: train.lr=0.001 (ranked on seed 0)." in md
    )
    assert "shown: train.lr=0.001 (selected, held-out seeds pending)" in md
    # it has run, so it is not among the missing paper cells
    missing = read_csv(protocol / "table2_missing.csv")
    assert not [m for m in missing if (m["method"], m["sparsity"], m["column"]) == ("MvP", "90%", "SST-2")]
    assert [m for m in missing if (m["method"], m["sparsity"], m["column"]) == ("MvP", "90%", "STS-B")]


def test_winners_on_the_grid_edge_are_listed(protocol):
    assert (_cell(protocol, "MaP", "SST-2")["on_edge"], _cell(protocol, "PST", "SST-2")["on_edge"]) == ("lowest", "")
    md = (protocol / "table2.md").read_text(encoding="utf-8")
    edge = next(line for line in md.splitlines() if line.startswith("- Winner on the grid's edge"))
    assert "minilm-l6 SST-2 90% MaP: train.lr=0.0001 is the lowest train.lr of 0.0001, 0.0003, 0.001" in edge
    assert "minilm-l6 SST-2 90% MvP: train.lr=0.001 is the highest train.lr of 0.0001, 0.0003, 0.001" in edge
    assert "PST" not in edge and "Fine-tune" not in edge


def test_the_tuning_budget_and_unequal_budgets(protocol):
    md = (protocol / "table2.md").read_text(encoding="utf-8")
    budget = next(line for line in md.splitlines() if line.startswith("- Tuning budget"))
    assert "minilm-l6 SST-2 0% (seed 0): Fine-tune: 3;" in budget
    assert "minilm-l6 SST-2 90% (seed 0): MaP: 3, MvP: 3, PST: 3;" in budget
    assert "minilm-l6 STS-B 90% (seed 0): MaP: 1, PST: 3." in budget
    flags = [line for line in md.splitlines() if "**UNEQUAL TUNING BUDGET**" in line]
    assert flags == [
        "- **UNEQUAL TUNING BUDGET** minilm-l6 STS-B 90%: MaP 1 setting, PST 3 settings. The methods were not "
        "tuned alike, so a difference between them may be the tuning, not the method: give each as many "
        "learning-rate points (the protocol pads a cell's smaller grids)."
    ]


def test_runs_from_uncommitted_code_are_marked(protocol):
    assert (_cell(protocol, "MaP", "SST-2")["dirty_runs"], _cell(protocol, "PST", "SST-2")["dirty_runs"]) == ("1", "0")
    row = row_of(read_csv(protocol / "table2.csv"), Model="minilm-l6", Method="MaP", Sparsity="90%")
    assert row["SST-2 ours"].split(" · ret")[0].endswith("§")
    assert "§" not in row_of(read_csv(protocol / "table2.csv"), Method="PST", Sparsity="90%")["SST-2 ours"]
    md = (protocol / "table2.md").read_text(encoding="utf-8")
    assert "- `§`: 1 run from uncommitted code (`git.dirty` in the record" in md
    assert "claims refuse such cells" in md


def test_the_mean_and_its_95_percent_interval(protocol):
    from scipy import stats

    values = [100 * v for v in HELD_OUT_SST2_PST.values()]
    mean = sum(values) / len(values)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=mean, scale=stats.sem(values))
    pst = _cell(protocol, "PST", "SST-2")
    assert float(pst["ci_low"]) == pytest.approx(low, abs=1e-6)
    assert float(pst["ci_high"]) == pytest.approx(high, abs=1e-6)
    assert float(pst["mean"]) == pytest.approx(mean)
    row = row_of(read_csv(protocol / "table2.csv"), Model="minilm-l6", Method="PST", Sparsity="90%")
    assert row["SST-2 ours"].startswith(f"83.00 [81.00–86.00]† · {mean:.2f} ± {(high - low) / 2:.2f} (n=5) · ret ")
    one = _cell(protocol, "PST", "STS-B")  # one held-out run: no interval
    assert (one["runs"], one["ci_low"], one["ci_high"]) == ("1", "", "")
    assert "±" not in row["STS-B ours"]


def test_selection_seeds_option_and_an_only_new_protocol_folder(tmp_path, capsys):
    runs = tmp_path / "runs"
    write_protocol_records(runs)
    # no selection seed: the old rule ranks on seed 0 (the seed every setting has) and shows it too
    assert tables.main(["--runs", str(runs), "--out", str(tmp_path / "out"), "--selection-seeds"]) == 0
    pst = _cell(tmp_path / "out", "PST", "SST-2")
    assert pst["held_out"] == "False" and pst["seeds"].split(";")[0] == "0"
    assert "Selection seeds: none" in (tmp_path / "out" / "table2.md").read_text(encoding="utf-8")
    assert "table2: " in capsys.readouterr().out
