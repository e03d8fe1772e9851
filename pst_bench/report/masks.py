"""How far apart two methods' final masks are: Figure 5's similarity and the per-run mask distances.

A run's masks (``<id>.masks.npz``, ``pst_bench.export.artifacts``) are compared with those of
another method's run on the same model, task, sparsity and seed. Two numbers, pooled over
every sparsified matrix the two runs share:

- **Hamming distance**: the fraction of all entries on which the masks disagree. At 90%
  sparsity two unrelated masks disagree on about 2 · 0.1 · 0.9 = 18% of the entries.
- **Kept overlap**: the fraction of one run's kept weights that the other keeps too (both
  keep the same count), 1 for identical masks and about 1 - sparsity for unrelated ones.

The runs compared are the ones the tables show (the selection policy, ``report.selection``):
MvP - MaP says whether MvP's scores moved away from their |W| start (movement pruning, not
magnitude pruning under another name); PST - MaP and PST - MvP are the paper's Figure 5.

``make tables`` writes the pairs as ``mask_distance.md`` and ``.csv`` (:func:`mask_distance_markdown`,
:func:`mask_distance_frame`); the claims check claim 5 on them. The mask files stay out of git, so every
distance computed from them is kept in the records folder's ``mask_distances.csv`` (``report.mask_store``),
which a checkout without the files reads instead.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..export import load_masks
from ..record import RecordSkipped, RunRecord
from .cells import COMMAND, fmt_number, fmt_sparsity
from .labels import label_of
from .mask_store import MaskDistanceStore, StoredDistance, file_sha256
from .selection import DEFAULT_GRID_RULE, at_paper_ranks, select_cells

COMPARED = ("MaP", "MvP", "PST")  # the paper's three sparse methods (Figures 4 and 5)
PAIRS = (("MaP", "PST"), ("MvP", "PST"), ("MaP", "MvP"))


def hamming_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of entries on which two boolean masks agree (1 - normalised Hamming distance)."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"masks differ in shape: {a.shape} vs {b.shape}")
    return float(np.count_nonzero(a == b)) / a.size


def similarity_by_layer(first: dict[str, np.ndarray], second: dict[str, np.ndarray]) -> list[tuple[str, float]]:
    """(matrix, similarity) for every matrix both mask sets have with the same shape, in ``first``'s order."""
    return [
        (name, hamming_similarity(mask, second[name]))
        for name, mask in first.items()
        if name in second and second[name].shape == mask.shape
    ]


@dataclass(frozen=True)
class MaskDistance:
    """Two mask sets compared over the matrices they share."""

    distance: float  # fraction of entries that differ
    kept_overlap: float  # fraction of the first set's kept entries the second keeps too
    matrices: int


def mask_distance(first: dict[str, np.ndarray], second: dict[str, np.ndarray]) -> MaskDistance | None:
    """Hamming distance and kept overlap pooled over the shared matrices; None when they share none."""
    differ = total = kept = both = 0
    matrices = 0
    for name, a in first.items():
        b = second.get(name)
        if b is None or b.shape != a.shape:
            continue
        a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
        differ += int(np.count_nonzero(a != b))
        total += a.size
        kept += int(np.count_nonzero(a))
        both += int(np.count_nonzero(a & b))
        matrices += 1
    if not matrices:
        return None
    return MaskDistance(differ / total, both / kept if kept else 1.0, matrices)


@dataclass(frozen=True)
class MaskPair:
    """One compared pair: two methods' runs on one model, task, sparsity and seed."""

    model: str
    task: str
    sparsity: float  # percent
    seed: int
    first: str  # method label
    second: str
    first_run: str  # record names
    second_run: str
    result: MaskDistance
    shown: bool = True  # both runs are the ones the tables show (else a grid setting they left out)
    setting: str = ""  # the grid setting of a run the tables left out


