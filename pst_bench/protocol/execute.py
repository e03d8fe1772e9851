"""Running the protocol: run ids, the finished records, and ``pst-bench`` jobs, resumable and in parallel.

``Ledger`` knows which requests have finished: it composes a request's config exactly as ``pst-bench``
would (so the run id is the one the run writes) and looks it up among the records of the spec's results
folders. A record the schedule probe made that a later stage needs again (the same run id: MaP at a
task's probed sparsity) is copied into the spec's results folder, never trained twice.

``run_protocol`` plans, starts up to ``jobs`` pending runs as ``pst-bench`` processes (each logs to
``outputs/protocol/<run id>.log``), and plans again whenever one ends, until nothing is pending. An
interrupted run resumes from its checkpoint the next time (``pst-bench``'s own resume); ``--until`` starts
only runs estimated to end before a deadline (a session, a cluster job's time limit); a failed run is
not retried in the same call and makes the call exit non-zero. SIGTERM stops the runs in flight (each
checkpoints); SIGUSR1 drains: nothing more starts, the runs in flight finish and write their records, then
the call exits.
"""

from __future__ import annotations

import logging
import os
import signal
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from ..checkout import has_uncommitted_changes
from ..errors import ConfigError
from ..files import atomic_write_text
from ..record import FINISHED, RunRecord, load_records, run_id
from .plan import make_plan
from .runs import Plan, RunRequest
from .spec import ProtocolSpec

log = logging.getLogger(__name__)
LOG_DIR = Path("outputs/protocol")


class Ledger:
    """Run ids of requests (composed once each) and the finished records of the spec's folders."""

    def __init__(self, spec: ProtocolSpec):
        self.spec = spec
        self._ids: dict[tuple[str, ...], tuple[str, str]] = {}  # overrides -> (run id, method kind)
        self.records: dict[str, RunRecord] = {}
        self.reload()

    @property
    def folders(self) -> list[Path]:
        return [Path(self.spec.results_dir), Path(self.spec.schedule.results_dir)]

    def reload(self) -> None:
        self.records = {}
        for folder in self.folders:
            if folder.is_dir():
                for record in load_records(folder):
                    if record.data.get("status") == FINISHED:
                        self.records.setdefault(record.run_id, record)

    def _composed(self, request: RunRequest) -> tuple[str, str]:
        overrides = tuple(request.overrides(self.spec))
        if overrides not in self._ids:
            from hydra import compose, initialize_config_module

            with initialize_config_module(config_module="pst_bench.conf", version_base="1.3"):
                cfg = compose(config_name="config", overrides=list(overrides))
            self._ids[overrides] = (run_id(cfg), str(cfg.method.kind))
        return self._ids[overrides]

    def run_id(self, request: RunRequest) -> str:
        return self._composed(request)[0]

    def kind(self, request: RunRequest) -> str:
        """The method kind the request's config composes to (``pst_mag_ab`` -> ``pst``), as records store it."""
        return self._composed(request)[1]

    def lookup(self, request: RunRequest) -> RunRecord | None:
        return self.records.get(self.run_id(request))

    def adopt(self, plan: Plan) -> int:
        """Copy finished records that sit in another of the spec's folders into their request's folder."""
        copied = 0
        for run in plan.runs:
            if run.record is None:
                continue
            for folder in run.folders:
                target = Path(folder) / f"{run.record.run_id}.json"
                if not target.exists():  # atomic: a killed copy leaves no truncated record behind
                    atomic_write_text(target, run.record.path.read_text())
                    copied += 1
        return copied


def minutes_per_run(spec: ProtocolSpec, ledger: Ledger, request: RunRequest) -> float:
    """The run's steps times the median minutes per step of the finished runs of the same task and method
    (evaluations included), else the spec's estimate."""
    rates, per_epoch = [], []
    for record in ledger.records.values():
        steps = record.data.get("steps") or {}
        same = record.task == request.task and record.kind == ledger.kind(request)
        if same and record.data.get("wall_time_s") and steps.get("total") and steps.get("per_epoch"):
            rates.append(float(record.data["wall_time_s"]) / 60.0 / float(steps["total"]))
            per_epoch.append(int(steps["per_epoch"]))
    if rates:
        return statistics.median(rates) * statistics.median(per_epoch) * request.epochs
    return float(spec.minutes_per_run.get(request.task, 10.0))


