"""Data-to-text splits for GPT-2: E2E, WebNLG 2017 and DART, from local files or the hub.

Every split becomes an ``NlgSplit``: one linearised source per input (an E2E
meaning representation, a WebNLG/DART triple set), in file order, with all of
that input's references. Training uses one (source, reference) pair per
reference; evaluation generates once per source and scores it against all of
its references (multi-reference BLEU).

Linearisation follows microsoft/LoRA's ``examples/NLG/src/format_converting_*.py``:

- E2E: ``name[Alimentum], area[city centre], familyFriendly[no]`` becomes
  ``name : Alimentum | area : city centre | family friendly : no``: one
  ``key : value`` per slot, in MR order, joined by `` | ``, with eatType→``Type``,
  familyFriendly→``family friendly``, priceRange→``price`` (the other keys as is).
  LoRA's own files also Moses-tokenise the values (``£20-25`` → ``£ 20 - 25``);
  the official-CSV reader does not (``e2e_format: lora`` reads LoRA's files as they are).
- WebNLG and DART: see ``linearise_triples``.

Local layout (``data.dir`` = D; the task folder is ``D/<local_dir>`` or ``D/nlg/<local_dir>``):

- e2e, ``e2e_format: official``: ``e2e-dataset/{trainset,devset,testset_w_refs}.csv``
  (columns ``mr,ref``, one row per reference; rows with identical MRs are grouped).
- e2e, ``e2e_format: lora``: ``{train,valid,test}.txt``, ``MR||reference`` per line.
- webnlg: LoRA's ``{train,dev,test}.json``; test references from the official
  ``references/gold-all-cat-reference{0..7}.lex`` when present (``test_references: lex``).
- dart: ``dart-v1.1.1-full-{train,dev,test}.json`` or ``.xml`` (the official XML
  form); test references from the XML/JSON (``test_references: xml``) or the
  official ``references/all-delex-reference{0,1,2}.lex`` (``test_references: lex``).

Everything a file may do wrong raises ``DataError`` naming the file and the line
(text files, CSV, JSON syntax) or the entry (JSON/XML entries), never a bare traceback.
"""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets

from pst_bench.data.source import (
    configured_dir,
    folder_listing,
    hub_unreachable_errors,
    offline_mode_if_requested,
)
from pst_bench.errors import ConfigError, DataError

__all__ = ["NLG_TASKS", "NlgSplit", "linearise_e2e_mr", "linearise_triples", "load_nlg_split"]

SPLITS = ("train", "validation", "test")
NLG_TASKS = ("e2e", "webnlg", "dart")

_FIX_HINT = "set data.dir=/path/to/data or PST_DATA_DIR=/path/to/data"

# LoRA's renaming of E2E slot keys (the others are kept as is).
E2E_KEY_NAMES = {"eatType": "Type", "familyFriendly": "family friendly", "priceRange": "price"}

# File names per split.
_E2E_OFFICIAL_FILES = {"train": "trainset.csv", "validation": "devset.csv", "test": "testset_w_refs.csv"}
_E2E_LORA_FILES = {"train": "train.txt", "validation": "valid.txt", "test": "test.txt"}
_WEBNLG_FILES = {"train": "train.json", "validation": "dev.json", "test": "test.json"}
_WEBNLG_TEST_REFS = "references/gold-all-cat-reference{k}.lex"  # k = 0..7
_DART_FILES = {
    "train": "dart-v1.1.1-full-train",
    "validation": "dart-v1.1.1-full-dev",
    "test": "dart-v1.1.1-full-test",
}  # + .json or .xml
_DART_TEST_REFS = "references/all-delex-reference{k}.lex"  # k = 0..2
_MAX_REFERENCE_FILES = 8
PARQUET_EXPORT = "refs/convert/parquet"


