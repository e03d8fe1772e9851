"""The evidence protocol's stages as a pure function of a spec and the finished records.

``make_plan(spec, ledger)`` returns every run the protocol needs *that can be named now* (a stage names
its runs only once the stage before it has finished: cells need stage 0, held-out seeds need the
winners), in priority order, each with its record when it has finished, and the decisions taken on the
way (the schedule per task, the cells and why, each grid's winner and edge). Running the pending runs and
calling it again moves the protocol on; when it names no pending run and blocks on nothing, it is done.

The stages (results/README.md, "Protocol"):

- **schedule**: MaP then PST at ``schedule.sparsity[task]`` for each candidate length, shortest first;
  a length fails as soon as one finished probe run's last epoch (wholly at the final sparsity) gains
  ``schedule.limit`` points or more, and is chosen when every probed method that learned (beat its
  constant predictor by ``cells.dense_margin`` points and reached ``schedule.share`` of the best probe
  run at that length) converged; a run that did not learn judges no length (its flat curve would
  "converge" trivially) and the decision says so;
- **0**: dense fine-tuning's whole grid and MaP's middle point at every sparsity, on the selection seed;
- **cells**: a sparsity ``>= cells.min_sparsity`` is a claim-1 cell where dense beat its constant
  predictor by ``cells.dense_margin`` points and MaP keeps a share of dense inside ``cells.map_share``;
- **1**: every sparse method's grid at each claim-1 cell, at ``always_tuned`` (a documented failure
  where nothing learns) and at claim 2's sparsity (its methods); a grid whose winner (selection seed only,
  ``report.selection``) lies on an edge grows one point beyond it, at most ``max_extensions`` points in
  all; then every method of the cell is padded to the cell's largest grid (equal tuning by count), one
  point at a time beyond its better edge, the edge rule applying to each new point;
- **2**: the winners (and dense's) on the held-out seeds; stages 1 and 2 of claim 1 go task by task (a
  task's grids and held-out seeds before the next task's grids) and inside a task cell by cell, the
  sparsest first (a cell's grids, then its held-out seeds), then every task's ``always_tuned`` and
  claim-2 grids and claim 2's held-out seeds;
- **claims 3-4**: the ablation's variants at PST's winning rate of its cell, on the ablation seeds;
- **more seeds**: the claim-1 cells' seeds Stein's rule adds where the paired differences spread widely
  (``protocol.seeds``), once every claim has its first seeds;
- **soft movement**: λ searched on the selection seed until the achieved sparsity lands on the cell
  (``soft_movement``; ``next_lambda``), then the held-out seeds at that λ;
- **baselines**: the methods beyond the paper (``baselines.grids``: Wanda, SparseGPT) at every claim-1
  cell, cell by cell and the sparsest first: a cell's grids, then its winners on the held-out seeds.
"""

from __future__ import annotations

import math

from ..record import RunRecord
from ..report.schedule import curve_of, verdict
from ..report.selection import select_cell
from .runs import Ledger, Plan, Planned, RunRequest, Settled
from .seeds import paired_spread, stein_seed_count
from .spec import ProtocolSpec

CONVERGED = "converged"
DID_NOT_LEARN = "did not learn"


def ladder_step(value: float, up: bool) -> float:
    """The next learning rate beyond a grid's edge on the 1-3-10 ladder (1e-4 -> 3e-4 -> 1e-3); a value off
    the ladder moves by sqrt(10)."""
    exponent = math.floor(math.log10(value) + 1e-9)
    mantissa = round(value / 10**exponent, 6)
    if mantissa == 1.0:
        return (3.0 * 10**exponent) if up else (3.0 * 10 ** (exponent - 1))
    if mantissa == 3.0:
        return (10.0 ** (exponent + 1)) if up else (10.0**exponent)
    return value * math.sqrt(10.0) if up else value / math.sqrt(10.0)


