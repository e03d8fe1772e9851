"""The paper's Figures 2-5 from the saved runs: ``python -m pst_bench.report.figures`` (``make figures``).

Reads every results record under ``<runs>`` (sub-folders included, through :mod:`pst_bench.record`)
and the artifacts next to it (``<id>.masks.npz``, ``<id>.scores.npz``, see :mod:`pst_bench.export.artifacts`)
and writes PNGs under ``<out>``:

- ``fig2_masks_<model>_<task>_p<P>.png``: one row per method that has masks at sparsity P (default
  90%): left, the histograms of row (orange) and column (blue) sparsity of one matrix (bins of 0.1,
  y = percentage of rows / columns); right, the mask itself (kept = dark), or for a run with a mask
  structure other than the paper's (N:M, blocks, units, ...) its top-left 32 x 32 corner at one cell
  per weight, so that the pattern shows. The matrix is the first block's query projection unless
  ``--layer`` names another.
- ``fig3_metric_vs_sparsity.png``: one panel per (model, task) of the GLUE records of Table 2's
  methods: the task's main dev metric (best epoch in the final window, else the final epoch; x100)
  against sparsity, one line per method, the median over seeds with min-max error bars. Dense
  fine-tuning, when present, is a dashed horizontal line; the best constant predictor of a
  classification task (the records' ``constant_baseline``), when known, a dotted grey one.
- ``fig4_weight_vs_score_<model>_<task>_p<P>.png``: (a) the distribution of the kept weights of MaP,
  MvP and PST; then one panel per method: the weight value W (signed, as the paper plots it, so
  MaP's S = |W| is a V) against the importance score S, kept entries blue, pruned grey. From the
  score samples of the same matrix as Figure 2 (it must be one of the sampled matrices).
- ``fig5_mask_similarity_<model>_<task>_p<P>.png``: the Hamming similarity (fraction of entries on
  which two masks agree) of MaP-PST, MvP-PST and MaP-MvP for every sparsified matrix, x = matrix
  index in model order; below, one panel per matrix type (query, ..., FFN out) against layer depth.
  The three runs share model, task, sparsity and seed (the smallest seed they all have; otherwise
  each method's own first run).

Run selection is the tables' (:mod:`pst_bench.report.selection`): a cell is model, task, method
computation and sparsity (PST at r1 = r2 = 8 only); same-seed duplicates count once; a grid of
settings shows its best setting on dev (``--grid best-dev``) or all (``--grid pool``). Methods are
named and coloured by :mod:`pst_bench.report.labels`. Corrupt or partial records and unreadable artifacts are skipped
with a warning naming the file; a figure with no data is not written, and the reason is printed.
Output is deterministic: inputs are sorted, nothing is random, and the PNGs carry no software or
time metadata.
"""

from __future__ import annotations

import argparse
import io
import math
import re
import sys
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..export import load_masks
from ..files import atomic_write_bytes
from ..record import RecordError, RecordSkipped, RunRecord, as_record, load_records
from .labels import MAIN_LABELS, color_of, label_of
from .masks import COMPARED, PAIRS, hamming_similarity, similarity_by_layer  # noqa: F401 (re-exported)
from .selection import DEFAULT_GRID_RULE, GRID_RULES, at_paper_ranks, describe_rule, select_cells

DEFAULT_SPARSITY = 0.9
PAIR_COLORS = {("MaP", "PST"): "tab:blue", ("MvP", "PST"): "tab:orange", ("MaP", "MvP"): "tab:green"}
PATTERN_CORNER = 32  # a structured run's mask panel shows this corner of the matrix, one cell per weight
ROW_COLOR, COL_COLOR = "tab:orange", "tab:blue"  # the paper's Figure 2: rows orange, columns blue
KEPT_COLOR, PRUNED_COLOR = "tab:blue", "0.65"  # the paper's Figure 4: kept blue, pruned grey
QUERY_RE = re.compile(r"(^|\.)(query|q_proj|q)$")
SAVE_KW = {"format": "png", "dpi": 110, "metadata": {"Software": None}}


class FigureWarning(UserWarning):
    """An artifact that could not be used."""


def _warn(message: str) -> None:
    warnings.warn(message, FigureWarning, stacklevel=3)


