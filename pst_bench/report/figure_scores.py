"""The score figures: Figure 4 (weight against importance score, kept and pruned) and the mask dynamics
over training (not in the paper: flip rate and the score terms' shares)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .figure_data import (
    _groups,
    _pyplot,
    _same_sparsity,
    _save,
    _slug,
    _style,
    _tag,
    pick_layer,
    pick_trio,
    run_scores,
    score_layers,
)
from .labels import color_of
from .masks import COMPARED
from .runs import Run

KEPT_COLOR, PRUNED_COLOR = "tab:blue", "0.65"  # the paper's Figure 4: kept blue, pruned grey


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