def describe(spec: ProtocolSpec, ledger: Ledger, plan: Plan) -> str:
    """The plan as markdown: decisions, blocks, and the runs by stage with their status and estimate."""
    lines = [f"# Evidence protocol `{spec.name}`: where it stands", ""]
    lines += [
        f"Made by `python -m pst_bench.protocol --spec {spec.name} --dry-run` from the records in "
        f"`{spec.results_dir}` and `{spec.schedule.results_dir}`.",
        "",
    ]
    lines += ["## Decisions", ""] + [f"- {d}" for d in plan.decisions or ["none yet"]] + [""]
    if plan.blocked:
        lines += ["## Waiting", ""] + [f"- {b}" for b in plan.blocked] + [""]
    lines += ["## Runs named so far", "", "| Stage | Finished | Pending | Pending hours (est.) |", "|---|---|---|---|"]
    stages: dict[str, list] = {}
    for run in plan.runs:
        stages.setdefault(run.request.stage, []).append(run)
    for stage, runs in stages.items():
        pending = [run for run in runs if not run.finished]
        hours = sum(minutes_per_run(spec, ledger, run.request) for run in pending) / 60.0
        lines.append(f"| {stage} | {len(runs) - len(pending)} | {len(pending)} | {hours:.1f} |")
    lines += [
        "",
        "Estimates: a run's steps times the median minutes per step (evaluations included) of the finished "
        "runs of the same task and method, else the spec's `minutes_per_run`; hours are summed over runs, so "
        "runs made N at once (`--jobs N`) finish in about 1/N of them; later stages name their runs once these "
        "finish.",
        "",
    ]
    pending = plan.pending
    if pending:
        lines += ["## Next", ""] + [f"- {run.request.stage}: {run.request.label}" for run in pending[:20]]
        if len(pending) > 20:
            lines.append(f"- ... and {len(pending) - 20} more")
    return "\n".join(lines) + "\n"


