"""GLUE loading: the real glue_data files, synthetic edge cases, and the hub fallback.

The real-data tests read /work/shared/data (or $PST_SHARED_DATA) and check the
official row and label counts, so any parsing slip (a quote merging lines, a
BOM in a column name, a lost final line) shows up as a wrong count.
"""

import os

# Before datasets is imported: the hub is unreachable from the test machines.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import time
from collections import Counter
from pathlib import Path

import datasets
import huggingface_hub.constants as hub_constants
import pytest
from omegaconf import OmegaConf

from helpers import SHARED_DATA, needs_shared
from pst_bench.data import load_glue_splits
from pst_bench.data.glue import LAYOUTS
from pst_bench.errors import ConfigError, DataError

TASK_CONF = Path(__file__).resolve().parents[1] / "conf" / "task"
needs_real_data = needs_shared("glue")

MNLI_TRAIN_HEADER = [
    "index",
    "promptID",
    "pairID",
    "genre",
    "sentence1_binary_parse",
    "sentence2_binary_parse",
    "sentence1_parse",
    "sentence2_parse",
    "sentence1",
    "sentence2",
    "label1",
    "gold_label",
]
MNLI_DEV_HEADER = MNLI_TRAIN_HEADER[:-1] + ["label2", "label3", "label4", "label5", "gold_label"]


def task(name):
    return OmegaConf.load(TASK_CONF / f"{name}.yaml")


def local(data_dir):
    return OmegaConf.create({"dir": str(data_dir), "hub_dataset": "nyu-mll/glue"})


def load_real(name, splits):
    return load_glue_splits(task(name), local(SHARED_DATA), splits)


