"""A classification or regression dataset of your own, named by its task file alone.

``task.data_format`` says where it is: ``tsv``, ``csv`` or ``jsonl`` files (``task.data_files``: split ->
file, relative to ``<data.dir>/<task.local_dir>`` or absolute), or ``hub`` (``task.data_hub``,
``task.data_hub_config``). ``task.text_fields`` are its text columns (one or two), ``task.label_column``
its label; a classification label is the class id (0 .. num_labels-1) or, with ``task.label_values``,
one of those values as written in the file (class i = the i-th). The result has the GLUE loader's schema:
the text columns, ``label`` and ``idx``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets

from pst_bench.data.source import configured_dir, offline_mode_if_requested
from pst_bench.errors import ConfigError, DataError

FORMATS = {"tsv": "csv", "csv": "csv", "jsonl": "json", "hub": None}


def load_custom_splits(task_cfg: Any, data_cfg: Any, wanted: Sequence[str]) -> datasets.DatasetDict:
    fmt = str(task_cfg["data_format"])
    if fmt not in FORMATS:
        raise ConfigError(f"task.data_format={fmt!r}: choose one of {', '.join(FORMATS)}")
    text = [str(f) for f in task_cfg["text_fields"]]
    label = str(task_cfg.get("label_column") or "label")
    if fmt == "hub":
        raw = _from_hub(task_cfg, wanted)
    else:
        raw = _from_files(task_cfg, data_cfg, fmt, wanted)
    out = {}
    for split in wanted:
        ds = raw[split]
        missing = [c for c in [*text, label] if c not in ds.column_names]
        if missing:
            raise DataError(f"task {task_cfg['name']}, split {split}: no column(s) {missing}; it has {ds.column_names}")
        out[split] = _conform(task_cfg, ds, text, label, split)
    return datasets.DatasetDict(out)


def _from_files(task_cfg: Any, data_cfg: Any, fmt: str, wanted: Sequence[str]) -> dict:
    files = dict(task_cfg.get("data_files") or {})
    base = configured_dir(data_cfg)
    loaded = {}
    for split in wanted:
        if split not in files:
            raise ConfigError(f"task.data_files has no file for split {split!r} (it names {sorted(files)})")
        path = Path(files[split])
        if not path.is_absolute():
            if base is None:
                raise DataError(f"task {task_cfg['name']}: {path} is relative; set data.dir (or PST_DATA_DIR)")
            path = base / str(task_cfg["local_dir"]) / path
        if not path.is_file():
            raise DataError(f"task {task_cfg['name']}, split {split}: the file {path} does not exist")
        kwargs = {"delimiter": "\t", "quoting": 3} if fmt == "tsv" else {}  # tsv: tabs only, no quotes
        try:
            loaded[split] = datasets.load_dataset(
                FORMATS[fmt], data_files=str(path), split="train", keep_in_memory=True, **kwargs
            )
        except Exception as err:
            raise DataError(f"{path}: cannot be read as {fmt} ({type(err).__name__}: {err})") from None
    return loaded


def _from_hub(task_cfg: Any, wanted: Sequence[str]) -> dict:
    name = task_cfg.get("data_hub")
    if not name:
        raise ConfigError("task.data_format=hub needs task.data_hub (a dataset id)")
    try:
        with offline_mode_if_requested():
            everything = datasets.load_dataset(str(name), task_cfg.get("data_hub_config"))
    except Exception as err:
        raise DataError(f"could not load {name!r} from the hub or its cache ({type(err).__name__}: {err})") from None
    unknown = [s for s in wanted if s not in everything]
    if unknown:
        raise DataError(f"{name} has no split(s) {unknown}; it has {list(everything)}")
    return {s: everything[s] for s in wanted}


def _conform(task_cfg: Any, ds: datasets.Dataset, text: list[str], label: str, split: str) -> datasets.Dataset:
    regression = bool(task_cfg["is_regression"])
    n = int(task_cfg["num_labels"])
    values = task_cfg.get("label_values")
    values = [str(v) for v in values] if values is not None else None

    def to_label(value, row):
        if regression:
            score = float(value)
            if not math.isfinite(score):
                raise DataError(f"task {task_cfg['name']}, {split} row {row}: label {value!r} is not a finite number")
            return score
        if values is not None:
            if str(value) not in values:
                raise DataError(f"task {task_cfg['name']}, {split} row {row}: label {value!r} is not in {values}")
            return values.index(str(value))
        try:
            number = int(str(value))
        except ValueError:
            number = -1
        if not 0 <= number < n:
            raise DataError(
                f"task {task_cfg['name']}, {split} row {row}: label {value!r} is not a class id 0..{n - 1}; "
                "name the values in task.label_values"
            )
        return number

    columns = {f: [str(v) for v in ds[f]] for f in text}
    columns["label"] = [to_label(v, i) for i, v in enumerate(ds[label])]
    columns["idx"] = list(range(len(ds)))
    features = {f: datasets.Value("string") for f in text}
    features["label"] = (
        datasets.Value("float32") if regression else datasets.ClassLabel(names=values or [str(i) for i in range(n)])
    )
    features["idx"] = datasets.Value("int32")
    return datasets.Dataset.from_dict(columns, features=datasets.Features(features), split=split)
