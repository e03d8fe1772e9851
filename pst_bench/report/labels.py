"""The paper's names and colours of the methods, shared by every table and figure."""

from __future__ import annotations

from ..record import SCORE_TERMS, RunRecord

FULL_PST = "PST[mag+ab+rc]"
#: The labels of the paper's main rows, in its order.
MAIN_LABELS = ("Fine-tune", "MaP", "MvP", "PST")
_KIND_LABELS = {"finetune": "Fine-tune", "map": "MaP", "mvp": "MvP"}
#: Paper labels pst-bench can run -> the method config (L0-regu is quoted from prior work, not implemented).
_METHOD_OF_LABEL = {"Fine-tune": "finetune", "MaP": "map", "MvP": "mvp", "PST": "pst"}
#: Figure colours by label; PST variants and anything else get OTHER_COLORS in order.
COLORS = {"MaP": "tab:green", "MvP": "tab:red", "PST": "tab:blue", "Fine-tune": "black"}
OTHER_COLORS = (
    "tab:purple",
    "tab:brown",
    "tab:pink",
    "tab:olive",
    "tab:cyan",
    "tab:orange",
    "tab:gray",
    "gold",
    "navy",
    "teal",
)


def label_of(record: RunRecord) -> str:
    """The paper's label of what a record computes: MaP, MvP, Fine-tune, PST or PST[terms].

    From the computation, not the config name: ``pst`` and ``pst_mag_ab_rc`` are both PST,
    and ``method=pst method.score_terms=[mag]`` is PST[mag]. A mask structure other than the paper's
    follows in brackets: ``PST (2:4)``, ``MaP (units:ffn+head, global)``.
    """
    if record.kind != "pst":
        label = _KIND_LABELS.get(record.kind, record.method)
    else:
        terms = record.score_terms
        label = "PST" if terms == SCORE_TERMS else f"PST[{'+'.join(terms)}]"
    return f"{label} ({', '.join(record.structure)})" if record.structure else label


def method_of_label(label: str) -> str | None:
    """The method config that produces a paper label (PST[mag+ab] -> pst_mag_ab), or None."""
    if label in _METHOD_OF_LABEL:
        return _METHOD_OF_LABEL[label]
    if label.startswith("PST[") and label.endswith("]"):
        return "pst_" + label[4:-1].replace("+", "_")
    return None


def color_of(label: str, labels_in_plot: list[str]) -> str:
    """A fixed colour for the main methods, then a stable one per other label of the plot."""
    if label in COLORS:
        return COLORS[label]
    others = [other for other in labels_in_plot if other not in COLORS]
    return OTHER_COLORS[others.index(label) % len(OTHER_COLORS)] if label in others else "0.3"
