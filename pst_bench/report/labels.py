"""The paper's names and colours of the methods, shared by every table and figure."""

from __future__ import annotations

from ..methods import find_method, registered_methods
from ..methods.pst import SCORE_TERMS
from ..record import RunRecord

FULL_PST = f"PST[{'+'.join(SCORE_TERMS)}]"
#: The labels of the paper's main rows, in its order.
MAIN_LABELS = ("Fine-tune", "MaP", "MvP", "PST")
#: The baselines beyond the paper (issue 24), as their registry entries name them (``pst_bench.methods``).
WANDA, WANDA_ONESHOT, SPARSEGPT, SOFT_MVP = "Wanda", "Wanda (one-shot)", "SparseGPT", "Soft MvP"
#: Rows of Table 2 and curves of Figure 3 that the paper never ran, in this order: no paper number is ever
#: compared with them (``table_specs.PaperIndex`` holds no paper cell of theirs), and claims 1-5 never read them.
BEYOND_PAPER = (WANDA, WANDA_ONESHOT, SPARSEGPT, SOFT_MVP)
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
    method = find_method(record.kind)  # each method's label is its registry entry's (pst_bench.methods)
    label = record.method if method is None else method.label_for(record)
    return f"{label} ({', '.join(record.structure)})" if record.structure else label


def method_of_label(label: str) -> str | None:
    """The method config that produces a paper label (PST[mag+ab] -> pst_mag_ab), or None (L0-regu is
    quoted from prior work, not implemented)."""
    for method in registered_methods().values():
        name = method.config_of_label(label)
        if name is not None:
            return name
    return None


def _registered_color(label: str) -> str | None:
    """The colour a registered method names for its label (``Method.color``), or None."""
    return next((m.color for m in registered_methods().values() if m.label == label and m.color), None)


def color_of(label: str, labels_in_plot: list[str]) -> str:
    """A fixed colour for the main methods and for a registered method that names one (the baselines beyond
    the paper), then a stable one per other label of the plot, from the colours no such method took."""
    if label in COLORS:
        return COLORS[label]
    fixed = _registered_color(label)
    if fixed is not None:
        return fixed
    taken = {_registered_color(other) for other in labels_in_plot}
    palette = [color for color in OTHER_COLORS if color not in taken]
    others = [other for other in labels_in_plot if other not in COLORS and _registered_color(other) is None]
    return palette[others.index(label) % len(palette)] if label in others else "0.3"