# -- runs --------------------------------------------------------------------------
@dataclass
class Run:
    """A results record (read through pst_bench.record) and the artifacts saved beside it."""

    record: RunRecord
    _masks: dict | None = field(default=None, repr=False)
    _bad: set = field(default_factory=set, repr=False)  # artifacts that failed to load (warned once)

    @property
    def label(self) -> str:
        """The paper's label of what the run computes (MaP, MvP, PST, PST[ab], ...)."""
        return label_of(self.record)

    def artifact(self, key: str) -> Path | None:
        return self.record.artifact(key)


def load_runs(runs_dir: Path) -> list[Run]:
    """Every usable record under ``runs_dir`` (sub-folders included); the others warn (RecordSkipped)."""
    return [Run(record) for record in load_records(Path(runs_dir))]


def _check_npz(path: Path) -> None:
    """Fail early (and without numpy leaking an open file) on a missing or non-zip artifact."""
    if not path.is_file():
        raise FileNotFoundError(f"no such file {path}")
    if not zipfile.is_zipfile(path):
        raise ValueError("not an .npz (zip) file; truncated?")


def run_masks(run: Run) -> dict[str, np.ndarray] | None:
    """The run's final masks, or None (with a warning when the file is missing or corrupt)."""
    if run._masks is not None:
        return run._masks
    path = run.artifact("masks")
    if path is None or "masks" in run._bad:
        return None
    try:
        _check_npz(path)
        masks = load_masks(path)
    except Exception as exc:  # missing, truncated or foreign file: OSError / zipfile / unpack errors
        run._bad.add("masks")
        _warn(f"skipping masks {path}: {type(exc).__name__}: {exc}")
        return None
    if not masks:
        run._bad.add("masks")
        _warn(f"skipping masks {path}: no matrices in it")
        return None
    run._masks = masks
    return masks


def run_scores(run: Run, layer: str) -> dict[str, np.ndarray] | None:
    """{"weight", "score", "kept"} of one matrix from the run's score sample, or None."""
    path = run.artifact("scores")
    if path is None or "scores" in run._bad:
        return None
    try:
        _check_npz(path)
        with np.load(path) as data:
            keys = [f"{layer}.{part}" for part in ("weight", "score", "kept")]
            if not all(key in data.files for key in keys):
                return None
            out = {part: np.asarray(data[key]) for part, key in zip(("weight", "score", "kept"), keys)}
    except Exception as exc:
        run._bad.add("scores")
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
    if path is None or "scores" in run._bad:
        return []
    try:
        _check_npz(path)
        with np.load(path) as data:
            return [key[: -len(".weight")] for key in data.files if key.endswith(".weight")]
    except Exception as exc:
        run._bad.add("scores")
        _warn(f"skipping scores {path}: {type(exc).__name__}: {exc}")
        return []


def _same_sparsity(a: float, b: float) -> bool:
    return round(a * 100) == round(b * 100)


def _figure_cell(record: RunRecord) -> tuple | None:
    """A figure's cell: model, task, method computation and sparsity; PST at the paper's ranks only,
    so that another rank of Table 4's grid is never a candidate (as in Table 2)."""
    if not at_paper_ranks(record):
        return None
    return (record.model, record.task, label_of(record), round(record.sparsity * 100))


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