def next_lambda(tried: dict[float, float], target: float, step: float) -> float:
    """The next penalty λ to try, from {λ: achieved sparsity} so far (more λ, more pruning): ``step`` times
    the largest λ while every run pruned too little, the smallest over ``step`` while every one pruned too
    much, else the geometric mean of the closest pair that brackets the target."""
    below = [lam for lam, achieved in tried.items() if achieved < target]
    above = [lam for lam, achieved in tried.items() if achieved > target]
    if not above:
        return max(tried) * step
    if not below:
        return min(tried) / step
    low, high = max(below), min(above)
    return math.sqrt(low * high)


def learned(record: RunRecord, margin: float) -> bool:
    """The run beat its constant predictor by ``margin`` points (a regression's constant scores 0) and does
    not predict a constant itself."""
    value = _points(record.dev_value)
    baseline = _points(record.constant_baseline) or 0.0
    return value is not None and value - baseline >= margin and not record.constant_predictor


def _points(value: float | None) -> float | None:
    return None if value is None else 100.0 * value


class _Planner:
    def __init__(self, spec: ProtocolSpec, ledger: Ledger):
        self.spec, self.ledger, self.plan = spec, ledger, Plan()
        self._by_id: dict[str, Planned] = {}
        self.points: dict[tuple[str, float], int] = {}  # (task, sparsity): every settled grid's points there

    def need(self, request: RunRequest) -> RunRecord | None:
        """Add the request to the plan (a run id once: two stages that need the same run share it) and
        return its record if it finished."""
        rid = self.ledger.run_id(request)
        planned = self._by_id.get(rid)
        if planned is None:
            planned = self._by_id[rid] = Planned(request, self.ledger.lookup(request), rid)
            self.plan.runs.append(planned)
        if request.results_dir not in planned.folders:
            planned.folders.append(request.results_dir)
        return planned.record

    def request(self, stage, task, method, sparsity, lr, seed, **kw) -> RunRequest:
        epochs = kw.pop("epochs", None) or self.plan.epochs[task]
        results_dir = kw.pop("results_dir", None) or self.spec.results_dir
        return RunRequest(stage, task, method, sparsity, lr, seed, epochs, results_dir, **kw)

    # ------------------------------------------------------------------ schedule

    def schedule(self, task: str) -> None:
        probe = self.spec.schedule
        sparsity = probe.sparsity[task]
        for epochs in probe.epochs:
            gains, missing, records = {}, False, {}
            for method in probe.methods:
                lr = _middle(self.spec.grids[method])
                request = self.request(
                    "schedule",
                    task,
                    method,
                    sparsity,
                    lr,
                    self.spec.selection_seed,
                    epochs=epochs,
                    results_dir=probe.results_dir,
                )
                record = self.need(request)
                if record is None:
                    missing = True
                    break  # probe one method at a time: a failed length needs no second run
                curve = curve_of(record)
                if not learned(record, self.spec.cells.dense_margin):
                    # a flat curve of a run that never learned "converges" trivially: it judges no length
                    gains[method] = (DID_NOT_LEARN, curve.last_gain)
                    continue
                gains[method] = (verdict(curve, probe.limit), curve.last_gain)
                records[method] = record
                if gains[method][0] != CONVERGED:
                    break
            # a run far below the best probe run of its length learned too little to judge one either
            best = max((_points(r.dev_value) or 0.0 for r in records.values()), default=0.0)
            for method, record in records.items():
                if (_points(record.dev_value) or 0.0) < probe.share * best:
                    gains[method] = (DID_NOT_LEARN, gains[method][1])
            described = ", ".join(f"{m} {v} ({g:+.2f})" if g is not None else f"{m} {v}" for m, (v, g) in gains.items())
            judged = [v for v, _ in gains.values() if v != DID_NOT_LEARN]
            if any(v != CONVERGED for v in judged):
                self.plan.decisions.append(f"schedule {task}: {epochs} epochs rejected: {described}")
                continue
            if not missing and not judged:
                self.plan.blocked.append(
                    f"{task}: no schedule-probe run learned at {epochs} epochs ({described}): no length can be judged"
                )
                return
            if missing:
                self.plan.blocked.append(f"{task}: the schedule probe at {epochs} epochs has not finished")
                return
            self.plan.decisions.append(f"schedule {task}: {epochs} epochs chosen: {described}")
            self.plan.epochs[task] = epochs
            return
        self.plan.blocked.append(
            f"{task}: no candidate length in schedule.epochs {probe.epochs} converged: add a longer one to the spec"
        )

    # ------------------------------------------------------------------ grids

    def grid(self, stage: str, task: str, method: str, sparsity: float, grids=None, size: int = 0) -> Settled | None:
        """A method's grid at one cell on the selection seed, settled: grown past an edge winner, then padded
        to ``size`` points (the cell's largest grid: equal tuning) one point at a time beyond its better
        edge, the edge rule applying to each new point; at most ``max_extensions`` points beyond the spec's.
        None while a run of it has not finished."""
        grids = self.spec.grids if grids is None else grids
        base = list(grids[method])
        points, padded = list(base), 0
        limit = len(base) + self.spec.max_extensions
        where = "dense" if method == "finetune" else f"{100 * sparsity:g}%"
        while True:
            records = [
                self.need(self.request(stage, task, method, sparsity, lr, self.spec.selection_seed)) for lr in points
            ]
            if any(record is None for record in records):
                return None
            cell = self._select(task, method, sparsity, records)
            winner = cell.chosen.runs[0]
            if all(record.constant_predictor for record in records):
                return Settled(
                    winner,
                    tuple(points),
                    f"grid {task} {where} {method}: no point learned (every run a constant predictor)",
                )
            edge = cell.on_edge
            up = None  # the side a point is added on: past an edge winner, else padding past the better edge
            if edge is not None and 1 < len(points) < limit:
                up = edge == "highest"
            elif 1 < len(points) < min(size, limit):
                # the better of the two edges on the selection seed, the same ranking as the winner's
                up = self._select(task, method, sparsity, [records[0], records[-1]]).chosen.runs[0] is records[-1]
                padded += 1
            if up is not None:
                points = sorted({*points, ladder_step(points[-1] if up else points[0], up=up)})
                continue
            lr = float(winner.config["train"]["lr"])
            note = ""
            if padded:
                note += f" (padded by {padded} beyond its better edge to the cell's {len(points)} points)"
            if edge is not None and len(points) > 1:
                note += f" (still on the {edge} edge after {len(points) - len(base)} extensions: the limit)"
            tied = [c for c in cell.grid if c is not cell.chosen and c.median_dev == cell.chosen.median_dev]
            if tied:  # the selection policy's tie rule decided: say so
                note += (
                    f" (tied at {100 * cell.chosen.median_dev:.2f} with "
                    f"{', '.join(c.setting for c in tied)}: the first setting in sorted order wins)"
                )
            decision = f"grid {task} {where} {method}: lr {lr:g} wins over {', '.join(f'{p:g}' for p in points)}{note}"
            return Settled(winner, tuple(points), decision)

    def _select(self, task: str, method: str, sparsity: float, records: list[RunRecord]):
        return select_cell((task, method, sparsity), records, selection_seeds=(self.spec.selection_seed,))

    # ------------------------------------------------------------------ stage 0 and the cells

    def cells(self, task: str) -> tuple[list[float], RunRecord | None]:
        """(claim-1 sparsities, dense's winner) once stage 0 of ``task`` has finished."""
        settled = self.grid("0", task, "finetune", 0.0)
        if settled is not None:
            self.plan.decisions.append(settled.decision)
        dense = settled.winner if settled is not None else None
        middle = _middle(self.spec.grids["map"])
        maps = {
            s: self.need(self.request("0", task, "map", s, middle, self.spec.selection_seed))
            for s in self.spec.sparsities
        }
        if dense is None or any(record is None for record in maps.values()):
            self.plan.blocked.append(
                f"{task}: stage 0 (dense grid, MaP at {_pcts(self.spec.sparsities)}) has not finished"
            )
            return [], None
        rule = self.spec.cells
        dense_value = _points(dense.dev_value) or 0.0
        constant = _points(dense.constant_baseline) or 0.0
        if dense_value - constant < rule.dense_margin:
            self.plan.decisions.append(
                f"cells {task}: none: dense ({dense_value:.2f}) beats its constant predictor ({constant:.2f}) by less "
                f"than {rule.dense_margin:g} points"
            )
            return [], dense
        low, high = rule.map_share
        chosen, shares = [], []
        for sparsity, record in sorted(maps.items()):
            share = (_points(record.dev_value) or 0.0) / dense_value
            shares.append(f"{100 * sparsity:g}% {share:.3f}")
            if sparsity >= rule.min_sparsity - 1e-9 and low <= share <= high:
                chosen.append(sparsity)
        self.plan.decisions.append(
            f"cells {task}: {_pcts(chosen) or 'none'} (MaP's share of dense {dense_value:.2f}: {', '.join(shares)}; "
            f"a claim-1 cell needs >= {100 * rule.min_sparsity:g}% and a share in [{low:g}, {high:g}])"
        )
        self.plan.cells[task] = chosen
        return chosen, dense

    # ------------------------------------------------------------------ everything, in priority order

    def build(self) -> Plan:
        spec = self.spec
        for task in spec.tasks:
            self.schedule(task)
        ready = [task for task in spec.tasks if task in self.plan.epochs]
        cells = {task: self.cells(task) for task in ready}
        winners: dict[tuple[str, float, str], RunRecord] = {}
        tasks = [task for task in ready if task in self.plan.cells]  # stage 0 done and dense learned
        # Claim 1 first and task by task: one task's grids and held-out seeds before the next task's grids,
        # so that a task's cells are readable while the next one runs (a slow task's grids would otherwise
        # hold back a fast task's held-out seeds by hours). Inside a task, cell by cell and the sparsest first
        # (the paper's regime): a cell's grids, then its held-out seeds (dense's after the first cell's, as
        # every cell needs them), before the next cell's grids, so one whole cell is readable hours before
        # the task's last grid ends.
        for task in tasks:
            claim1, dense = cells[task]
            winners[(task, 0.0, "finetune")] = dense
            for index, sparsity in enumerate(sorted(claim1, reverse=True)):
                self.tune("1", task, sparsity, spec.sparse_methods, winners)
                for method in spec.sparse_methods:
                    self.held_out(
                        "2", (task, sparsity, method), winners.get((task, sparsity, method)), spec.heldout_seeds
                    )
                if index == 0:
                    self.held_out("2", (task, 0.0, "finetune"), dense, spec.heldout_seeds)
        # then the documented failures (``always_tuned``) and claim 2, again task by task
        for task in tasks:
            claim1 = cells[task][0]
            for sparsity in [s for s in spec.always_tuned if s not in claim1]:
                self.tune("1", task, sparsity, spec.sparse_methods, winners)
            self.tune("1", task, spec.claim2.sparsity, spec.claim2.methods, winners)
            for method in spec.claim2.methods:
                key = (task, spec.claim2.sparsity, method)
                self.held_out("claim 2", key, winners.get(key), spec.heldout_seeds)
        self.ablation(winners)
        # Stein's extra seeds once every claim has its first seeds: claim 1 pairs its cells on the seeds they
        # all share, so one cell's (or one task's) extras move no verdict until every cell has them, while
        # STS-B's alone may be 30 runs of 20-27 minutes; each claim's minimum first, then sharper intervals
        for task in tasks:
            for sparsity in sorted(cells[task][0], reverse=True):
                self.more_seeds(task, sparsity, winners)
        # soft movement (one SST-2 cell, a few short runs) before the baselines' grids and seeds at every cell
        self.soft_movement(winners)
        self.baselines(cells)
        return self.plan

    def tune(self, stage: str, task: str, sparsity: float, methods, winners: dict, grids=None) -> None:
        """The methods' grids at one cell, each padded to the cell's largest (equal tuning: as many points
        each, at least the points of the grids settled there before), their winners into ``winners`` once
        every one is settled. A method already settled at the cell (a claim-1 cell that is also claim 2's) is
        not gone through again, so its decision is written once."""
        size = self.points.get((task, sparsity), 0)
        methods = [m for m in methods if (task, sparsity, m) not in winners]
        if not methods:
            return
        sizes: dict[str, int] = {}
        # sizes only grow, each at most to its limit, so this settles within a few rounds
        for _ in range(len(methods) * (self.spec.max_extensions + 1) + 1):
            target = max([size, *sizes.values()])
            settled = {method: self.grid(stage, task, method, sparsity, grids, size=target) for method in methods}
            if any(result is None for result in settled.values()):
                if sizes:  # every grid had settled once: what runs now is the padding
                    short = ", ".join(m for m, result in settled.items() if result is None)
                    self.plan.blocked.append(
                        f"{task} {100 * sparsity:g}%: {short} padded to the cell's {target} points (equal tuning)"
                    )
                return
            sizes = {method: len(result.points) for method, result in settled.items()}
            if max(sizes.values()) <= target:
                break
        for method, result in settled.items():
            self.plan.decisions.append(result.decision)
            winners[(task, sparsity, method)] = result.winner
        self.points[(task, sparsity)] = max(sizes.values())

    def soft_movement(self, winners: dict) -> None:
        sm = self.spec.soft_movement
        if sm.task is None or sm.task not in self.plan.epochs:
            return
        where = f"{sm.task} {100 * sm.sparsity:g}%"
        mvp = winners.get((sm.task, sm.sparsity, "mvp"))
        if mvp is None:
            self.plan.blocked.append(f"soft movement: wait for MvP's grid at {where} (its weights' rate)")
            return
        lr = float(mvp.config["train"]["lr"])
        tried: dict[float, float] = {}
        lam = sm.start_lambda
        for _ in range(sm.max_tries):
            request = self.request(
                "soft movement",
                sm.task,
                "soft_mvp",
                sm.sparsity,
                lr,
                self.spec.selection_seed,
                extra=(f"method.final_lambda={lam:.6g}",),
            )
            record = self.need(request)
            if record is None:
                return
            achieved = record.achieved_sparsity
            if achieved is None:
                self.plan.blocked.append(f"soft movement: {record.run_id} records no achieved sparsity")
                return
            tried[lam] = achieved
            if abs(achieved - sm.sparsity) <= sm.tolerance:
                found = ", ".join(f"λ {k:.6g}: {100 * v:.2f}%" for k, v in sorted(tried.items()))
                self.plan.decisions.append(f"soft movement {where}: λ {lam:.6g} lands on the cell ({found})")
                for seed in sm.seeds:
                    self.need(
                        self.request(
                            "soft movement held-out",
                            sm.task,
                            "soft_mvp",
                            sm.sparsity,
                            lr,
                            seed,
                            extra=(f"method.final_lambda={lam:.6g}",),
                        )
                    )
                return
            lam = next_lambda(tried, sm.sparsity, sm.step)
        found = ", ".join(f"λ {k:.6g}: {100 * v:.2f}%" for k, v in sorted(tried.items()))
        self.plan.decisions.append(
            f"soft movement {where}: no λ within {100 * sm.tolerance:g} points after {sm.max_tries} tries ({found}): "
            "no held-out seeds; raise soft_movement.max_tries or widen the tolerance"
        )

    def baselines(self, cells: dict) -> None:
        """Issue 24's methods at every claim-1 cell, after everything the paper's claims need. Cell by cell,
        the sparsest first (tasks in spec order at equal sparsity), each cell's held-out seeds before the next
        cell's grids: the new claims ask about high sparsity, and a few whole cells are worth more than every
        cell's grid with no held-out seed (their runs take days on the CPU)."""
        grids = self.spec.baselines.grids
        order = sorted(
            ((sparsity, index, task) for index, (task, (claim1, _)) in enumerate(cells.items()) for sparsity in claim1),
            key=lambda cell: (-cell[0], cell[1]),
        )
        winners: dict[tuple[str, float, str], RunRecord] = {}
        for sparsity, _, task in order:
            # padded to the points the paper's methods had at the cell (claims 6-7 compare them); one grown past
            # them by the edge rule stays larger, and the claims flag the unequal budget
            self.tune("baselines", task, sparsity, list(grids), winners, grids)
            for method in grids:
                key = (task, sparsity, method)
                self.held_out("baselines held-out", key, winners.get(key), self.spec.heldout_seeds)

    def held_out(self, stage: str, key: tuple[str, float, str], winner: RunRecord | None, seeds, **kw) -> None:
        task, sparsity, method = key
        if winner is None:
            self.plan.blocked.append(f"{task} {100 * sparsity:g}% {method}: held-out seeds wait for its grid")
            return
        lr = float(winner.config["train"]["lr"])
        for seed in seeds:
            self.need(self.request(stage, task, method, sparsity, lr, seed, **kw))

    def more_seeds(self, task: str, sparsity: float, winners: dict) -> None:
        """Once a claim-1 cell's pairs have finished their first held-out seeds, the seeds Stein's rule asks for
        (``protocol.seeds``), for every sparse method of the cell, so that every pair stays paired."""
        rule, first = self.spec.more_seeds, self.spec.heldout_seeds
        if not rule.pairs or not first:
            return
        values: dict[str, list[float]] = {}
        for method in {m for pair in rule.pairs for m in pair}:
            winner = winners.get((task, sparsity, method))
            if winner is None:
                return
            lr = float(winner.config["train"]["lr"])
            records = [self.need(self.request("2", task, method, sparsity, lr, seed)) for seed in first]
            if any(record is None or record.dev_value is None for record in records):
                return
            values[method] = [_points(record.dev_value) for record in records]
        spreads, count = [], len(first)
        for a, b in rule.pairs:
            spread = paired_spread([x - y for x, y in zip(values[a], values[b])])
            count = max(count, stein_seed_count(spread, len(first), rule.half_width, rule.max_seeds))
            spreads.append(f"{a} − {b} {spread:.2f}")
        self.plan.decisions.append(
            f"seeds {task} {100 * sparsity:g}%: paired SD {', '.join(spreads)} points over seeds "
            f"{min(first)}-{max(first)} -> {count} seeds (Stein's two-stage rule: ±{rule.half_width:g} points "
            f"at 95%, at most {rule.max_seeds})"
        )
        extra = list(range(max(first) + 1, max(first) + 1 + count - len(first)))
        for method in self.spec.sparse_methods:
            self.held_out("more seeds", (task, sparsity, method), winners.get((task, sparsity, method)), extra)

    def ablation(self, winners: dict) -> None:
        ab = self.spec.ablation
        if ab.task not in self.plan.epochs or not ab.variants:
            return
        winner = winners.get((ab.task, ab.sparsity, "pst"))
        if winner is None:
            self.plan.blocked.append(f"claims 3-4: wait for PST's grid at {ab.task} {100 * ab.sparsity:g}%")
            return
        self.held_out("claims 3-4", (ab.task, ab.sparsity, "pst"), winner, ab.seeds)
        lr = float(winner.config["train"]["lr"])
        for name, overrides in ab.variants.items():
            method = next((o.split("=", 1)[1] for o in overrides if o.startswith("method=")), "pst")
            extra = tuple(o for o in overrides if not o.startswith("method="))
            for seed in ab.seeds:
                self.need(self.request("claims 3-4", ab.task, method, ab.sparsity, lr, seed, variant=name, extra=extra))


def _middle(points: list[float]) -> float:
    return points[len(points) // 2]


def _pcts(sparsities) -> str:
    return ", ".join(f"{100 * s:g}%" for s in sparsities)


def make_plan(spec: ProtocolSpec, ledger: Ledger) -> Plan:
    """Every run nameable now, in priority order, with the decisions and blocks (module docstring)."""
    return _Planner(spec, ledger).build()
