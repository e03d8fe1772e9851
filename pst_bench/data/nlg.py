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

The readers: ``nlg_files`` (local files), ``nlg_hub`` (the hub), ``nlg_split`` (``NlgSplit`` and the
linearisation). Everything a file may do wrong raises ``DataError`` naming the file and the line
(text files, CSV, JSON syntax) or the entry (JSON/XML entries), never a bare traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pst_bench.data.nlg_files import load_local_dart, load_local_e2e, load_local_webnlg
from pst_bench.data.nlg_hub import load_hub
from pst_bench.data.nlg_split import (
    FIX_HINT,
    NLG_TASKS,
    SPLITS,
    NlgSplit,
    linearise_e2e_mr,
    linearise_triples,
)
from pst_bench.data.source import configured_dir
from pst_bench.errors import ConfigError, DataError

__all__ = ["NLG_TASKS", "SPLITS", "NlgSplit", "linearise_e2e_mr", "linearise_triples", "load_nlg_split"]


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
        return load_hub(task_cfg, task, split, options)
    folder = _find_task_dir(task_cfg, task, data_dir)
    if task == "e2e":
        return load_local_e2e(folder, split, options["e2e_format"])
    if task == "webnlg":
        return load_local_webnlg(folder, split, options)
    return load_local_dart(folder, split, options)


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
        f"No {local_dir} folder for task {task}: looked in {looked}. To fix, {FIX_HINT} "
        f"(a folder holding {local_dir}/ or nlg/{local_dir}/), or set data.dir=null to load "
        f"{task_cfg.get('hub_dataset')} from the Hugging Face hub."
    )
