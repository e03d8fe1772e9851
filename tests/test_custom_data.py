"""A dataset of one's own from its task file alone: CSV, TSV or JSON lines with named columns (docs/data.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import compose_cfg

TASK_FILE = """\
# A dataset of my own: reviews.csv files with a text column and a sentiment label.
defaults:
  - base_glue_task
  - _self_
name: reviews
local_dir: reviews
data_format: {fmt}
data_files: {{train: train.{ext}, validation: dev.{ext}}}
text_fields: [text]
label_column: sentiment
label_values: [neg, pos]
num_labels: 2
is_regression: false
max_length: 32
metric: accuracy
eval_splits: [validation]
main_split: validation
"""
WORDS = {"pos": ["good", "great", "fine", "lovely"], "neg": ["bad", "awful", "poor", "dull"]}


def _rows(n: int) -> list[dict]:
    rows = []
    for i in range(n):
        label = "pos" if i % 2 else "neg"
        words = WORDS[label]
        rows.append({"text": f'a {words[i % 4]} film, {words[(i + 1) % 4]}, "quoted"', "sentiment": label})
    return rows


def _write(folder: Path, fmt: str, name: str, rows: list[dict]) -> None:
    if fmt == "jsonl":
        text = "".join(json.dumps(r) + "\n" for r in rows)
    elif fmt == "csv":
        quote = '"'
        text = "text,sentiment\n" + "".join(
            f"{quote}{r['text'].replace(quote, quote * 2)}{quote},{r['sentiment']}\n" for r in rows
        )
    else:
        text = "text\tsentiment\n" + "".join(f"{r['text']}\t{r['sentiment']}\n" for r in rows)
    (folder / name).write_text(text)


def _task(tmp_path: Path, fmt: str) -> list[str]:
    ext = {"csv": "csv", "tsv": "tsv", "jsonl": "jsonl"}[fmt]
    data = tmp_path / "data" / "reviews"
    data.mkdir(parents=True)
    _write(data, fmt, f"train.{ext}", _rows(48))
    _write(data, fmt, f"dev.{ext}", _rows(16))
    (tmp_path / "conf" / "task").mkdir(parents=True)
    (tmp_path / "conf" / "task" / "reviews.yaml").write_text(TASK_FILE.format(fmt=fmt, ext=ext))
    return [f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "task=reviews", f"data.dir={tmp_path / 'data'}"]


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl"])
def test_a_task_file_names_a_dataset_of_ones_own(tmp_path, fmt):
    from pst_bench.data import load_glue_splits

    cfg = compose_cfg(_task(tmp_path, fmt), tmp_path)
    splits = load_glue_splits(cfg.task, cfg.data)
    assert list(splits) == ["train", "validation"] and len(splits["train"]) == 48
    assert splits["train"].features["label"].names == ["neg", "pos"]
    assert splits["train"][1]["label"] == 1 and '"quoted"' in splits["train"][1]["text"]


def test_a_tiny_model_trains_on_a_custom_csv_task(tmp_path):
    from pst_bench.run.experiment import run_experiment

    overrides = [
        *_task(tmp_path, "csv"),
        "model=tiny-bert",
        "method=pst",
        "method.sparsity=0.5",
        "train.epochs=2",
        "train.batch_size=8",
        "train.lr=1e-3",
    ]
    record = run_experiment(compose_cfg(overrides, tmp_path))
    assert record["status"] == "finished" and record["task"] == "reviews"
    assert 0.0 <= record["final"]["main"] <= 1.0 and record["metric"] == "accuracy"


def test_a_label_outside_the_named_values_is_one_clear_error(tmp_path):
    from pst_bench.data import load_glue_splits
    from pst_bench.errors import DataError

    cfg = compose_cfg(_task(tmp_path, "csv"), tmp_path)
    (tmp_path / "data" / "reviews" / "dev.csv").write_text("text,sentiment\nok,meh\n")
    with pytest.raises(DataError, match=r"validation row 0: label 'meh' is not in \['neg', 'pos'\]"):
        load_glue_splits(cfg.task, cfg.data)
