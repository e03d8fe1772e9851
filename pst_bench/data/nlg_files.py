"""NLG splits from local files: E2E (official CSV or LoRA's text files), WebNLG (LoRA's JSON and the
official reference files) and DART (JSON or XML, official reference files); the layouts are in
``data.nlg``'s docstring. Every problem a file can have is a ``DataError`` naming the file and the line
(or the entry)."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pst_bench.data.nlg_split import FIX_HINT, NlgSplit, group_pairs, linearise_e2e_mr, linearise_triples
from pst_bench.data.source import folder_listing
from pst_bench.errors import DataError

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


def missing_file(task: str, split: str, expected: str, folder: Path, extra: str = "") -> DataError:
    return DataError(
        f"{task} split {split!r} is missing: expected {expected} "
        f"(the folder {folder} has: {folder_listing(folder)}).{extra} Add the file, or {FIX_HINT} "
        f"naming a folder that has it."
    )


# --------------------------------------------------------------------------- E2E


def load_local_e2e(folder: Path, split: str, e2e_format: str) -> NlgSplit:
    if e2e_format == "lora":
        path = folder / _E2E_LORA_FILES[split]
        if not path.is_file():
            extra = (
                " LoRA's train.txt is not published with its data: use task.e2e_format=official."
                if split == "train"
                else ""
            )
            raise missing_file("e2e", split, f"the file {path}", folder, extra)
        return group_pairs(_read_lora_lines(path), split)
    name = _E2E_OFFICIAL_FILES[split]
    candidates = [folder / "e2e-dataset" / name, folder / name]
    path = next((c for c in candidates if c.is_file()), None)
    if path is None:
        raise missing_file("e2e", split, " or ".join(str(c) for c in candidates), folder)
    return group_pairs(_read_e2e_csv(path), split)


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


def load_local_webnlg(folder: Path, split: str, options: dict[str, Any]) -> NlgSplit:
    path = folder / _WEBNLG_FILES[split]
    if not path.is_file():
        raise missing_file("webnlg", split, f"the file {path} (LoRA's webnlg_challenge_2017 JSON)", folder)
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


def load_local_dart(folder: Path, split: str, options: dict[str, Any]) -> NlgSplit:
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
        raise missing_file("dart", split, " or ".join(str(c) for c in candidates), folder, extra)
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