# -- pure computations ------------------------------------------------------------------
def sparsity_histograms(mask: np.ndarray, bins: int = 10) -> dict[str, np.ndarray]:
    """Histograms of the sparsity ratio of every row and every column of a boolean mask.

    Bin i holds ratios in [i/bins, (i+1)/bins) (the last bin also holds 1.0); values are the
    percentage of rows (columns). Computed with integers, so a ratio of exactly 0.3 is in bin 3.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2 or mask.size == 0:
        raise ValueError(f"expected a non-empty 2-D mask, got shape {mask.shape}")
    out = {"edges": np.linspace(0.0, 1.0, bins + 1)}
    for name, axis in (("rows", 1), ("columns", 0)):
        length = mask.shape[axis]
        pruned = length - mask.sum(axis=axis).astype(np.int64)
        index = np.minimum((bins * pruned) // length, bins - 1)
        counts = np.bincount(index, minlength=bins)
        out[name] = 100.0 * counts / counts.sum()
    return out


def metric_vs_sparsity(records: list, rule: str = DEFAULT_GRID_RULE) -> dict[tuple[str, str], dict[str, list[dict]]]:
    """Figure 3's series: {(model, task): {label: [point, ...] by sparsity}} for GLUE records.

    ``records`` are RunRecords or record dicts (invalid ones are left out). A point is
    {"sparsity": percent, "median", "min", "max": dev value over the cell's seeds, "seeds": [...],
    "label", "metric", "constant": every run a constant predictor}; the cell's runs are those of the
    selection policy (PST at r1 = r2 = 8 only),
    for Table 2's methods (Fine-tune, MaP, MvP, PST).
    """
    usable = [r for r in (_as_run_record(r, i) for i, r in enumerate(records)) if r is not None]
    # Table 2's runs: the main methods only (the PST[...] variants are Table 5's)
    usable = [r for r in usable if r.family == "glue" and r.dev_value is not None and label_of(r) in MAIN_LABELS]
    cells = select_cells(usable, _figure_cell, rule)
    out: dict[tuple[str, str], dict[str, list[dict]]] = {}
    for (model, task, label, percent), cell in sorted(cells.items()):
        if not cell.runs:  # a held-out cell whose selected setting has no held-out run yet
            continue
        values = np.array([run.dev_value for run in cell.runs])
        point = {
            "sparsity": percent,
            "median": float(np.median(values)),
            "min": float(values.min()),
            "max": float(values.max()),
            "seeds": sorted(run.seed for run in cell.runs),
            "label": label,
            "metric": cell.runs[0].metric or "metric",
            # every run predicts one class / one value: no result, drawn as a cross (RunRecord.constant_predictor)
            "constant": all(run.constant_predictor for run in cell.runs),
        }
        out.setdefault((model, task), {}).setdefault(label, []).append(point)
    return out


def constant_baselines(records: list) -> dict[tuple[str, str], float]:
    """{(model, task): the best dev value a constant predictor reaches}, from the GLUE records that store
    it (classification records since the baseline was added). It depends on the dev labels alone, so any
    record of the panel can give it; the most common value wins should dev sets of different sizes mix."""
    usable = [r for r in (_as_run_record(r, i) for i, r in enumerate(records)) if r is not None]
    found: dict[tuple[str, str], list[float]] = {}
    for record in usable:
        if record.family == "glue" and record.constant_baseline is not None:
            found.setdefault((record.model, record.task), []).append(record.constant_baseline)
    return {key: max(set(values), key=values.count) for key, values in sorted(found.items())}


def _as_run_record(record, index: int) -> RunRecord | None:
    if isinstance(record, RunRecord):
        return record
    try:
        # in-memory records sort (for the duplicate rule) in the order given
        return as_record(record, name=f"{index:06d}_{record.get('run_id', 'record')}.json")
    except (RecordError, AttributeError):
        return None


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


def _layer_type(name: str) -> tuple[int | None, str]:
    """(block index, name with the block index replaced by '*')."""
    match = re.search(r"\.(\d+)\.", name)
    if not match:
        return None, name
    return int(match.group(1)), name[: match.start()] + ".*." + name[match.end() :]


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


def figure2(runs: list[Run], out: Path, sparsity: float, layer: str | None) -> tuple[list[Path], list[str]]:
    written, skipped = [], []
    groups = _groups(runs, sparsity)
    if not groups:
        return [], [f"figure 2: no runs at {round(sparsity * 100)}% sparsity"]
    for (model, task), group in groups.items():
        usable = [r for r in group if run_masks(r) is not None and pick_layer(run_masks(r), layer)]
        chosen = pick_trio(usable, methods={r.label for r in usable})
        panels = [(run, pick_layer(run_masks(run), layer)) for _, run in sorted(chosen.items())]
        panels = [(run, matrix, run_masks(run)[matrix]) for run, matrix in panels]
        name = f"fig2_masks_{_slug(model)}_{_slug(task)}_{_tag(sparsity)}.png"
        if not panels:
            skipped.append(
                f"{name}: no run of {model}/{task} at {round(sparsity * 100)}% has masks"
                + (f" with a matrix matching {layer!r}" if layer else "")
            )
            continue
        plt = _pyplot()
        with _style():
            fig, axes = plt.subplots(
                len(panels),
                2,
                figsize=(8.0, 3.0 * len(panels)),
                squeeze=False,
                gridspec_kw={"width_ratios": [1.2, 1.0]},
            )
            for row, (run, _matrix, mask) in enumerate(panels):
                hist = sparsity_histograms(mask)
                centers = (hist["edges"][:-1] + hist["edges"][1:]) / 2
                ax = axes[row, 0]
                ax.bar(centers - 0.02, hist["columns"], width=0.04, color=COL_COLOR, label="column")
                ax.bar(centers + 0.02, hist["rows"], width=0.04, color=ROW_COLOR, label="row")
                ax.set_xlim(0, 1)
                ax.set_xticks(hist["edges"])
                ax.set_xlabel("sparsity ratio")
                ax.set_ylabel("percentage (%)")
                ax.set_title(f"{run.label}: row / column sparsity")
                ax.legend(loc="upper left", frameon=False)
                ax = axes[row, 1]
                title = f"{run.label} mask, {mask.shape[0]}x{mask.shape[1]}, {100 * (1 - mask.mean()):.1f}% pruned"
                if run.record.structure:  # a corner at full resolution, so N:M groups and blocks show
                    corner = mask[:PATTERN_CORNER, :PATTERN_CORNER]
                    ax.imshow(corner, cmap="Greys", vmin=0, vmax=1, interpolation="nearest", aspect="auto")
                    title += f"\n(top-left {corner.shape[0]}x{corner.shape[1]} corner: the pattern)"
                else:
                    # antialiased: a matrix larger than the panel shows its kept density, not aliasing
                    ax.imshow(mask, cmap="Greys", vmin=0, vmax=1, interpolation="antialiased", aspect="auto")
                ax.set_title(title, fontsize=8)
                ax.set_xlabel("column (input)")
                ax.set_ylabel("row (output)")
            fig.suptitle(
                f"Figure 2: {model} / {task}, {round(sparsity * 100)}% sparsity, {panels[0][1]} (kept = dark)",
                fontsize=9,
            )
            fig.tight_layout()
            written.append(_save(fig, out / name))
    return written, skipped


def figure3(runs: list[Run], out: Path) -> tuple[list[Path], list[str]]:
    name = "fig3_metric_vs_sparsity.png"
    series = metric_vs_sparsity([r.record for r in runs])
    baselines = constant_baselines([r.record for r in runs])
    if not series:
        return [], [f"{name}: no finished GLUE records with a main metric"]
    plt = _pyplot()
    keys = list(series)
    cols = min(3, len(keys))
    rows = math.ceil(len(keys) / cols)
    with _style():
        fig, axes = plt.subplots(rows, cols, figsize=(max(6.0, 4.2 * cols), 3.4 * rows), squeeze=False)
        for ax in axes.flat[len(keys) :]:
            ax.set_visible(False)
        for ax, key in zip(axes.flat, keys):
            methods = list(series[key])
            metric = "metric"
            for method in methods:
                points = series[key][method]
                metric = points[0]["metric"]
                color = color_of(method, methods)
                if method == "Fine-tune":
                    ax.axhline(
                        100 * points[0]["median"],
                        color=color,
                        linestyle="--",
                        linewidth=1,
                        label=points[0]["label"] + " (dense)",
                    )
                    continue
                x = np.array([p["sparsity"] for p in points], dtype=float)
                med = np.array([p["median"] for p in points]) * 100
                err = (
                    np.array([[p["median"] - p["min"] for p in points], [p["max"] - p["median"] for p in points]]) * 100
                )
                ax.errorbar(
                    x,
                    med,
                    yerr=err,
                    marker="o",
                    markersize=4,
                    capsize=3,
                    linewidth=1.2,
                    color=color,
                    label=points[0]["label"],
                )
                constant = [(p["sparsity"], 100 * p["median"]) for p in points if p["constant"]]
                if constant:
                    first = "constant predictor" not in ax.get_legend_handles_labels()[1]
                    label = "constant predictor" if first else None
                    ax.scatter(*zip(*constant), marker="x", s=60, color="black", zorder=3, label=label)
            if key in baselines:
                ax.axhline(
                    100 * baselines[key], color="0.5", linestyle=":", linewidth=1, label="best constant predictor"
                )
            ax.set_title(f"{key[0]} / {key[1]}")
            ax.set_xlabel("sparsity (%)")
            ax.set_ylabel(f"dev {metric} (x100)")
            ax.legend(frameon=False, fontsize=7, loc="best")
        fig.suptitle("Figure 3: dev metric vs sparsity (median over seeds, min-max bars)", fontsize=9)
        fig.tight_layout()
        return [_save(fig, out / name)], []


def figure4(runs: list[Run], out: Path, sparsity: float, layer: str | None) -> tuple[list[Path], list[str]]:
    written, skipped = [], []
    groups = _groups(runs, sparsity)
    if not groups:
        return [], [f"figure 4: no runs at {round(sparsity * 100)}% sparsity"]
    for (model, task), group in groups.items():
        name = f"fig4_weight_vs_score_{_slug(model)}_{_slug(task)}_{_tag(sparsity)}.png"
        trio = pick_trio([r for r in group if r.label in COMPARED and score_layers(r)])
        names = next((n for n in (score_layers(r) for _, r in sorted(trio.items())) if n), [])
        matrix = pick_layer(names, layer)
        panels = []
        for method in COMPARED:
            if method in trio and matrix is not None:
                sample = run_scores(trio[method], matrix)
                if sample is not None and len(sample["weight"]):
                    panels.append((trio[method], sample))
        if not panels:
            skipped.append(
                f"{name}: no MaP/MvP/PST run of {model}/{task} at {round(sparsity * 100)}% has a "
                "score sample" + (f" of a matrix matching {layer!r}" if layer else "")
            )
            continue
        plt = _pyplot()
        with _style():
            fig, axes = plt.subplots(1, len(panels) + 1, figsize=(3.3 * (len(panels) + 1), 3.2), squeeze=False)
            ax = axes[0, 0]
            kept_all = np.concatenate([s["weight"][s["kept"]] for _, s in panels])
            lim = float(np.max(np.abs(kept_all))) if kept_all.size else 1.0
            bins = np.linspace(-lim, lim, 41) if lim > 0 else 40
            for run, sample in panels:
                ax.hist(
                    sample["weight"][sample["kept"]],
                    bins=bins,
                    histtype="step",
                    linewidth=1.2,
                    color=color_of(run.label, list(COMPARED)),
                    label=run.label,
                )
            ax.set_title("(a) kept weights")
            ax.set_xlabel("weight value W")
            ax.set_ylabel("count (sampled entries)")
            ax.legend(frameon=False, fontsize=7)
            for i, (run, sample) in enumerate(panels, start=1):
                ax = axes[0, i]
                kept = sample["kept"]
                ax.scatter(
                    sample["weight"][~kept],
                    sample["score"][~kept],
                    s=3,
                    color=PRUNED_COLOR,
                    label="pruned",
                    linewidths=0,
                )
                ax.scatter(
                    sample["weight"][kept], sample["score"][kept], s=3, color=KEPT_COLOR, label="kept", linewidths=0
                )
                ax.set_title(f"({chr(ord('a') + i)}) {run.label} (seed {run.record.seed})")
                ax.set_xlabel("weight value W")
                ax.set_ylabel("importance score S")
                ax.legend(frameon=False, fontsize=7, markerscale=3, loc="best")
            fig.suptitle(f"Figure 4: {model} / {task}, {round(sparsity * 100)}% sparsity, {matrix}", fontsize=9)
            fig.tight_layout()
            written.append(_save(fig, out / name))
    return written, skipped


def figure5(runs: list[Run], out: Path, sparsity: float) -> tuple[list[Path], list[str]]:
    written, skipped = [], []
    groups = _groups(runs, sparsity)
    if not groups:
        return [], [f"figure 5: no runs at {round(sparsity * 100)}% sparsity"]
    from matplotlib.ticker import MaxNLocator

    for (model, task), group in groups.items():
        name = f"fig5_mask_similarity_{_slug(model)}_{_slug(task)}_{_tag(sparsity)}.png"
        with_masks = [r for r in group if r.label in COMPARED and run_masks(r) is not None]
        trio = pick_trio(with_masks)
        curves = []
        for a, b in PAIRS:
            if a in trio and b in trio:
                sims = similarity_by_layer(run_masks(trio[a]), run_masks(trio[b]))
                if sims:
                    curves.append((a, b, sims))
        if not curves:
            have = ", ".join(m for m in COMPARED if m in trio) or "none"
            skipped.append(
                f"{name}: needs masks of two of MaP/MvP/PST for {model}/{task} at "
                f"{round(sparsity * 100)}% (have: {have})"
            )
            continue
        seeds = sorted({r.record.seed for r in trio.values()})
        order = [n for n, _ in curves[0][2]]
        types: dict[str, list[tuple[int, str]]] = {}
        for n in order:
            depth, kind = _layer_type(n)
            if depth is not None:
                types.setdefault(kind, []).append((depth, n))
        per_type = {k: v for k, v in types.items() if len(v) > 1}
        plt = _pyplot()
        with _style():
            ncols = max(1, min(3, len(per_type)))
            nrows = 1 + math.ceil(len(per_type) / ncols)
            fig = plt.figure(figsize=(4.0 * ncols + 1.0, 3.0 * nrows))
            grid = fig.add_gridspec(nrows, ncols)
            ax = fig.add_subplot(grid[0, :])
            for a, b, sims in curves:
                ax.plot(
                    range(len(sims)),
                    [s for _, s in sims],
                    marker="o",
                    markersize=2.5,
                    linewidth=1,
                    color=PAIR_COLORS[a, b],
                    label=f"{a}-{b}",
                )
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("matrix index (model order)")
            ax.set_ylabel("Hamming similarity")
            ax.set_title(f"(a) all {len(order)} sparsified matrices")
            ax.legend(frameon=False, fontsize=7)
            for i, (kind, members) in enumerate(sorted(per_type.items(), key=lambda kv: order.index(kv[1][0][1]))):
                sub = fig.add_subplot(grid[1 + i // ncols, i % ncols])
                for a, b, sims in curves:
                    lookup = dict(sims)
                    pts = [(d, lookup[n]) for d, n in sorted(members) if n in lookup]
                    sub.plot(
                        [d for d, _ in pts],
                        [s for _, s in pts],
                        marker="o",
                        markersize=3,
                        linewidth=1,
                        color=PAIR_COLORS[a, b],
                        label=f"{a}-{b}",
                    )
                sub.set_title(f"({chr(ord('b') + i)}) {kind.split('.*.', 1)[-1]}", fontsize=8)
                sub.xaxis.set_major_locator(MaxNLocator(integer=True))
                sub.set_xlabel("layer")
                sub.set_ylabel("similarity")
            fig.suptitle(
                f"Figure 5: mask similarity, {model} / {task}, {round(sparsity * 100)}% sparsity, "
                f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}",
                fontsize=9,
            )
            fig.tight_layout()
            written.append(_save(fig, out / name))
    return written, skipped


def mask_dynamics(runs: list[Run], sparsity: float) -> dict[tuple[str, str], list[Run]]:
    """Runs at ``sparsity`` whose records carry diagnostics (``train.diagnostics_every_steps``), by (model, task)."""
    found: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        if run.record.data.get("diagnostics") and _same_sparsity(run.record.sparsity, sparsity):
            found.setdefault((run.record.model, run.record.task), []).append(run)
    return found


def _diagnostic_series(run: Run, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(share of the run's steps, value) of one averaged diagnostic over training."""
    entries = [e for e in run.record.data["diagnostics"] if key in e["mean"]]
    steps = [e["step"] for e in entries]
    total = int((run.record.data.get("steps") or {}).get("total") or 0) or max(steps, default=1) or 1
    return np.array([e["step"] / total for e in entries]), np.array([e["mean"][key] for e in entries])


