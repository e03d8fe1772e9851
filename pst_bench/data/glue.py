"""GLUE splits from a local glue_data folder or from the ``nyu-mll/glue`` hub dataset.

Both sources give the same schema: the task's text fields (strings), ``label``
(a ``ClassLabel`` with the hub's class names, stored as int64, or a float32
similarity score for STS-B) and ``idx`` (int32, the row's position in its
split, as on the hub).

The local reader knows the classic ``glue_data`` TSV layout. The files are
split on tabs only: GLUE's own readers never processed quotes, and real rows
(RTE train, MNLI) start a field with ``"``, so csv quoting would merge lines.
Everything a file may do wrong (a short row, an unknown label, a missing file)
raises ``DataError`` with the path and line number, never a bare traceback.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets

from pst_bench.data.source import configured_dir as _configured_dir
from pst_bench.data.source import folder_listing as _listing
from pst_bench.data.source import hub_unreachable_errors as _hub_unreachable_errors
from pst_bench.data.source import offline_mode_if_requested as _offline_mode_if_requested
from pst_bench.errors import ConfigError, DataError

__all__ = ["load_glue_splits"]

# Split name (as on the hub) -> file name in the classic glue_data folders.
_DEFAULT_SPLIT_FILES = {"train": "train.tsv", "validation": "dev.tsv"}
_MNLI_SPLIT_FILES = {
    "train": "train.tsv",
    "validation_matched": "dev_matched.tsv",
    "validation_mismatched": "dev_mismatched.tsv",
}
_BINARY_FILE_LABELS = ("0", "1")
_ENTAILMENT_NAMES = ("entailment", "not_entailment")

_FIX_HINT = "set data.dir=/path/to/glue_data or PST_DATA_DIR=/path/to/glue_data"


@dataclass(frozen=True)
class TsvLayout:
    """How one task's glue_data TSV files are laid out.

    Columns are header names, or 0-based positions for headerless files
    (``n_fields`` set). ``file_labels[i]`` is the text that stands for class
    ``i`` in the file; ``class_names`` are the hub's ``ClassLabel`` names.
    Both are ``None`` for regression, whose label is parsed as a float.
    """

    text_columns: Mapping[str, str | int]  # hub feature name -> file column
    label_column: str | int
    class_names: tuple[str, ...] | None
    file_labels: tuple[str, ...] | None
    n_fields: int | None = None  # headerless files only: fields per line
    split_files: Mapping[str, str] = field(default_factory=lambda: _DEFAULT_SPLIT_FILES)


# All layout knowledge, keyed by task_cfg.name. Class ids follow nyu-mll/glue.
LAYOUTS: dict[str, TsvLayout] = {
    "sst2": TsvLayout({"sentence": "sentence"}, "label", ("negative", "positive"), _BINARY_FILE_LABELS),
    # CoLA's train/dev have no header: source, label, original mark, sentence.
    "cola": TsvLayout({"sentence": 3}, 1, ("unacceptable", "acceptable"), _BINARY_FILE_LABELS, n_fields=4),
    "mrpc": TsvLayout(
        {"sentence1": "#1 String", "sentence2": "#2 String"},
        "Quality",
        ("not_equivalent", "equivalent"),
        _BINARY_FILE_LABELS,
    ),
    "qqp": TsvLayout(
        {"question1": "question1", "question2": "question2"},
        "is_duplicate",
        ("not_duplicate", "duplicate"),
        _BINARY_FILE_LABELS,
    ),
    "stsb": TsvLayout({"sentence1": "sentence1", "sentence2": "sentence2"}, "score", None, None),
    "mnli": TsvLayout(
        {"premise": "sentence1", "hypothesis": "sentence2"},
        "gold_label",
        ("entailment", "neutral", "contradiction"),
        ("entailment", "neutral", "contradiction"),
        split_files=_MNLI_SPLIT_FILES,
    ),
    "qnli": TsvLayout(
        {"question": "question", "sentence": "sentence"},
        "label",
        _ENTAILMENT_NAMES,
        _ENTAILMENT_NAMES,
    ),
    "rte": TsvLayout(
        {"sentence1": "sentence1", "sentence2": "sentence2"},
        "label",
        _ENTAILMENT_NAMES,
        _ENTAILMENT_NAMES,
    ),
}


def load_glue_splits(task_cfg: Any, data_cfg: Any, splits: Sequence[str] | None = None) -> datasets.DatasetDict:
    """Load ``splits`` (default: train + the task's eval splits) of one GLUE task.

    Reads ``<data_cfg.dir>/<local_dir>`` or ``<data_cfg.dir>/glue/<local_dir>``
    when ``data_cfg.dir`` is set, otherwise ``data_cfg.hub_dataset`` from the
    Hugging Face hub (or its cache when offline).
    """
    if task_cfg.get("data_format"):  # a dataset of one's own, named by its task file
        from pst_bench.data.custom import load_custom_splits

        wanted = list(splits) if splits is not None else ["train", *task_cfg["eval_splits"]]
        return load_custom_splits(task_cfg, data_cfg, wanted)
    layout = _layout_for(task_cfg)
    wanted = list(splits) if splits is not None else ["train", *task_cfg["eval_splits"]]
    _check_split_names(task_cfg, layout, wanted)
    features = _features_for(task_cfg, layout)
    data_dir = _configured_dir(data_cfg)
    if data_dir is not None:
        return _load_local(task_cfg, layout, features, data_dir, wanted)
    return _load_hub(task_cfg, data_cfg, features, wanted)


# --------------------------------------------------------------------------- config checks


def _layout_for(task_cfg: Any) -> TsvLayout:
    """The task's layout, after checking the task config agrees with it."""
    name = task_cfg["name"]
    if name not in LAYOUTS:
        raise ConfigError(
            f"Unknown GLUE task {name!r}; known tasks: {', '.join(sorted(LAYOUTS))}. A dataset of your own: "
            "set task.data_format (tsv, csv, jsonl or hub) in its task file (docs/data.md)."
        )
    layout = LAYOUTS[name]
    text_fields = [str(f) for f in task_cfg["text_fields"]]
    if text_fields != list(layout.text_columns):
        raise ConfigError(
            f"task.text_fields={text_fields} does not match the {name} columns "
            f"{list(layout.text_columns)} of the hub dataset."
        )
    return layout


def _check_split_names(task_cfg: Any, layout: TsvLayout, wanted: Sequence[str]) -> None:
    unknown = [s for s in wanted if s not in layout.split_files]
    if unknown:
        raise ConfigError(
            f"Task {task_cfg['name']} has no split(s) {unknown}; "
            f"available: {list(layout.split_files)} (the unlabeled test split is not supported)."
        )


def _features_for(task_cfg: Any, layout: TsvLayout) -> datasets.Features:
    """The schema shared by the local and the hub source (the hub's own schema)."""
    columns: dict[str, Any] = {name: datasets.Value("string") for name in layout.text_columns}
    if layout.class_names is None:
        columns["label"] = datasets.Value("float32")
    else:
        columns["label"] = datasets.ClassLabel(names=list(layout.class_names))
    columns["idx"] = datasets.Value("int32")
    return datasets.Features(columns)


# --------------------------------------------------------------------------- local folder


def _load_local(
    task_cfg: Any, layout: TsvLayout, features: datasets.Features, data_dir: Path, wanted: Sequence[str]
) -> datasets.DatasetDict:
    task_dir = _find_task_dir(task_cfg, layout, data_dir)
    loaded = {}
    for split in wanted:
        path = task_dir / layout.split_files[split]
        if not path.is_file():
            raise DataError(
                f"{task_cfg['name']} split {split!r} is missing: expected the file {path} "
                f"(the folder has: {_listing(task_dir)}). Add the file, or {_FIX_HINT} "
                f"naming a folder that has it."
            )
        columns = _read_tsv(path, layout)
        loaded[split] = datasets.Dataset.from_dict(columns, features=features, split=split)
    return datasets.DatasetDict(loaded)


def _find_task_dir(task_cfg: Any, layout: TsvLayout, data_dir: Path) -> Path:
    """The first of <dir>/<local_dir> and <dir>/glue/<local_dir> that exists."""
    local_dir = task_cfg["local_dir"]
    candidates = [data_dir / local_dir, data_dir / "glue" / local_dir]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    expected = ", ".join(f"{local_dir}/{name}" for name in layout.split_files.values())
    raise DataError(
        f"No {local_dir} folder for task {task_cfg['name']}: looked in {looked}. "
        f"To fix, {_FIX_HINT}, a folder holding {expected} (the classic glue_data layout)."
    )


def _read_tsv(path: Path, layout: TsvLayout) -> dict[str, list]:
    """Parse one split file into columns (text fields, label, idx)."""
    lines = _numbered_lines(path)
    if layout.n_fields is None:
        text_pos, label_pos, n_fields = _positions_from_header(path, layout, lines)
    else:
        text_pos, label_pos, n_fields = dict(layout.text_columns), layout.label_column, layout.n_fields
    columns: dict[str, list] = {name: [] for name in text_pos}
    labels: list = []
    for line_no, line in lines:
        fields = line.split("\t")
        if len(fields) != n_fields:
            raise DataError(f"{path}, line {line_no}: expected {n_fields} tab-separated fields, found {len(fields)}.")
        for name, pos in text_pos.items():
            columns[name].append(fields[pos])
        labels.append(_parse_label(path, line_no, fields[label_pos], layout))
    columns["label"] = labels
    columns["idx"] = list(range(len(labels)))
    return columns


def _numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, text) of every non-blank line, without its line ending.

    The file is split on b"\\n" only (text mode would also split on a stray
    \\r inside a field); a leading UTF-8 BOM (MRPC) is dropped.
    """
    with open(path, "rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            raw = raw.rstrip(b"\r\n")
            if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if not raw:  # blank lines carry no row; a trailing one is harmless
                continue
            try:
                yield line_no, raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataError(f"{path}, line {line_no}: not valid UTF-8 ({err.reason}).") from None


def _positions_from_header(
    path: Path, layout: TsvLayout, lines: Iterator[tuple[int, str]]
) -> tuple[dict[str, int], int, int]:
    """Read the header line; map the layout's column names to positions."""
    first = next(lines, None)
    if first is None:
        raise DataError(f"{path} is empty: expected a header line.")
    header = first[1].split("\t")
    wanted = [*layout.text_columns.values(), layout.label_column]
    missing = [c for c in wanted if c not in header]
    if missing:
        raise DataError(f"{path}, line {first[0]}: header lacks column(s) {missing}; found {header}.")
    text_pos = {name: header.index(col) for name, col in layout.text_columns.items()}
    return text_pos, header.index(layout.label_column), len(header)


