"""Is a schedule long enough? Dev curves per epoch and the last epoch's gain, from run records.

    python -m pst_bench.report.schedule [--runs results/schedule] [--out results/schedule] [--limit 0.5]

The evidence protocol asks of a schedule that, at the hardest sparsity it reports, the last epoch (trained
entirely at the final sparsity) gains less than ``--limit`` points of the task's metric (x100) for MaP
and PST: a run still gaining there has not converged, and a comparison of such runs measures how fast
each method learns rather than where it ends. This report reads the records of the schedule probe
(``results/schedule/``, written by ``python -m pst_bench.protocol``), or of any runs, and writes
``schedule.md`` (one line per run: the dev value after every epoch, which epochs were at the final
sparsity, the last epoch's gain and whether it is under the limit) and ``schedule.png`` (the curves, one
panel per task).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..files import atomic_write_text
from ..record import RunRecord, load_records

DEFAULT_LIMIT = 0.5
COMMAND = "python -m pst_bench.report.schedule"


@dataclass(frozen=True)
class Curve:
    """One run's dev value (x100) after each epoch and where the final sparsity began."""

    run: RunRecord
    values: tuple[float, ...]
    final_window: tuple[bool, ...]  # per epoch: it ended inside the final (target-sparsity) window

    @property
    def label(self) -> str:
        config = self.run.config
        return (
            f"{self.run.method} p{self.run.sparsity_pct:g} lr {config['train']['lr']:g} "
            f"{config['train'].get('max_train_examples') or 'all'} ex x {len(self.values)} ep s{self.run.seed}"
        )

    @property
    def last_gain(self) -> float | None:
        """The last epoch's gain (higher-is-better metrics; a loss is negated), or None for one epoch."""
        if len(self.values) < 2:
            return None
        sign = 1.0 if self.run.higher_is_better else -1.0
        return sign * (self.values[-1] - self.values[-2])

    @property
    def last_epoch_at_final_sparsity(self) -> bool:
        """Both ends of the last epoch lie in the final window: it was trained at the target sparsity."""
        return len(self.final_window) >= 2 and self.final_window[-2] and self.final_window[-1]


def curve_of(run: RunRecord) -> Curve:
    split = run.main_split
    epochs = run.data.get("epochs") or []
    values = tuple(100.0 * float(e["eval"][split]["main"]) for e in epochs)
    return Curve(run, values, tuple(bool(e.get("in_final_window")) for e in epochs))


def verdict(curve: Curve, limit: float) -> str:
    gain = curve.last_gain
    if gain is None:
        return "one epoch: no gain to measure"
    if not curve.last_epoch_at_final_sparsity:
        return "the last epoch is not wholly at the final sparsity: lengthen the schedule"
    return "converged" if gain < limit else "still gaining"


def markdown(curves: Iterable[Curve], runs_dir: str, limit: float) -> str:
    curves = sorted(curves, key=lambda c: (c.run.task, c.run.sparsity_pct, len(c.values), c.run.method, c.run.run_id))
    lines = [
        "# Schedule probe: dev value after every epoch and the last epoch's gain",
        "",
        f"Made by `{COMMAND} --runs {runs_dir}` from the records in `{runs_dir}`. Values are the task's metric "
        f"x100 on the full dev set; epochs in **bold** ended at the final sparsity. A schedule converges when "
        f"the last epoch, trained wholly at the final sparsity, gains less than {limit:g} point.",
        "",
        "| Task | Run | Dev value after each epoch | Last epoch's gain | Verdict | Steps | Wall time (min) |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in curves:
        values = " · ".join(f"**{v:.2f}**" if final else f"{v:.2f}" for v, final in zip(c.values, c.final_window))
        gain = "-" if c.last_gain is None else f"{c.last_gain:+.2f}"
        steps = (c.run.data.get("steps") or {}).get("total", "-")
        wall = c.run.data.get("wall_time_s")
        minutes = "-" if wall is None else f"{wall / 60:.1f}"
        lines.append(
            f"| {c.run.task} | `{c.run.run_id}` ({c.label}) | {values} | {gain} | {verdict(c, limit)} | {steps} | "
            f"{minutes} |"
        )
    return "\n".join(lines) + "\n"


def plot(curves: list[Curve], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted({c.run.task for c in curves})
    figure, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4.2), squeeze=False)
    for axis, task in zip(axes[0], tasks):
        for c in sorted((c for c in curves if c.run.task == task), key=lambda c: c.label):
            epochs = range(1, len(c.values) + 1)
            (line,) = axis.plot(epochs, c.values, marker="o", markersize=3, label=c.label)
            finals = [(e, v) for e, v, final in zip(epochs, c.values, c.final_window) if final]
            if finals:
                axis.plot(*zip(*finals), marker="o", markersize=6, linestyle="none", color=line.get_color())
        axis.set_title(f"{task}: dev value per epoch (large dots: at the final sparsity)")
        axis.set_xlabel("epoch")
        axis.set_ylabel("dev metric x100")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    figure.savefig(tmp, dpi=110)
    plt.close(figure)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n")[0])
    parser.add_argument("--runs", default="results/schedule", help="folder of run records")
    parser.add_argument("--out", type=Path, default=None, help="where schedule.md/.png go (default: --runs)")
    parser.add_argument("--limit", type=float, default=DEFAULT_LIMIT, help="points a converged last epoch may gain")
    args = parser.parse_args(argv)
    runs = Path(args.runs)
    if not runs.is_dir():
        print(f"schedule: {runs} is not a folder of run records; run the schedule probe first", file=sys.stderr)
        return 2
    curves = [curve_of(run) for run in load_records(runs)]
    if not curves:
        print(f"schedule: no finished run records in {runs}", file=sys.stderr)
        return 2
    out = args.out or runs
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "schedule.md", markdown(curves, args.runs, args.limit))
    plot(curves, out / "schedule.png")
    print(markdown(curves, args.runs, args.limit))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
