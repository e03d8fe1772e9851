"""The paper's Tables 2-5 from the results records of finished runs (``make tables``).

    python -m pst_bench.report.tables [--runs results/runs] [--out results/tables] [--paper PATH]
                               [--grid best-dev|pool] [--selection-seeds SEED ...] [--masks DIR ...]

Every ``*.json`` file under ``--runs`` (recursively) is read as a results record
through :mod:`pst_bench.record` (:func:`pst_bench.report.runs.load_runs`). Files that are not JSON, not a record, miss a
key the tables need or are not ``status: finished`` are skipped with a warning
that names the file (and the missing keys); other files (``.npz``, ``.txt``,
``.jsonl``) are never looked at. Which records a cell shows is decided by the
one selection policy of every report (:mod:`pst_bench.report.selection`,
``--grid best-dev|pool``; ``--selection-seeds``: the seeds that only tune, default 0), named in
each table's notes with the tuning budget, grid edges and pending held-out cells
(:mod:`pst_bench.report.tuning`). The paper's numbers come from the packaged
``pst_bench/paper/paper_results.csv`` (or ``--paper``).

``--out`` also receives ``claims.md`` (the paper's five qualitative claims and two beyond it checked on
these records, :mod:`pst_bench.report.claims`) and ``mask_distance.md`` / ``.csv`` (per-seed distances
between the methods' final masks, :mod:`pst_bench.report.masks`). Every distance it computes from two mask
files is kept in ``--runs``'s ``mask_distances.csv`` (:mod:`pst_bench.report.mask_store`), the one file this
command writes there: the masks stay out of git, and a checkout without them reads the distances from it.
``--out`` also receives ``convergence.md``: the last epoch's gain of every shown cell's runs
(:mod:`pst_bench.report.convergence`), the schedule rule read on the cells the tables report.
``--masks DIR`` names another runs folder (the sweep clone's) to find mask files in that this checkout lacks.

For each table N in 2..5, ``--out`` receives:

- ``tableN.md``: the table laid out like the paper's, one cell ``ours / paper (diff)``,
  then Notes and a "Missing" list (the paper's cells, for the models we ran, with no run).
- ``tableN.csv``: the same table, each value column split into ``<col> ours``,
  ``<col> paper`` and ``<col> diff`` (the same strings as the Markdown).
- ``tableN_cells.csv``: one line per cell we have, numeric: runs, seeds, median, min,
  max, mean, std, ``ci_low``/``ci_high`` (95%), paper, diff and the record files, for plotting
  and auditing; ``settings`` is how many settings the cell held and ``setting`` the one shown
  (empty when there was one); ``dirty_runs``, ``held_out``, ``tuning_seeds`` and ``on_edge``.
- ``tableN_missing.csv``: one line per missing paper cell, with the command that fills it.

Cell strings: ``78.90`` for one run, ``88.10 [87.50–88.90] · 88.20 ± 0.95 (n=3)`` (median
[min–max] · mean ± the 95% Student-t half-width, :mod:`pst_bench.report.stats`) for several;
``§`` marks a cell with a run from uncommitted code (``git.dirty``); ``†`` a cell with a short
run (a train/eval/decode subset or ``max_steps``); ``-`` where there is no value; a paper value the paper copied from
prior work ends in ``*`` as in the paper; diff = ours (as printed) − paper.
Everything is sorted and formatted with fixed decimals, so a rerun on the same
records writes byte-identical files.

This module is the command; the jobs live beside it: :mod:`~pst_bench.report.runs` (the records as
runs), :mod:`~pst_bench.report.paper` (the paper's columns and numbers), :mod:`~pst_bench.report.cells`
(cells and their statistics, shared with the claims), :mod:`~pst_bench.report.table_specs` (what each
table holds), :mod:`~pst_bench.report.table_build` (selecting, aggregating and comparing),
:mod:`~pst_bench.report.table_notes` and :mod:`~pst_bench.report.table_missing` (the notes and the
missing runs) and :mod:`~pst_bench.report.table_markdown` (writing the files).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from ..files import atomic_write_text
from ..record import RecordSkipped
from .cells import CELL_COLUMNS
from .claims import check_claims, claims_markdown
from .convergence import cell_convergence, convergence_markdown, not_converged
from .mask_store import STORE_NAME, MaskDistanceStore
from .masks import mask_distance_frame, mask_distance_markdown, mask_pairs
from .paper import GLUE, default_paper_csv, load_paper
from .runs import Run, load_runs
from .selection import DEFAULT_GRID_RULE, GRID_RULES, SELECTION_SEEDS
from .structured import write_structured
from .table_build import Built, Orders, build_table
from .table_markdown import to_csv_text, write_table
from .table_specs import SPECS

__all__ = [
    "CELL_COLUMNS",
    "GLUE",
    "Built",
    "RecordSkipped",
    "Run",
    "default_paper_csv",
    "load_paper",
    "load_runs",
    "main",
    "make_tables",
]


def make_tables(
    runs_dir: Path,
    out_dir: Path,
    paper_csv: Path | None = None,
    rule: str = DEFAULT_GRID_RULE,
    bench_dir: Path = Path("results/bench"),
    selection_seeds: tuple[int, ...] = SELECTION_SEEDS,
    mask_dirs: tuple[Path, ...] = (),
) -> tuple[list[Run], list[Built]]:
    """Build and write Tables 2-5 (and the claims, mask distances and the structured-sparsity table) from
    the records under runs_dir; returns the runs and the tables."""
    runs = load_runs(runs_dir)
    paper = load_paper(paper_csv or default_paper_csv())
    orders = Orders(paper)
    seeds = tuple(selection_seeds)
    built = [build_table(spec, runs, paper, orders, rule, seeds) for spec in SPECS]
    for table in built:
        write_table(table, out_dir, runs_dir.as_posix())
    store = MaskDistanceStore(runs_dir / STORE_NAME)  # the distances of masks this checkout may not have
    pairs = mask_pairs([run.record for run in runs], rule, seeds, store, mask_dirs)
    store.save()
    atomic_write_text(out_dir / "mask_distance.csv", to_csv_text(mask_distance_frame(pairs)))
    atomic_write_text(out_dir / "mask_distance.md", mask_distance_markdown(pairs, runs_dir.as_posix()))
    convergence = cell_convergence([run.record for run in runs], rule, seeds)
    atomic_write_text(out_dir / "convergence.md", convergence_markdown(convergence, runs_dir.as_posix()))
    verdicts = check_claims(built, pairs, paper)
    claims_text = claims_markdown(verdicts, len(runs), runs_dir.as_posix(), not_converged(convergence))
    atomic_write_text(out_dir / "claims.md", claims_text)
    write_structured([run.record for run in runs], out_dir, runs_dir.as_posix(), bench_dir, rule, seeds)
    return runs, built


def main(argv: list[str] | None = None) -> int:
    """CLI: `python -m pst_bench.report.tables [--runs DIR] [--out DIR] [--paper CSV]`."""
    parser = argparse.ArgumentParser(
        prog="python -m pst_bench.report.tables", description="The paper's Tables 2-5 from finished results records."
    )
    parser.add_argument("--runs", type=Path, default=Path("results/runs"), help="results records folder")
    parser.add_argument("--out", type=Path, default=Path("results/tables"), help="output folder")
    parser.add_argument(
        "--paper",
        type=Path,
        default=None,
        help="paper numbers CSV (default: the packaged pst_bench/paper/paper_results.csv)",
    )
    parser.add_argument(
        "--grid",
        choices=GRID_RULES,
        default=DEFAULT_GRID_RULE,
        help="a cell holding several settings: show the best on dev (the paper's rule) or pool "
        "all (default: %(default)s)",
    )
    parser.add_argument(
        "--bench", type=Path, default=Path("results/bench"), help="inference benchmark folder (structured.md's speed)"
    )
    parser.add_argument(
        "--selection-seeds",
        type=int,
        nargs="*",
        default=list(SELECTION_SEEDS),
        metavar="SEED",
        help="seeds that only pick a cell's setting and are never shown; a cell with a run on one shows the "
        "winner's other (held-out) seeds; give none to turn this off (default: %(default)s)",
    )
    parser.add_argument(
        "--masks",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="another runs folder holding mask files these records name but this checkout lacks (the sweep "
        "clone's results/runs): their distances join --runs's mask_distances.csv; repeatable",
    )
    args = parser.parse_args(argv)
    for folder in [args.runs, *args.masks]:
        if not folder.is_dir():
            print(f"pst-bench tables: error: no runs folder {folder}", file=sys.stderr)
            return 2
    if args.paper is not None and not args.paper.is_file():
        print(f"pst-bench tables: error: no paper CSV {args.paper}", file=sys.stderr)
        return 2
    # Every skipped file is reported once, as one plain line (the default format would
    # print the warning's source line and drop repeats).
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RecordSkipped)
        runs, built = make_tables(
            args.runs, args.out, args.paper, args.grid, args.bench, tuple(args.selection_seeds), tuple(args.masks)
        )
    for item in caught:
        print(f"pst-bench tables: warning: {item.message}", file=sys.stderr)
    used = set().union(*(table.files for table in built))
    for run in runs:
        if run.file not in used and not run.record.structure:  # structured runs: structured.md
            # a PST variant at 50%, PST ranks on a task Table 4 lacks, a duplicate
            print(f"pst-bench tables: note: {run.file} is in no table (or left out by the selection)", file=sys.stderr)
    for table in built:
        print(
            f"table{table.spec.number}: {len(table.files)} records, {len(table.rows)} rows, "
            f"{len(table.missing)} missing paper cells -> {args.out.as_posix()}/table{table.spec.number}.md"
        )
    print(f"claims and mask distances -> {args.out.as_posix()}/claims.md, {args.out.as_posix()}/mask_distance.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