def write_tsv(path, rows, header=None):
    """Write rows of fields; the last line gets a newline like the real files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ([header] if header else []) + rows
    path.write_text("".join("\t".join(fields) + "\n" for fields in lines), encoding="utf-8")


def mnli_row(index, premise, hypothesis, gold, n_fields):
    """An MNLI row: parse columns filled with junk, label1 deliberately != gold."""
    fields = [str(index), "31193", f"{index}n", "government", "( junk )", "( junk )", "(ROOT)", "(ROOT)"]
    fields += [premise, hypothesis]
    fields += ["neutral"] * (n_fields - len(fields) - 1) + [gold]
    return fields


# --------------------------------------------------------------------------- real files


@needs_real_data
def test_sst2_train_counts():
    train = load_real("sst2", ["train"])["train"]
    assert len(train) == 67_349
    assert Counter(train["label"])[1] == 37_569
    assert train.column_names == ["sentence", "label", "idx"]
    assert train["idx"][:3] == [0, 1, 2]


@needs_real_data
def test_cola_headerless_files_and_missing_final_newline():
    splits = load_real("cola", ["train", "validation"])
    assert len(splits["train"]) == 8_551
    assert Counter(splits["train"]["label"])[1] == 6_023
    # dev.tsv has no final newline: its last row must still be read, whole.
    assert len(splits["validation"]) == 1_043
    last = splits["validation"][-1]["sentence"]
    assert last and not last.endswith(("\n", "\r"))


@needs_real_data
def test_mrpc_bom_does_not_leak_into_columns():
    splits = load_real("mrpc", ["train", "validation"])
    train = splits["train"]
    assert len(train) == 3_668 and Counter(train["label"])[1] == 2_474
    assert len(splits["validation"]) == 408
    assert train.column_names == ["sentence1", "sentence2", "label", "idx"]
    assert not any("\ufeff" in name for name in train.column_names)
    assert train[0]["sentence1"].startswith("Amrozi accused his brother")


@needs_real_data
def test_rte_quote_row_and_label_mapping():
    train = load_real("rte", ["train"])["train"]
    assert len(train) == 2_490
    counts = Counter(train["label"])
    assert counts[0] == 1_249 and counts[1] == 1_241  # entailment -> 0, as on the hub
    assert train.features["label"].names == ["entailment", "not_entailment"]
    # csv quoting would swallow the following lines into this field.
    assert train[2164]["idx"] == 2164
    assert train[2164]["sentence1"].startswith('"That film')
    assert "\t" not in train[2164]["sentence1"] and "\n" not in train[2164]["sentence1"]


@needs_real_data
def test_stsb_float_scores():
    dev = load_real("stsb", ["validation"])["validation"]
    assert len(dev) == 1_500
    assert dev.features["label"] == datasets.Value("float32")
    assert dev[0]["label"] == 5.0 and dev[1]["label"] == 4.75
    assert all(0.0 <= score <= 5.0 for score in dev["label"])


@needs_real_data
def test_qnli_validation_counts():
    dev = load_real("qnli", ["validation"])["validation"]
    assert len(dev) == 5_463
    assert Counter(dev["label"])[0] == 2_702
    assert dev.column_names == ["question", "sentence", "label", "idx"]


@needs_real_data
def test_qnli_missing_train_names_expected_file():
    with pytest.raises(DataError) as info:
        load_glue_splits(task("qnli"), local(SHARED_DATA))  # default splits include train
    message = str(info.value)
    assert str(SHARED_DATA / "glue" / "QNLI" / "train.tsv") in message
    assert "'train'" in message


@needs_real_data
def test_default_splits_are_train_plus_eval_splits():
    splits = load_glue_splits(task("rte"), local(SHARED_DATA))
    assert list(splits) == ["train", "validation"]


# --------------------------------------------------------------------------- synthetic files


def test_mnli_reads_by_header_name_and_maps_labels(tmp_path):
    folder = tmp_path / "glue" / "MNLI"  # the <dir>/glue/<local_dir> form
    write_tsv(
        folder / "train.tsv",
        [
            mnli_row(0, '"Quoted premise', "h0", "contradiction", 12),
            mnli_row(1, "p1", "h1", "entailment", 12),
        ],
        MNLI_TRAIN_HEADER,
    )
    write_tsv(folder / "dev_matched.tsv", [mnli_row(0, "pm", "hm", "neutral", 16)], MNLI_DEV_HEADER)
    write_tsv(
        folder / "dev_mismatched.tsv",
        [
            mnli_row(0, "px", "hx", "entailment", 16),
            mnli_row(1, "py", "hy", "contradiction", 16),
        ],
        MNLI_DEV_HEADER,
    )

    splits = load_glue_splits(task("mnli"), local(tmp_path))

    assert list(splits) == ["train", "validation_matched", "validation_mismatched"]
    train = splits["train"]
    assert train.column_names == ["premise", "hypothesis", "label", "idx"]
    assert train["premise"] == ['"Quoted premise', "p1"] and train["hypothesis"] == ["h0", "h1"]
    assert train["label"] == [2, 0]  # gold_label, not label1 (always "neutral" here)
    assert splits["validation_matched"]["label"] == [1]
    assert splits["validation_mismatched"]["label"] == [0, 2]
    assert train.features["label"].names == ["entailment", "neutral", "contradiction"]


def test_qqp_layout(tmp_path):
    header = ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"]
    write_tsv(
        tmp_path / "QQP" / "dev.tsv",
        [["7", "1", "2", "q a?", "q b?", "1"], ["8", "3", "4", "q c?", "q d?", "0"]],
        header,
    )
    dev = load_glue_splits(task("qqp"), local(tmp_path), ["validation"])["validation"]
    assert dev["question1"] == ["q a?", "q c?"] and dev["label"] == [1, 0] and dev["idx"] == [0, 1]


def test_local_schema_matches_the_hub_schema(tmp_path):
    write_tsv(
        tmp_path / "RTE" / "dev.tsv",
        [["0", "s1", "s2", "not_entailment"]],
        ["index", "sentence1", "sentence2", "label"],
    )
    dev = load_glue_splits(task("rte"), local(tmp_path), ["validation"])["validation"]
    # nyu-mll/glue's rte features, as published.
    assert dev.features == datasets.Features(
        {
            "sentence1": datasets.Value("string"),
            "sentence2": datasets.Value("string"),
            "label": datasets.ClassLabel(names=["entailment", "not_entailment"]),
            "idx": datasets.Value("int32"),
        }
    )
    assert dev[0]["label"] == 1


def test_crlf_line_endings_and_trailing_blank_line(tmp_path):
    path = tmp_path / "SST-2" / "dev.tsv"
    path.parent.mkdir()
    path.write_bytes(b"sentence\tlabel\r\nnice film \t1\r\ndull \t0\r\n\r\n")
    dev = load_glue_splits(task("sst2"), local(tmp_path), ["validation"])["validation"]
    assert dev["sentence"] == ["nice film ", "dull "] and dev["label"] == [1, 0]


def test_wrong_field_count_names_file_and_line(tmp_path):
    path = tmp_path / "SST-2" / "train.tsv"
    write_tsv(path, [["good one", "1"], ["bad one", "0"], ["extra\ttab", "1"]], ["sentence", "label"])
    with pytest.raises(DataError) as info:
        load_glue_splits(task("sst2"), local(tmp_path), ["train"])
    message = str(info.value)
    assert str(path) in message
    assert "line 4" in message  # header is line 1, so the third row is line 4
    assert "expected 2" in message and "found 3" in message


def test_wrong_field_count_in_headerless_cola(tmp_path):
    path = tmp_path / "CoLA" / "dev.tsv"
    write_tsv(path, [["gj04", "1", "", "Fine."], ["gj04", "1", "Missing mark field."]])
    with pytest.raises(DataError, match=r"dev\.tsv, line 2: expected 4 .* found 3"):
        load_glue_splits(task("cola"), local(tmp_path), ["validation"])


def test_unknown_label_names_line(tmp_path):
    path = tmp_path / "RTE" / "dev.tsv"
    write_tsv(
        path, [["0", "a", "b", "entailment"], ["1", "c", "d", "entailed"]], ["index", "sentence1", "sentence2", "label"]
    )
    with pytest.raises(DataError) as info:
        load_glue_splits(task("rte"), local(tmp_path), ["validation"])
    message = str(info.value)
    assert str(path) in message and "line 3" in message and "'entailed'" in message


@pytest.mark.parametrize(
    "name, header, row, bad",
    [
        ("sst2", ["sentence", "label"], ["text", "2"], "'2'"),
        ("stsb", ["index", "sentence1", "sentence2", "score"], ["0", "a", "b", "n/a"], "'n/a'"),
    ],
)
def test_unparseable_labels(tmp_path, name, header, row, bad):
    write_tsv(tmp_path / task(name).local_dir / "dev.tsv", [row], header)
    with pytest.raises(DataError, match=rf"line 2: .*{bad}"):
        load_glue_splits(task(name), local(tmp_path), ["validation"])


def test_missing_folder_lists_paths_looked_at(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError) as info:
        load_glue_splits(task("sst2"), local(missing))
    message = str(info.value)
    assert str(missing / "SST-2") in message and str(missing / "glue" / "SST-2") in message
    assert "data.dir=" in message and "PST_DATA_DIR" in message


def test_config_mistakes_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="no split"):
        load_glue_splits(task("mnli"), local(tmp_path), ["validation"])
    wrong_fields = OmegaConf.merge(task("rte"), {"text_fields": ["premise", "hypothesis"]})
    with pytest.raises(ConfigError, match="text_fields"):
        load_glue_splits(wrong_fields, local(tmp_path))


def test_every_task_config_has_a_layout():
    for path in sorted(TASK_CONF.glob("*.yaml")):
        cfg = OmegaConf.load(path)
        if "task" in cfg:  # an NLG task file (`_global_` package), not GLUE
            continue
        assert list(LAYOUTS[cfg.name].text_columns) == list(cfg.text_fields), path.name
        assert set(cfg.eval_splits) <= set(LAYOUTS[cfg.name].split_files), path.name


# --------------------------------------------------------------------------- hub


def test_offline_hub_without_folder_fails_fast_with_a_fix(offline_hub_with_empty_cache):

    start = time.monotonic()
    with pytest.raises(DataError) as info:
        load_glue_splits(task("rte"), OmegaConf.create({"dir": None, "hub_dataset": "nyu-mll/glue"}))
    assert time.monotonic() - start < 10

    message = str(info.value)
    assert "nyu-mll/glue" in message and "no local GLUE folder" in message
    assert "data.dir=/path/to/glue_data" in message and "PST_DATA_DIR" in message
    assert info.value.__cause__ is None and info.value.__suppress_context__  # one error, no chained traceback
    assert datasets.config.HF_HUB_OFFLINE is False and hub_constants.HF_HUB_OFFLINE is False  # restored


@pytest.mark.parametrize("data_dir", [None, ""])
def test_hub_splits_are_selected_and_conformed(monkeypatch, data_dir):
    hub_features = datasets.Features(
        {
            "sentence1": datasets.Value("string"),
            "sentence2": datasets.Value("string"),
            "label": datasets.ClassLabel(names=["entailment", "not_entailment"]),
            "idx": datasets.Value("int32"),
            "extra": datasets.Value("string"),
        }
    )
    rows = {"sentence1": ["a"], "sentence2": ["b"], "label": [1], "idx": [0], "extra": ["x"]}
    fake = datasets.DatasetDict(
        {split: datasets.Dataset.from_dict(rows, features=hub_features) for split in ("train", "validation", "test")}
    )
    calls = []

    def fake_load_dataset(path, name):
        calls.append((path, name))
        return fake

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    splits = load_glue_splits(task("rte"), OmegaConf.create({"dir": data_dir, "hub_dataset": "some/glue"}))
    assert calls == [("some/glue", "rte")]
    assert list(splits) == ["train", "validation"]
    assert splits["validation"].column_names == ["sentence1", "sentence2", "label", "idx"]
