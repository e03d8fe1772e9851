"""Figure 3: the dev metric against sparsity, one panel per model and task, one line per method."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..record import RecordError, RunRecord, as_record
from .figure_data import _figure_cell, _pyplot, _save, _style
from .labels import BEYOND_PAPER, MAIN_LABELS, color_of, label_of
from .runs import Run, constant_baselines, panel_key
from .selection import DEFAULT_GRID_RULE, select_cells


def metric_vs_sparsity(records: list, rule: str = DEFAULT_GRID_RULE) -> dict[tuple[str, str], dict[str, list[dict]]]:
    """Figure 3's series: {(model, task): {label: [point, ...] by sparsity}} for GLUE records.

    ``records`` are RunRecords or record dicts (invalid ones are left out). A point is
    {"sparsity": percent, "median", "min", "max": dev value over the cell's seeds, "seeds": [...],
    "label", "metric", "constant": every run a constant predictor}; the cell's runs are those of the
    selection policy (PST at r1 = r2 = 8 only; soft movement pruning only at a sparsity it reached),
    for Table 2's methods (Fine-tune, MaP, MvP, PST and the baselines beyond the paper).
    """
    usable = [r for r in (_as_run_record(r, i) for i, r in enumerate(records)) if r is not None]
    # Table 2's runs: the main methods and the baselines beyond the paper (the PST[...] variants are Table 5's)
    shown = (*MAIN_LABELS, *BEYOND_PAPER)
    usable = [r for r in usable if r.family == "glue" and r.dev_value is not None and label_of(r) in shown]
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


def _as_run_record(record, index: int) -> RunRecord | None:
    if isinstance(record, RunRecord):
        return record
    try:
        # in-memory records sort (for the duplicate rule) in the order given
        return as_record(record, name=f"{index:06d}_{record.get('run_id', 'record')}.json")
    except (RecordError, AttributeError):
        return None


def legend_label(label: str) -> str:
    """A curve's name in Figure 3's legend: a baseline the paper never ran says so."""
    return f"{label} (beyond the paper)" if label in BEYOND_PAPER else label


def figure3(runs: list[Run], out: Path) -> tuple[list[Path], list[str]]:
    name = "fig3_metric_vs_sparsity.png"
    series = metric_vs_sparsity([r.record for r in runs])
    baselines = constant_baselines((r.record for r in runs), by=panel_key)  # the dotted line of each panel
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
                    linestyle="-." if method in BEYOND_PAPER else "-",
                    color=color,
                    label=legend_label(points[0]["label"]),
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