class _MaskFiles:
    """The mask files of one ``mask_pairs`` call: where each record's file is, its loaded masks and its
    SHA-256, each looked up once (a record takes part in several pairs)."""

    def __init__(self, mask_dirs: Iterable[Path] = ()):
        self.mask_dirs = tuple(Path(folder) for folder in mask_dirs)
        self._masks: dict[str, dict[str, np.ndarray] | None] = {}
        self._shas: dict[str, str | None] = {}

    def path(self, record: RunRecord) -> Path | None:
        """The record's mask file: beside it, else at the same place under a ``mask_dirs`` folder (the
        runs folder of the clone that made the runs, whose masks never came into this checkout)."""
        path = record.artifact("masks")
        if path is None or path.is_file():
            return path
        for folder in self.mask_dirs:
            candidate = folder / Path(record.name).parent / path.name
            if candidate.is_file():
                return candidate
        return path

    def masks(self, record: RunRecord) -> dict[str, np.ndarray] | None:
        if record.name not in self._masks:
            path = self.path(record)
            masks = None
            if path is not None:
                try:
                    masks = load_masks(path) or None
                except Exception as exc:  # missing, truncated or foreign file
                    message = f"{path}: masks unreadable ({type(exc).__name__}: {exc})"
                    warnings.warn(message, RecordSkipped, stacklevel=2)
            self._masks[record.name] = masks
        return self._masks[record.name]

    def sha256(self, record: RunRecord) -> str | None:
        """The SHA-256 of a record's mask file, None when it names none or the file is not in this checkout."""
        if record.name not in self._shas:
            path = self.path(record)
            self._shas[record.name] = file_sha256(path) if path is not None and path.is_file() else None
        return self._shas[record.name]


def _distance(a: RunRecord, b: RunRecord, files: _MaskFiles, store: MaskDistanceStore | None) -> MaskDistance | None:
    """Two runs' mask distance: from their files (a stored pair whose hashes match them is not measured
    again), else from the store when a file is not in this checkout, else None."""
    shas = (files.sha256(a), files.sha256(b)) if store is not None else (None, None)
    kept = store.get(a.name, b.name) if store is not None else None
    matches = kept is not None and (kept.first_sha256, kept.second_sha256) == shas
    if kept is not None and (matches or None in shas):
        return MaskDistance(kept.distance, kept.kept_overlap, kept.matrices)
    masks_a, masks_b = files.masks(a), files.masks(b)
    result = None if masks_a is None or masks_b is None else mask_distance(masks_a, masks_b)
    if result is not None and store is not None and None not in shas:
        store.put(a.name, b.name, StoredDistance(*shas, result.distance, result.kept_overlap, result.matrices))
    return result


def _main_label(record: RunRecord) -> str | None:
    label = label_of(record)  # the full score is PST already (pst_bench.methods.pst)
    return label if label in COMPARED and at_paper_ranks(record) else None


def mask_pairs(
    records: Iterable[RunRecord],
    rule: str = DEFAULT_GRID_RULE,
    selection_seeds: tuple[int, ...] | None = None,
    store: MaskDistanceStore | None = None,
    mask_dirs: Iterable[Path] = (),
) -> list[MaskPair]:
    """Every same-seed pair of MaP, MvP and PST runs that the tables show, with its mask distance; and the
    runs of every other grid setting of a cell against the other method's shown run (``shown=False``), so
    that the distance of each setting tried (e.g. each MvP score learning rate) is on record. With a
    ``store``, pairs whose files are here are added to it and pairs whose files are not are read from it
    (the caller saves it). ``mask_dirs``: runs folders to look for mask files in when they are not beside
    their records (at the same relative place)."""
    usable = [r for r in records if _main_label(r) is not None and r.sparsity > 0]
    cells = select_cells(usable, lambda r: (r.model, r.task, r.sparsity_pct, _main_label(r)), rule, selection_seeds)
    shown: dict[tuple, dict[str, dict[int, RunRecord]]] = {}
    others: dict[tuple, dict[str, list[tuple[str, RunRecord]]]] = {}
    for (model, task, pct, label), cell in cells.items():
        shown.setdefault((model, task, pct), {})[label] = {run.seed: run for run in cell.runs}
        chosen = {run.name for run in cell.runs}
        left_out = [(c.setting, run) for c in cell.candidates for run in c.runs if run.name not in chosen]
        others.setdefault((model, task, pct), {})[label] = left_out
    files = _MaskFiles(mask_dirs)
    pairs = []

    def compare(key, first, second, a, b, is_shown, setting=""):
        result = _distance(a, b, files, store)
        if result is not None:
            pairs.append(MaskPair(*key, a.seed, first, second, a.name, b.name, result, is_shown, setting))

    for key, by_label in sorted(shown.items()):
        for first, second in PAIRS:
            if first not in by_label or second not in by_label:
                continue
            for seed in sorted(set(by_label[first]) & set(by_label[second])):
                compare(key, first, second, by_label[first][seed], by_label[second][seed], True)
            for setting, run in others[key][first]:
                if run.seed in by_label[second]:
                    compare(key, first, second, run, by_label[second][run.seed], False, setting)
            for setting, run in others[key][second]:
                if run.seed in by_label[first]:
                    compare(key, first, second, by_label[first][run.seed], run, False, setting)
    return pairs


