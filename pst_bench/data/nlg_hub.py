"""NLG splits from the Hugging Face hub (or its cache offline): the datasets named by
``conf/task/{e2e,webnlg,dart}.yaml``'s ``hub_dataset``, mapped to ``NlgSplit``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import datasets

from pst_bench.data.nlg_split import FIX_HINT, NlgSplit, group_pairs, linearise_e2e_mr, linearise_triples
from pst_bench.data.source import hub_unreachable_errors, offline_mode_if_requested
from pst_bench.errors import ConfigError, DataError

PARQUET_EXPORT = "refs/convert/parquet"

#
# The column mappings below follow the dataset cards of the hub datasets named in
# conf/task/{e2e,webnlg,dart}.yaml. The hub cannot be reached from where this was
# written, so they are checked only against fake rows of that shape
# (tests/test_data_nlg.py), never against the real hub data.


def load_hub(task_cfg: Any, task: str, split: str, options: dict[str, Any]) -> NlgSplit:
    hub_dataset = task_cfg.get("hub_dataset")
    if not hub_dataset:
        raise ConfigError(f"task.hub_dataset is not set for {task}, and no data.dir: {FIX_HINT}.")
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
    local_fix = f"{FIX_HINT} (a folder holding {local_dir}/ or nlg/{local_dir}/)"
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

    return group_pairs(pairs(), split)


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