@dataclass
class NlgSplit:
    """One split: ``sources[i]`` is an input, ``references[i]`` all of its references."""

    name: str  # "train" | "validation" | "test"
    sources: list[str]
    references: list[list[str]]

    def __post_init__(self) -> None:
        if len(self.sources) != len(self.references):
            raise ValueError(f"{len(self.sources)} sources but {len(self.references)} reference lists")

    def __len__(self) -> int:
        return len(self.sources)

    @property
    def num_references(self) -> int:
        return sum(len(refs) for refs in self.references)

    def training_pairs(self) -> list[tuple[str, str]]:
        """One (source, reference) pair per reference, inputs in order."""
        return [(source, ref) for source, refs in zip(self.sources, self.references) for ref in refs]


def load_nlg_split(task_cfg: Any, data_cfg: Any, split: str) -> NlgSplit:
    """Load one split (``train``, ``validation`` or ``test``) of an NLG task.

    Reads ``<data_cfg.dir>/<local_dir>`` or ``<data_cfg.dir>/nlg/<local_dir>`` when
    ``data_cfg.dir`` is set, otherwise ``task_cfg.hub_dataset`` from the Hugging
    Face hub (or its cache when offline).
    """
    task = _task_name(task_cfg)
    if split not in SPLITS:
        raise ConfigError(f"Task {task} has no split {split!r}; choose one of {list(SPLITS)}.")
    options = _options(task_cfg, task)
    data_dir = configured_dir(data_cfg)
    if data_dir is None:
        return _load_hub(task_cfg, task, split, options)
    folder = _find_task_dir(task_cfg, task, data_dir)
    if task == "e2e":
        return _load_local_e2e(folder, split, options["e2e_format"])
    if task == "webnlg":
        return _load_local_webnlg(folder, split, options)
    return _load_local_dart(folder, split, options)


# --------------------------------------------------------------------------- config


def _task_name(task_cfg: Any) -> str:
    name = str(task_cfg["name"])
    if name not in NLG_TASKS:
        raise ConfigError(f"Unknown NLG task {name!r}; known tasks: {', '.join(NLG_TASKS)}.")
    return name


_CHOICES = {
    "e2e": {"e2e_format": ("official", "lora")},
    "webnlg": {"test_references": ("lex", "json")},
    "dart": {"test_references": ("xml", "lex")},
}


def _options(task_cfg: Any, task: str) -> dict[str, Any]:
    """The task's reader options, defaulted and checked (first choice = default)."""
    options: dict[str, Any] = {}
    for key, choices in _CHOICES[task].items():
        value = task_cfg.get(key) or choices[0]
        if value not in choices:
            raise ConfigError(f"task.{key}={value!r} is unknown for {task}; choose one of {list(choices)}.")
        options[key] = value
    if task == "webnlg":
        options["only_good_lex"] = bool(task_cfg.get("only_good_lex", False))
    return options


def _find_task_dir(task_cfg: Any, task: str, data_dir: Path) -> Path:
    """The first of <dir>/<local_dir> and <dir>/nlg/<local_dir> that exists."""
    local_dir = str(task_cfg.get("local_dir") or task)
    candidates = [data_dir / local_dir, data_dir / "nlg" / local_dir]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    raise DataError(
        f"No {local_dir} folder for task {task}: looked in {looked}. To fix, {_FIX_HINT} "
        f"(a folder holding {local_dir}/ or nlg/{local_dir}/), or set data.dir=null to load "
        f"{task_cfg.get('hub_dataset')} from the Hugging Face hub."
    )


def _missing_file(task: str, split: str, expected: str, folder: Path, extra: str = "") -> DataError:
    return DataError(
        f"{task} split {split!r} is missing: expected {expected} "
        f"(the folder {folder} has: {folder_listing(folder)}).{extra} Add the file, or {_FIX_HINT} "
        f"naming a folder that has it."
    )


# --------------------------------------------------------------------------- linearisation


def linearise_triples(triples: Iterable[Sequence[str]], *, lowercase_relation: bool) -> str:
    """LoRA's triple-set linearisation, shared by WebNLG and DART.

    Each (subject, relation, object) triple becomes ``subject : relation : object``
    and the triples, in input order, are joined with `` | ``::

        Aarhus_Airport : cityServed : "Aarhus, Denmark" | Aarhus : leaderName : Jacob_Bundsgaard

    Entities are kept verbatim (WebNLG's underscores and quotes included). LoRA's
    WebNLG converter keeps the property as is (``cityServed``); its DART converter
    lowercases the relation (``[TABLECONTEXT] : [title] : Jeff Daniels``), hence
    ``lowercase_relation``.
    """
    parts = []
    for subject, relation, obj in triples:
        parts.append(f"{subject} : {relation.lower() if lowercase_relation else relation} : {obj}")
    return " | ".join(parts)


