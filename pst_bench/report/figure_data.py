"""What every figure draws from: the runs the selection policy shows, their saved artifacts (masks and
score samples, read once and cached on the run) and the drawing helpers they share.

Artifacts that cannot be read warn once (``FigureWarning``) and are treated as absent.
"""

from __future__ import annotations

import io
import math
import re
import warnings
import zipfile
from pathlib import Path

import numpy as np

from ..export import load_masks
from ..files import atomic_write_bytes
from ..record import RunRecord
from .labels import label_of
from .masks import COMPARED
from .runs import Run
from .selection import DEFAULT_GRID_RULE, at_paper_ranks, cell_sparsity_pct, select_cells

QUERY_RE = re.compile(r"(^|\.)(query|q_proj|q)$")
SAVE_KW = {"format": "png", "dpi": 110, "metadata": {"Software": None}}


class FigureWarning(UserWarning):
    """An artifact that could not be used."""


def _warn(message: str) -> None:
    warnings.warn(message, FigureWarning, stacklevel=3)


# -- runs and their artifacts ----------------------------------------------------------
def _check_npz(path: Path) -> None:
    """Fail early (and without numpy leaking an open file) on a missing or non-zip artifact."""
    if not path.is_file():
        raise FileNotFoundError(f"no such file {path}")
    if not zipfile.is_zipfile(path):
        raise ValueError("not an .npz (zip) file; truncated?")


def run_masks(run: Run) -> dict[str, np.ndarray] | None:
    """The run's final masks, or None (with a warning when the file is missing or corrupt)."""
    if "masks" in run.loaded:
        return run.loaded["masks"]
    path = run.artifact("masks")
    if path is None or "masks" in run.unreadable:
        return None
    try:
        _check_npz(path)
        masks = load_masks(path)
    except Exception as exc:  # missing, truncated or foreign file: OSError / zipfile / unpack errors
        run.unreadable.add("masks")
        _warn(f"skipping masks {path}: {type(exc).__name__}: {exc}")
        return None
    if not masks:
        run.unreadable.add("masks")
        _warn(f"skipping masks {path}: no matrices in it")
        return None
    run.loaded["masks"] = masks
    return masks


def run_scores(run: Run, layer: str) -> dict[str, np.ndarray] | None:
    """{"weight", "score", "kept"} of one matrix from the run's score sample, or None."""
    path = run.artifact("scores")
    if path is None or "scores" in run.unreadable:
        return None
    try:
        _check_npz(path)
        with np.load(path) as data:
            keys = [f"{layer}.{part}" for part in ("weight", "score", "kept")]
            if not all(key in data.files for key in keys):
                return None
            out = {part: np.asarray(data[key]) for part, key in zip(("weight", "score", "kept"), keys)}
    except Exception as exc:
        run.unreadable.add("scores")
        _warn(f"skipping scores {path}: {type(exc).__name__}: {exc}")
        return None
    sizes = {len(v) for v in out.values()}
    if len(sizes) != 1:
        _warn(f"skipping scores {path}: {layer} arrays differ in length")
        return None
    out["kept"] = out["kept"].astype(bool)
    return out


def score_layers(run: Run) -> list[str]:
    """The matrices in the run's score sample, in model order."""
    path = run.artifact("scores")
    if path is None or "scores" in run.unreadable:
        return []
    try:
        _check_npz(path)
        with np.load(path) as data:
            return [key[: -len(".weight")] for key in data.files if key.endswith(".weight")]
    except Exception as exc:
        run.unreadable.add("scores")
        _warn(f"skipping scores {path}: {type(exc).__name__}: {exc}")
        return []


def _same_sparsity(a: float, b: float) -> bool:
    return round(a * 100) == round(b * 100)


def _figure_cell(record: RunRecord) -> tuple | None:
    """A figure's cell: model, task, method computation and sparsity; PST at the paper's ranks only,
    so that another rank of Table 4's grid is never a candidate (as in Table 2), and a run whose sparsity a
    penalty sets only at the nominal sparsity it reached (``selection.cell_sparsity_pct``)."""
    sparsity = cell_sparsity_pct(record)
    if not at_paper_ranks(record) or sparsity is None:
        return None
    return (record.model, record.task, label_of(record), round(sparsity))


def select_runs(runs: list[Run], rule: str = DEFAULT_GRID_RULE) -> list[Run]:
    """The runs the selection policy (pst_bench.report.selection) shows, one per seed and cell."""
    by_name = {run.record.name: run for run in runs}
    cells = select_cells([run.record for run in runs], _figure_cell, rule)
    chosen = [by_name[record.name] for cell in cells.values() for record in cell.runs]
    return sorted(
        chosen,
        key=lambda r: (r.record.model, r.record.task, r.label, r.record.sparsity, r.record.seed, r.record.run_id),
    )


def _preference(run: Run) -> tuple:
    value = run.record.ranking_value
    return (run.record.seed, -(value if value is not None else -math.inf), run.record.run_id)


def pick_trio(runs: list[Run], methods=COMPARED) -> dict[str, Run]:
    """One run per method label: the smallest seed that every present method has, else each one's first."""
    by_method: dict[str, list[Run]] = {}
    for run in sorted(runs, key=_preference):
        if run.label in methods:
            by_method.setdefault(run.label, []).append(run)
    if not by_method:
        return {}
    common = set.intersection(*({r.record.seed for r in rs} for rs in by_method.values()))
    if common:
        seed = min(common)
        return {m: next(r for r in rs if r.record.seed == seed) for m, rs in by_method.items()}
    return {m: rs[0] for m, rs in by_method.items()}


def _groups(runs: list[Run], sparsity: float) -> dict[tuple[str, str], list[Run]]:
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        if _same_sparsity(run.record.sparsity, sparsity):
            groups.setdefault((run.record.model, run.record.task), []).append(run)
    return dict(sorted(groups.items()))


def pick_layer(names, layer: str | None = None) -> str | None:
    """The matrix to show: ``layer`` (exact name, else the first name containing it), else the
    first query projection, else the first matrix."""
    names = list(names)
    if not names:
        return None
    if layer:
        if layer in names:
            return layer
        return next((n for n in names if layer in n), None)
    return next((n for n in names if QUERY_RE.search(n)), names[0])


# -- drawing ---------------------------------------------------------------------------
def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _style():
    import matplotlib

    return matplotlib.rc_context(
        {
            "font.size": 8,
            "axes.titlesize": 9,
            "figure.dpi": 110,
            "savefig.dpi": 110,
            "path.simplify": True,
            "axes.grid": False,
        }
    )


def _save(fig, path: Path) -> Path:
    plt = _pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, **SAVE_KW)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _tag(sparsity: float) -> str:
    return f"p{round(sparsity * 100)}"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text)
