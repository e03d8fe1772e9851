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
  classification task (the records' ``constant_baseline``), when known, a dotted grey one. The
  baselines the paper never ran (Wanda, one-shot Wanda, SparseGPT, soft movement pruning) are
  dash-dotted and named "(beyond the paper)" in the legend.
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
settings shows its best setting on dev (``--grid best-dev``) or all (``--grid pool``); a run whose
sparsity a penalty sets and that missed its nominal sparsity is in no cell (printed). Methods are
named and coloured by :mod:`pst_bench.report.labels`. Corrupt or partial records and unreadable artifacts are skipped
with a warning naming the file; a figure with no data is not written, and the reason is printed.
Output is deterministic: inputs are sorted, nothing is random, and the PNGs carry no software or
time metadata.

This module is the command; the runs are :func:`pst_bench.report.runs.load_runs`'s (every record, with
or without a value a table could show), and the figures live beside it: :mod:`~pst_bench.report.figure_data`
(the runs shown, their saved masks and scores, the drawing helpers), :mod:`~pst_bench.report.figure_masks`
(Figures 2 and 5), :mod:`~pst_bench.report.figure_metric` (Figure 3) and
:mod:`~pst_bench.report.figure_scores` (Figure 4 and the mask dynamics).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from ..record import RecordSkipped
from .figure_data import FigureWarning, pick_layer, pick_trio, run_masks, run_scores, score_layers, select_runs
from .figure_masks import figure2, figure5, sparsity_histograms
from .figure_metric import figure3, metric_vs_sparsity
from .figure_scores import figure4, figure_mask_dynamics, mask_dynamics
from .masks import COMPARED, PAIRS, hamming_similarity, similarity_by_layer
from .runs import Run, constant_baselines, load_runs, panel_key
from .selection import DEFAULT_GRID_RULE, GRID_RULES, describe_rule, off_target

__all__ = [
    "COMPARED",
    "PAIRS",
    "FigureWarning",
    "Run",
    "constant_baselines",
    "figure2",
    "figure3",
    "figure4",
    "figure5",
    "figure_mask_dynamics",
    "hamming_similarity",
    "load_runs",
    "main",
    "make_figures",
    "mask_dynamics",
    "metric_vs_sparsity",
    "panel_key",
    "pick_layer",
    "pick_trio",
    "run_masks",
    "run_scores",
    "score_layers",
    "select_runs",
    "similarity_by_layer",
    "sparsity_histograms",
]

DEFAULT_SPARSITY = 0.9


def make_figures(
    runs_dir: Path,
    out_dir: Path,
    sparsity: float = DEFAULT_SPARSITY,
    layer: str | None = None,
    rule: str = DEFAULT_GRID_RULE,
) -> tuple[list[Path], list[str]]:
    """Write every figure that has data; returns (written paths, 'figure: why skipped' lines)."""
    loaded = load_runs(Path(runs_dir), valued=False)  # masks and scores of any run
    runs = select_runs(loaded, rule)
    out_dir = Path(out_dir)
    written, skipped = [], [f"every figure: {why}" for why in map(off_target, (r.record for r in loaded)) if why]
    if not runs:
        return [], [*skipped, f"all figures: no usable records under {runs_dir}"]
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