_E2E_SLOT = re.compile(r"\s*([^\[\],]+?)\s*\[([^\[\]]*)\]\s*")


def linearise_e2e_mr(mr: str) -> str:
    """``name[Alimentum], familyFriendly[no]`` -> ``name : Alimentum | family friendly : no``.

    Raises ``ValueError`` for text that is not a comma-separated list of ``key[value]``.
    """
    slots, pos = [], 0
    while True:
        match = _E2E_SLOT.match(mr, pos)
        if match is None:
            raise ValueError(f"expected key[value] at character {pos + 1} of {mr!r}")
        key, value = match.group(1), match.group(2).strip()
        slots.append(f"{E2E_KEY_NAMES.get(key, key)} : {value}")
        pos = match.end()
        if pos == len(mr):
            return " | ".join(slots)
        if mr[pos] != ",":
            raise ValueError(f"expected ',' at character {pos + 1} of {mr!r}")
        pos += 1


def _group(pairs: Iterable[tuple[str, str]], name: str) -> NlgSplit:
    """Group (source, reference) pairs by identical source, in order of first appearance."""
    grouped: dict[str, list[str]] = {}
    for source, reference in pairs:
        grouped.setdefault(source, []).append(reference)
    return NlgSplit(name, list(grouped), list(grouped.values()))


# --------------------------------------------------------------------------- E2E


def _load_local_e2e(folder: Path, split: str, e2e_format: str) -> NlgSplit:
    if e2e_format == "lora":
        path = folder / _E2E_LORA_FILES[split]
        if not path.is_file():
            extra = (
                " LoRA's train.txt is not published with its data: use task.e2e_format=official."
                if split == "train"
                else ""
            )
            raise _missing_file("e2e", split, f"the file {path}", folder, extra)
        return _group(_read_lora_lines(path), split)
    name = _E2E_OFFICIAL_FILES[split]
    candidates = [folder / "e2e-dataset" / name, folder / name]
    path = next((c for c in candidates if c.is_file()), None)
    if path is None:
        raise _missing_file("e2e", split, " or ".join(str(c) for c in candidates), folder)
    return _group(_read_e2e_csv(path), split)