def figure_mask_dynamics(runs: list[Run], out: Path, sparsity: float) -> tuple[list[Path], list[str]]:
    """Not in the paper: how fast each method's masks settle (flip rate) and what PST's score is made of
    (the terms' shares of S) over training; it explains Table 5's ablation."""
    name = f"fig_mask_dynamics_{_tag(sparsity)}.png"
    groups = mask_dynamics(runs, sparsity)
    if not groups:
        return [], [f"{name}: no records at {_tag(sparsity)} with diagnostics (train.diagnostics_every_steps)"]
    plt = _pyplot()
    with _style():
        fig, axes = plt.subplots(len(groups), 2, figsize=(9.0, 3.2 * len(groups)), squeeze=False)
        for (left, right), (key, group) in zip(axes, sorted(groups.items())):
            labels = sorted({run.label for run in group})
            for run in pick_trio(group, labels).values():
                x, y = _diagnostic_series(run, "flip_rate")
                left.plot(x, 100 * y, marker="o", markersize=3, color=color_of(run.label, labels), label=run.label)
            left.set_title(f"{key[0]} / {key[1]}: mask flips between measurements")
            left.set_xlabel("training progress (share of steps)")
            left.set_ylabel("flip rate (% of entries)")
            left.legend(frameon=False, fontsize=7)
            # the full score's shares (PST), else a variant's (PST[ab+rc], ...)
            pst = sorted((run for run in group if run.label.startswith("PST")), key=lambda r: r.label != "PST")
            for run in pst[:1]:
                for term, color in zip(("mag", "ab", "rc"), ("tab:blue", "tab:orange", "tab:green")):
                    x, y = _diagnostic_series(run, f"share_{term}")
                    if len(x):
                        right.plot(x, y, color=color, label=term)
                right.set_title(f"{run.label}: the terms' shares of the score norm")
            if not pst:
                right.set_visible(False)
            right.set_xlabel("training progress (share of steps)")
            right.set_ylabel("share of ‖S‖ terms")
            right.legend(frameon=False, fontsize=7)
        fig.suptitle(f"Mask dynamics at {_tag(sparsity)} (one seed per method)", fontsize=9)
        fig.tight_layout()
        return [_save(fig, out / name)], []


