"""The mask figures: Figure 2 (row and column sparsity of one matrix, and the mask) and Figure 5 (the
Hamming similarity of two methods' masks, matrix by matrix)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from .figure_data import _groups, _pyplot, _save, _slug, _style, _tag, pick_layer, pick_trio, run_masks
from .masks import COMPARED, PAIRS, similarity_by_layer
from .runs import Run

PAIR_COLORS = {("MaP", "PST"): "tab:blue", ("MvP", "PST"): "tab:orange", ("MaP", "MvP"): "tab:green"}
PATTERN_CORNER = 32  # a structured run's mask panel shows this corner of the matrix, one cell per weight
ROW_COLOR, COL_COLOR = "tab:orange", "tab:blue"  # the paper's Figure 2: rows orange, columns blue


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


def _layer_type(name: str) -> tuple[int | None, str]:
    """(block index, name with the block index replaced by '*')."""
    match = re.search(r"\.(\d+)\.", name)
    if not match:
        return None, name
    return int(match.group(1)), name[: match.start()] + ".*." + name[match.end() :]


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