def _parse_label(path: Path, line_no: int, text: str, layout: TsvLayout) -> int | float:
    if layout.file_labels is None:
        return _parse_score(path, line_no, text)
    try:
        return layout.file_labels.index(text)
    except ValueError:
        raise DataError(
            f"{path}, line {line_no}: unknown label {text!r}; expected one of {list(layout.file_labels)}."
        ) from None


def _parse_score(path: Path, line_no: int, text: str) -> float:
    try:
        score = float(text)
    except ValueError:
        score = math.nan
    if not math.isfinite(score):
        raise DataError(f"{path}, line {line_no}: label {text!r} is not a finite number.")
    return score


# --------------------------------------------------------------------------- hub


def _load_hub(task_cfg: Any, data_cfg: Any, features: datasets.Features, wanted: Sequence[str]) -> datasets.DatasetDict:
    hub_dataset = data_cfg.get("hub_dataset") if data_cfg is not None else None
    hub_dataset = hub_dataset or "nyu-mll/glue"
    try:
        with _offline_mode_if_requested():
            everything = datasets.load_dataset(hub_dataset, task_cfg["glue_config"])
    except _hub_unreachable_errors() as err:
        raise DataError(
            f"Could not load {hub_dataset!r} (config {task_cfg['glue_config']!r}) from the "
            f"Hugging Face hub or its cache ({type(err).__name__}: {err}), "
            f"and no local GLUE folder is configured. "
            f"To read local files, {_FIX_HINT} (the classic glue_data layout)."
        ) from None
    selected = {}
    for split in wanted:
        if split not in everything:
            raise DataError(
                f"{hub_dataset} ({task_cfg['glue_config']}) has no split {split!r}; it has {list(everything)}."
            )
        selected[split] = _conform(everything[split], features)
    return datasets.DatasetDict(selected)


def _conform(dataset: datasets.Dataset, features: datasets.Features) -> datasets.Dataset:
    """Keep our columns, cast only if a hub revision changed the schema."""
    dataset = dataset.select_columns(list(features))
    if dataset.features != features:
        dataset = dataset.cast(features)
    return dataset