def make_figures(
    runs_dir: Path,
    out_dir: Path,
    sparsity: float = DEFAULT_SPARSITY,
    layer: str | None = None,
    rule: str = DEFAULT_GRID_RULE,
) -> tuple[list[Path], list[str]]:
    """Write every figure that has data; returns (written paths, 'figure: why skipped' lines)."""
    runs = select_runs(load_runs(Path(runs_dir)), rule)
    out_dir = Path(out_dir)
    written, skipped = [], []
    if not runs:
        return [], [f"all figures: no usable records under {runs_dir}"]
    for result in (
        figure2(runs, out_dir, sparsity, layer),
        figure3(runs, out_dir),
        figure4(runs, out_dir, sparsity, layer),
        figure5(runs, out_dir, sparsity),
        figure_mask_dynamics(runs, out_dir, sparsity),
    ):
        written += result[0]
        skipped += result[1]
    return written, skipped


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pst_bench.report.figures", description="Draw the paper's Figures 2-5 from saved runs."
    )
    parser.add_argument("--runs", default="results/runs", help="folder of run records (default: %(default)s)")
    parser.add_argument("--out", default="results/figures", help="output folder (default: %(default)s)")
    parser.add_argument(
        "--sparsity",
        type=float,
        default=DEFAULT_SPARSITY,
        help="sparsity of the runs in Figures 2, 4, 5 (default: %(default)s)",
    )
    parser.add_argument(
        "--layer", default=None, help="matrix for Figures 2 and 4 (exact name or substring; default: first query)"
    )
    parser.add_argument(
        "--grid",
        choices=GRID_RULES,
        default=DEFAULT_GRID_RULE,
        help="a cell holding several settings: the best on dev (the paper's rule) or all pooled (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    if not 0.0 <= args.sparsity < 1.0:
        parser.error(f"--sparsity {args.sparsity} outside [0, 1)")
    with warnings.catch_warnings():
        warnings.simplefilter("always", FigureWarning)
        warnings.simplefilter("always", RecordSkipped)
        warnings.showwarning = lambda message, *rest, **kw: print(f"warning: {message}", file=sys.stderr)
        written, skipped = make_figures(Path(args.runs), Path(args.out), args.sparsity, args.layer, args.grid)
    print(describe_rule(args.grid))
    for path in written:
        print(f"wrote {path}")
    for line in skipped:
        print(f"skipped {line}")
    if not written:
        print("no figures written", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