def git_dirty() -> bool:
    """Whether the checkout the protocol runs from has uncommitted changes (False where it is no checkout:
    the records say so themselves)."""
    try:
        return has_uncommitted_changes()
    except (OSError, subprocess.SubprocessError):
        return False


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may use (a cluster job's share)
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def child_env(jobs: int) -> dict[str, str]:
    """A run's environment: the caller's, with ``OMP_NUM_THREADS`` set to the cores over ``jobs`` (at least 1)
    where the caller set none, since ``jobs`` runs of torch's default, a thread per core each, would
    oversubscribe the cores and slow every run."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, _cores() // max(1, jobs))))
    return env


def _command(spec: ProtocolSpec, request: RunRequest) -> list[str]:
    script = Path(sys.executable).with_name("pst-bench")
    head = [str(script)] if script.exists() else [sys.executable, "-m", "pst_bench.cli"]
    return [*head, *request.overrides(spec), "train.progress_bar=false"]


#: a run starts before ``--until`` only if this many times its estimated minutes still end before it (STS-B's
#: runs took 20.7 to 26.7 minutes two at a time: the slowest is 1.12x their median)
DEADLINE_MARGIN = 1.2


def parse_until(text: str, now: datetime) -> datetime:
    """``--until``'s deadline: a clock time ``HH:MM`` (its next occurrence after ``now``) or a duration from
    ``now`` (``90m``, ``2.5h``)."""
    text = text.strip()
    try:
        if text[-1:] in ("m", "h"):
            amount = float(text[:-1])
            if amount <= 0:
                raise ValueError
            return now + timedelta(minutes=amount if text[-1] == "m" else 60 * amount)
        clock = datetime.strptime(text, "%H:%M").time()
    except ValueError:
        raise ConfigError(
            f"--until {text!r}: give a clock time HH:MM (e.g. 15:30) or a duration from now (e.g. 90m, 2.5h)"
        ) from None
    deadline = datetime.combine(now.date(), clock, tzinfo=now.tzinfo)
    return deadline if deadline > now else deadline + timedelta(days=1)


def run_protocol(spec: ProtocolSpec, jobs: int, max_runs: int | None = None, until: datetime | None = None) -> int:
    """Run pending runs until the protocol is done or blocked (or ``max_runs`` were started); 0 when every
    started run finished. With ``until``, a run starts only if ``DEADLINE_MARGIN`` times its estimate ends
    before it, the first such in priority order (a session or a SLURM job that ends at a known time loses no
    half-made run): a long run near the end gives way to shorter ones that fit, and the call ends when none
    does."""
    ledger = Ledger(spec)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    running: dict[str, tuple[subprocess.Popen, RunRequest]] = {}
    failed: set[str] = set()
    started = 0

    draining = late = False

    def fits(request: RunRequest) -> bool:
        if until is None:
            return True
        minutes = DEADLINE_MARGIN * minutes_per_run(spec, ledger, request)
        return datetime.now(until.tzinfo) + timedelta(minutes=minutes) <= until

    def drain(signum=None, frame=None):
        # SIGUSR1: start nothing more, let the runs in flight write their records, then exit; the way to move a
        # sweep's clone to a newer commit between runs (docs/evidence.md)
        nonlocal draining
        draining = True
        print(f"[protocol] draining: {len(running)} runs in flight, none started after them", flush=True)

    def stop_all(signum=None, frame=None):
        for process, _ in running.values():
            process.send_signal(signal.SIGTERM)  # each run checkpoints and exits; the next call resumes it
        for process, _ in running.values():
            process.wait()
        raise SystemExit(130)

    previous = signal.signal(signal.SIGTERM, stop_all)
    previous_usr1 = signal.signal(signal.SIGUSR1, drain)
    try:
        while True:
            ledger.reload()
            plan = make_plan(spec, ledger)
            ledger.adopt(plan)
            todo = [r for r in plan.pending if r.rid not in set(running) | failed]
            while todo and not draining and len(running) < jobs and (max_runs is None or started < max_runs):
                planned = next((r for r in todo if fits(r.request)), None)
                if planned is None:
                    if not late:
                        print(
                            f"[protocol] until {until:%Y-%m-%d %H:%M}: none of the {len(todo)} pending runs would "
                            f"end before it ({DEADLINE_MARGIN:g}x its estimate); starting nothing more",
                            flush=True,
                        )
                    late = True
                    break
                todo.remove(planned)
                request, rid = planned.request, planned.rid
                log_file = (LOG_DIR / f"{rid}.log").open("a")
                print(f"[protocol] start {request.stage}: {request.label} -> {rid}", flush=True)
                running[rid] = (
                    subprocess.Popen(
                        _command(spec, request), stdout=log_file, stderr=subprocess.STDOUT, env=child_env(jobs)
                    ),
                    request,
                )
                started += 1
            if not running:
                break
            rid = _wait_any(running)
            process, request = running.pop(rid)
            if process.returncode == 0:
                print(f"[protocol] done  {request.label}", flush=True)
            else:
                failed.add(rid)
                tail = (LOG_DIR / f"{rid}.log").read_text().strip().splitlines()[-1:] or ["(no output)"]
                print(
                    f"[protocol] FAILED {request.label} (exit {process.returncode}): {tail[0]} "
                    f"(log: {LOG_DIR / (rid + '.log')})",
                    flush=True,
                )
    except KeyboardInterrupt:
        stop_all()
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGUSR1, previous_usr1)
    ledger.reload()
    plan = make_plan(spec, ledger)
    ledger.adopt(plan)
    for line in plan.decisions:
        print(f"[protocol] {line}")
    for line in plan.blocked:
        print(f"[protocol] waiting: {line}")
    print(f"[protocol] {len(plan.pending)} runs pending, {len(failed)} failed in this call", flush=True)
    return 1 if failed else 0


def _wait_any(running: dict) -> str:
    while True:
        for rid, (process, _) in running.items():
            if process.poll() is not None:
                return rid
        time.sleep(2.0)