# --------------------------------------------------------------------------- mask_distance.md / .csv

MASK_COLUMNS = [
    "model",
    "task",
    "sparsity",
    "seed",
    "pair",
    "hamming_distance",
    "kept_overlap",
    "matrices",
    "first_run",
    "second_run",
    "shown",
    "setting",
]


def mask_distance_frame(pairs: list[MaskPair]) -> pd.DataFrame:
    """mask_distance.csv: one line per compared same-seed pair of runs."""
    lines = [
        {
            "model": p.model,
            "task": p.task,
            "sparsity": fmt_sparsity(p.sparsity),
            "seed": p.seed,
            "pair": f"{p.first}-{p.second}",
            "hamming_distance": f"{p.result.distance:.6f}",
            "kept_overlap": f"{p.result.kept_overlap:.6f}",
            "matrices": p.result.matrices,
            "first_run": p.first_run,
            "second_run": p.second_run,
            "shown": p.shown,
            "setting": p.setting,
        }
        for p in pairs
    ]
    return pd.DataFrame(lines, columns=MASK_COLUMNS)


def mask_distance_markdown(pairs: list[MaskPair], runs_dir: str) -> str:
    """mask_distance.md: the per-run distances between methods' final masks, by model, task and sparsity."""
    out = [
        "# Mask distances between methods, per run",
        "",
        f"Built by `{COMMAND}` from the masks (`<id>.masks.npz`) of the runs the tables show in `{runs_dir}`: "
        "each same-seed pair of MaP, MvP and PST runs on one model, task and sparsity. Hamming distance: the "
        "share of all sparsified entries on which the two final masks differ (two unrelated masks at 90% "
        "sparsity differ on about 18%); kept overlap: the share of one run's kept weights the other keeps too "
        "(1 for identical masks, about 1 − sparsity for unrelated ones). MvP–MaP near 0 means MvP's scores "
        "never moved from |W|: magnitude pruning under another name. The mask files stay out of git: a pair "
        f"whose files are not in this checkout comes from `{runs_dir}/mask_distances.csv`, where `make tables` "
        "keeps every distance it computed with both files' SHA-256; the numbers are the same either way.",
        "",
    ]
    if not pairs:
        return "\n".join([*out, "No pair of runs with masks yet.", ""])
    out += [
        "| Model | Task | Sparsity | Pair | Seed | Hamming distance | Kept overlap | Runs |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def order(p: MaskPair) -> tuple:
        return (p.model, p.task, p.sparsity, f"{p.first}-{p.second}", not p.shown, p.setting, p.seed)

    for p in sorted(pairs, key=order):
        runs = "shown in the tables" if p.shown else f"grid setting left out: {p.setting}"
        out.append(
            f"| {p.model} | {p.task} | {fmt_sparsity(p.sparsity)} | {p.first}–{p.second} | {p.seed} | "
            f"{fmt_number(100 * p.result.distance)}% | {fmt_number(100 * p.result.kept_overlap)}% | {runs} |"
        )
    return "\n".join([*out, "", "Per pair, with the record files: `mask_distance.csv`.", ""])