def _read_e2e_csv(path: Path) -> Iterator[tuple[str, str]]:
    """(linearised MR, reference) of every row of an official E2E CSV (columns mr, ref).

    Quoted fields may hold newlines (two trainset references do), so this is a
    csv reader, and the line numbers in errors are where the row starts.
    """
    reader = csv.reader(io.StringIO(_decode(path), newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise DataError(f"{path} is empty: expected a header line 'mr,ref'.")
        columns = [c.strip().lower() for c in header]
        missing = [c for c in ("mr", "ref") if c not in columns]
        if missing:
            raise DataError(f"{path}, line 1: header lacks column(s) {missing}; found {header}.")
        mr_pos, ref_pos = columns.index("mr"), columns.index("ref")
        line_no = reader.line_num + 1
        for row in reader:
            if row:  # blank lines carry no row
                if len(row) != len(header):
                    raise DataError(
                        f"{path}, line {line_no}: expected {len(header)} comma-separated "
                        f"fields (mr, ref), found {len(row)}."
                    )
                try:
                    source = linearise_e2e_mr(row[mr_pos])
                except ValueError as err:
                    raise DataError(f"{path}, line {line_no}: malformed meaning representation: {err}.") from None
                reference = row[ref_pos]
                if not reference.strip():
                    raise DataError(f"{path}, line {line_no}: empty reference.")
                yield source, reference
            line_no = reader.line_num + 1
    except csv.Error as err:
        raise DataError(f"{path}, line {reader.line_num}: {err}.") from None


def _read_lora_lines(path: Path) -> Iterator[tuple[str, str]]:
    """LoRA's ``MR||reference`` lines, stripped as LoRA's format_converting_e2e.py does."""
    for line_no, line in _numbered_lines(path):
        line = line.strip()
        if not line:
            continue
        fields = line.split("||")
        if len(fields) != 2:
            raise DataError(
                f"{path}, line {line_no}: expected 'source||reference' (one '||'), found {len(fields) - 1} '||'."
            )
        source, reference = fields
        if not source.strip() or not reference.strip():
            raise DataError(f"{path}, line {line_no}: empty {'source' if not source.strip() else 'reference'}.")
        yield source, reference


# --------------------------------------------------------------------------- WebNLG


def _load_local_webnlg(folder: Path, split: str, options: dict[str, Any]) -> NlgSplit:
    path = folder / _WEBNLG_FILES[split]
    if not path.is_file():
        raise _missing_file("webnlg", split, f"the file {path} (LoRA's webnlg_challenge_2017 JSON)", folder)
    use_lex_files = (
        split == "test" and options["test_references"] == "lex" and (folder / _WEBNLG_TEST_REFS.format(k=0)).is_file()
    )
    entries = _read_webnlg_json(
        path, need_lexicalisations=not use_lex_files, only_good=options["only_good_lex"] and not use_lex_files
    )
    sources = [source for source, _ in entries]
    if use_lex_files:
        references = _read_reference_files(folder, _WEBNLG_TEST_REFS, len(sources), path)
    else:
        references = [refs for _, refs in entries]
        if options["only_good_lex"]:  # LoRA drops inputs left with no 'good' lexicalisation
            kept = [i for i, refs in enumerate(references) if refs]
            sources, references = [sources[i] for i in kept], [references[i] for i in kept]
    return NlgSplit(split, sources, references)


def _read_webnlg_json(path: Path, *, need_lexicalisations: bool, only_good: bool) -> list[tuple[str, list[str]]]:
    """(linearised triple set, lexicalisations) of every entry of a LoRA WebNLG JSON.

    The file is ``{"entries": [{"1": {...}}, {"2": {...}}, ...]}``; each entry has
    ``modifiedtripleset`` (a list of {subject, property, object}) and
    ``lexicalisations`` (a list of {lex, comment, ...}); LoRA's converter keeps the
    ``comment == "good"`` ones (``only_good``).
    """
    data = _load_json(path)
    entries = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise DataError(f"{path}: expected an object with an 'entries' list (LoRA's WebNLG JSON).")
    out = []
    for index, wrapper in enumerate(entries):
        key = str(index + 1)
        where = f"{path}, entry {index + 1}"
        if not isinstance(wrapper, dict) or key not in wrapper:
            found = list(wrapper) if isinstance(wrapper, dict) else type(wrapper).__name__
            raise DataError(f"{where}: expected an object keyed {key!r}, found {found}.")
        entry = wrapper[key]
        triples = entry.get("modifiedtripleset") if isinstance(entry, dict) else None
        if not isinstance(triples, list) or not triples:
            raise DataError(f"{where}: no 'modifiedtripleset' triples.")
        try:
            triple_rows = [(t["subject"], t["property"], t["object"]) for t in triples]
        except (TypeError, KeyError) as err:
            raise DataError(f"{where}: each triple needs subject, property and object ({err!r} missing).") from None
        if not all(isinstance(x, str) for row in triple_rows for x in row):
            raise DataError(f"{where}: triple fields must be strings.")
        references: list[str] = []
        if need_lexicalisations:
            lexes = entry.get("lexicalisations")
            if not isinstance(lexes, list) or not lexes:
                raise DataError(f"{where}: no 'lexicalisations' (references).")
            for lex in lexes:
                if not isinstance(lex, dict) or not isinstance(lex.get("lex"), str) or not lex["lex"].strip():
                    raise DataError(f"{where}: a lexicalisation without 'lex' text.")
                if not only_good or lex.get("comment") == "good":
                    references.append(lex["lex"])
        out.append((linearise_triples(triple_rows, lowercase_relation=False), references))
    return out


# --------------------------------------------------------------------------- DART


def _load_local_dart(folder: Path, split: str, options: dict[str, Any]) -> NlgSplit:
    stem = _DART_FILES[split]
    candidates = [folder / f"{stem}.json", folder / f"{stem}.xml"]
    path = next((c for c in candidates if c.is_file()), None)
    if path is None:
        extra = (
            " DART's train split is not in this folder; the hub dataset Yale-LILY/dart has it "
            "(data.dir=null, with network access)."
            if split == "train"
            else ""
        )
        raise _missing_file("dart", split, " or ".join(str(c) for c in candidates), folder, extra)
    use_lex_files = split == "test" and options["test_references"] == "lex"
    reader = _read_dart_json if path.suffix == ".json" else _read_dart_xml
    entries = reader(path, need_references=not use_lex_files)
    sources = [linearise_triples(triples, lowercase_relation=True) for triples, _ in entries]
    if use_lex_files:
        if not (folder / _DART_TEST_REFS.format(k=0)).is_file():
            raise DataError(
                f"task.test_references=lex needs {folder / _DART_TEST_REFS.format(k=0)} "
                f"(the official DART references); it is missing. Use task.test_references=xml."
            )
        references = _read_reference_files(folder, _DART_TEST_REFS, len(sources), path)
    else:
        references = [refs for _, refs in entries]
    return NlgSplit(split, sources, references)


def _read_dart_json(path: Path, *, need_references: bool) -> list[tuple[list[tuple[str, str, str]], list[str]]]:
    """DART JSON: a list of {tripleset: [[s, p, o], ...], annotations: [{source, text}, ...]}."""
    data = _load_json(path)
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a list of entries (DART JSON).")
    out = []
    for index, entry in enumerate(data):
        where = f"{path}, entry {index + 1}"
        tripleset = entry.get("tripleset") if isinstance(entry, dict) else None
        if not isinstance(tripleset, list) or not tripleset:
            raise DataError(f"{where}: no 'tripleset' triples.")
        for triple in tripleset:
            if not (isinstance(triple, list) and len(triple) == 3 and all(isinstance(x, str) for x in triple)):
                raise DataError(f"{where}: a triple must be [subject, relation, object] strings, found {triple!r}.")
        references = []
        if need_references:
            annotations = entry.get("annotations")
            if not isinstance(annotations, list):
                raise DataError(f"{where}: no 'annotations' list.")
            for annotation in annotations:
                text = annotation.get("text") if isinstance(annotation, dict) else None
                if not isinstance(text, str):
                    raise DataError(f"{where}: an annotation without 'text'.")
                if text.strip():
                    references.append(text)
            if not references:
                raise DataError(f"{where}: no annotation text (references).")
        out.append(([tuple(t) for t in tripleset], references))
    return out


def _read_dart_xml(path: Path, *, need_references: bool) -> list[tuple[list[tuple[str, str, str]], list[str]]]:
    """DART's official XML: <entry> with <modifiedtripleset><mtriple>s | p | o</mtriple> and <lex>.

    Empty <lex/> elements (one in the v1.1.1 test set) are skipped, as the official
    reference files skip them.
    """
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        line, column = err.position
        raise DataError(f"{path}, line {line}, column {column}: not well-formed XML ({err}).") from None
    entries = root.findall("./entries/entry")
    if not entries:
        raise DataError(f"{path}: no <benchmark><entries><entry> elements (DART XML).")
    out = []
    for index, entry in enumerate(entries):
        where = f"{path}, entry {index + 1} (eid {entry.get('eid', '?')})"
        mtriples = entry.findall("./modifiedtripleset/mtriple")
        if not mtriples:
            raise DataError(f"{where}: no <mtriple> in <modifiedtripleset>.")
        triples = []
        for mtriple in mtriples:
            parts = (mtriple.text or "").split(" | ")
            if len(parts) != 3:
                raise DataError(f"{where}: <mtriple> must be 'subject | relation | object', found {mtriple.text!r}.")
            triples.append(tuple(parts))
        references = [lex.text for lex in entry.findall("lex") if lex.text and lex.text.strip()]
        if need_references and not references:
            raise DataError(f"{where}: no <lex> text (references).")
        out.append((triples, references))
    return out


# --------------------------------------------------------------------------- shared file helpers


def _read_reference_files(folder: Path, pattern: str, count: int, data_path: Path) -> list[list[str]]:
    """Official multi-reference files: line i of file k is the k-th reference of input i.

    Files ``pattern.format(k=0)``, ``k=1``, ... are read while they exist; a blank
    line means input i has no k-th reference. Every input needs at least one.
    """
    paths = []
    for k in range(_MAX_REFERENCE_FILES):
        path = folder / pattern.format(k=k)
        if not path.is_file():
            break
        paths.append(path)
    references: list[list[str]] = [[] for _ in range(count)]
    for path in paths:
        lines = _all_lines(path)
        if len(lines) != count:
            raise DataError(
                f"{path} has {len(lines)} lines but {data_path} has {count} inputs; "
                f"line i must be a reference of input i."
            )
        for i, line in enumerate(lines):
            if line.strip():
                references[i].append(line)
    for i, refs in enumerate(references):
        if not refs:
            raise DataError(
                f"{paths[0]}, line {i + 1}: input {i + 1} has no reference in any of "
                f"{', '.join(p.name for p in paths)}."
            )
    return references


def _decode(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise DataError(f"{path}, line {line}: not valid UTF-8 ({err.reason}).") from None


def _all_lines(path: Path) -> list[str]:
    """Every line, without its ending; split on \\n only (not on \\x85 or \\u2028 in the text)."""
    text = _decode(path)
    lines = text.split("\n")
    if lines and lines[-1] == "":  # the final newline ends the last line, it starts none
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    return enumerate(_all_lines(path), start=1)


def _load_json(path: Path) -> Any:
    try:
        return json.loads(_decode(path))
    except json.JSONDecodeError as err:
        raise DataError(f"{path}, line {err.lineno}, column {err.colno}: not valid JSON ({err.msg}).") from None


# --------------------------------------------------------------------------- hub
#
# The column mappings below follow the dataset cards of the hub datasets named in
# conf/task/{e2e,webnlg,dart}.yaml. The hub cannot be reached from where this was
# written, so they are checked only against fake rows of that shape
# (tests/test_data_nlg.py), never against the real hub data.


def _load_hub(task_cfg: Any, task: str, split: str, options: dict[str, Any]) -> NlgSplit:
    hub_dataset = task_cfg.get("hub_dataset")
    if not hub_dataset:
        raise ConfigError(f"task.hub_dataset is not set for {task}, and no data.dir: {_FIX_HINT}.")
    hub_config = task_cfg.get("hub_config")
    revision = task_cfg.get("hub_revision")
    if revision == PARQUET_EXPORT:
        # The hub's Parquet export of a script dataset has no loading script and no
        # config names, only <config>/<split>/*.parquet folders ("default" when the
        # dataset has one config): the config is chosen by folder.
        args, kwargs = (hub_dataset,), {"revision": revision, "data_dir": hub_config or "default"}
    else:
        args, kwargs = (hub_dataset, hub_config), ({"revision": revision} if revision else {})
    described = f"{hub_dataset!r} (config {hub_config!r}{f', revision {revision!r}' if revision else ''})"
    local_dir = task_cfg.get("local_dir") or task
    local_fix = f"{_FIX_HINT} (a folder holding {local_dir}/ or nlg/{local_dir}/)"
    try:
        with offline_mode_if_requested():
            everything = datasets.load_dataset(*args, **kwargs)
    except hub_unreachable_errors() as err:
        raise DataError(
            f"Could not load {described} from the Hugging Face hub or its cache "
            f"({type(err).__name__}: {err}), and no local data folder is configured. "
            f"To read local files, {local_fix}."
        ) from None
    except RuntimeError as err:  # datasets >= 4 refuses repositories that still hold a loading script
        if "script" not in str(err).lower():
            raise
        raise DataError(
            f"Could not load {described}: {err}. Set task.hub_revision={PARQUET_EXPORT} "
            f"(the hub's Parquet export), or read local files: {local_fix}."
        ) from None
    names = [split] + (["dev"] if split == "validation" else [])  # web_nlg calls it "dev"
    hub_split = next((n for n in names if n in everything), None)
    if hub_split is None:
        raise DataError(f"{described} has no split {split!r}; it has {list(everything)}.")
    rows = everything[hub_split]
    where = f"{hub_dataset} split {hub_split!r}"
    return _HUB_MAPPERS[task](rows, split, where, options)


def _hub_e2e(rows: Iterable[dict], split: str, where: str, options: dict[str, Any]) -> NlgSplit:
    """tuetschek/e2e_nlg: one row per reference, columns meaning_representation, human_reference."""

    def pairs() -> Iterator[tuple[str, str]]:
        for index, row in enumerate(rows):
            try:
                yield linearise_e2e_mr(row["meaning_representation"]), row["human_reference"]
            except (KeyError, ValueError) as err:
                raise DataError(f"{where}, row {index}: cannot read the MR/reference ({err}).") from None

    return _group(pairs(), split)


def _hub_webnlg(rows: Iterable[dict], split: str, where: str, options: dict[str, Any]) -> NlgSplit:
    """webnlg-challenge/web_nlg (webnlg_challenge_2017): one row per entry.

    ``modified_triple_sets = {"mtriple_set": [["s | p | o", ...]]}`` and
    ``lex = {"comment": [...], "text": [...], ...}`` (a Sequence of dicts, so a dict of lists).
    """
    sources, references = [], []
    for index, row in enumerate(rows):
        try:
            triples = [_split_mtriple(t) for t in row["modified_triple_sets"]["mtriple_set"][0]]
            lex = _columns(row["lex"])
            texts, comments = lex["text"], lex.get("comment") or [None] * len(lex["text"])
        except (KeyError, IndexError, TypeError, ValueError) as err:
            raise DataError(f"{where}, row {index}: unexpected WebNLG row ({err!r}).") from None
        refs = [t for t, c in zip(texts, comments) if t and t.strip() and (not options["only_good_lex"] or c == "good")]
        if not refs and options["only_good_lex"]:
            continue
        if not refs:
            raise DataError(f"{where}, row {index}: no lexicalisation (references).")
        sources.append(linearise_triples(triples, lowercase_relation=False))
        references.append(refs)
    return NlgSplit(split, sources, references)


def _hub_dart(rows: Iterable[dict], split: str, where: str, options: dict[str, Any]) -> NlgSplit:
    """Yale-LILY/dart: one row per triple set, ``tripleset`` [[s, p, o]], ``annotations`` {source, text}."""
    sources, references = [], []
    for index, row in enumerate(rows):
        try:
            triples = [tuple(t) for t in row["tripleset"]]
            if not triples or any(len(t) != 3 for t in triples):
                raise ValueError("a triple must be [subject, relation, object]")
            texts = _columns(row["annotations"])["text"]
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(f"{where}, row {index}: unexpected DART row ({err!r}).") from None
        refs = [t for t in texts if t and t.strip()]
        if not refs:
            raise DataError(f"{where}, row {index}: no annotation text (references).")
        sources.append(linearise_triples(triples, lowercase_relation=True))
        references.append(refs)
    return NlgSplit(split, sources, references)


_HUB_MAPPERS: dict[str, Callable[[Iterable[dict], str, str, dict[str, Any]], NlgSplit]] = {
    "e2e": _hub_e2e,
    "webnlg": _hub_webnlg,
    "dart": _hub_dart,
}


def _columns(value: Any) -> dict[str, list]:
    """A datasets Sequence-of-dict value: a dict of lists, or (plain JSON) a list of dicts."""
    if isinstance(value, dict):
        return value
    keys = {k for item in value for k in item}
    return {k: [item.get(k) for item in value] for k in keys}


def _split_mtriple(text: str) -> tuple[str, str, str]:
    parts = text.split(" | ")
    if len(parts) != 3:
        raise ValueError(f"expected 'subject | property | object', found {text!r}")
    return parts[0], parts[1], parts[2]
