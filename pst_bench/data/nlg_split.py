"""What every NLG split becomes, and the linearisation of its inputs (shared by the file and hub readers).

``NlgSplit`` holds one linearised source per input with all of its references; ``linearise_e2e_mr`` and
``linearise_triples`` follow microsoft/LoRA's ``examples/NLG/src/format_converting_*.py`` (``data.nlg``'s
docstring shows both).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

SPLITS = ("train", "validation", "test")
NLG_TASKS = ("e2e", "webnlg", "dart")

FIX_HINT = "set data.dir=/path/to/data or PST_DATA_DIR=/path/to/data"

# LoRA's renaming of E2E slot keys (the others are kept as is).
E2E_KEY_NAMES = {"eatType": "Type", "familyFriendly": "family friendly", "priceRange": "price"}


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


def group_pairs(pairs: Iterable[tuple[str, str]], name: str) -> NlgSplit:
    """Group (source, reference) pairs by identical source, in order of first appearance."""
    grouped: dict[str, list[str]] = {}
    for source, reference in pairs:
        grouped.setdefault(source, []).append(reference)
    return NlgSplit(name, list(grouped), list(grouped.values()))
