"""What a plan of the evidence protocol is made of: the runs it requests, a settled grid, the plan itself,
and what it asks of the finished runs (``execute.Ledger`` answers). ``plan.make_plan`` builds them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ..record import RunRecord
from .spec import ProtocolSpec


@dataclass(frozen=True)
class RunRequest:
    """One run the protocol needs: its stage, its place and the overrides that make it."""

    stage: str
    task: str
    method: str  # the method config's name (conf/method/)
    sparsity: float  # 0 for dense fine-tuning
    lr: float
    seed: int
    epochs: int
    results_dir: str
    variant: str = ""  # an ablation variant's name
    extra: tuple[str, ...] = ()  # the variant's overrides, after the run's own

    def overrides(self, spec: ProtocolSpec) -> list[str]:
        """``pst-bench`` overrides, later ones replacing earlier ones of the same key."""
        pairs: dict[str, str] = {"model": spec.model, "task": self.task, "method": self.method}
        for item in spec.run_overrides:
            key, value = item.split("=", 1)
            pairs[key] = value
        pairs["train.epochs"] = str(self.epochs)
        if self.method != "finetune":
            pairs["method.sparsity"] = f"{self.sparsity:g}"
        pairs["train.lr"] = f"{self.lr:g}"
        ratio = spec.score_lr_ratio.get(self.method)
        if ratio:
            pairs["method.score_lr"] = f"{self.lr * ratio:g}"
        pairs["train.seed"] = str(self.seed)
        for item in self.extra:
            key, value = item.split("=", 1)
            pairs[key] = value
        pairs["paths.results_dir"] = self.results_dir
        return [f"{key}={value}" for key, value in pairs.items()]

    @property
    def label(self) -> str:
        what = self.variant or self.method
        where = "dense" if self.method == "finetune" else f"{100 * self.sparsity:g}%"
        return f"{self.task} {where} {what} lr {self.lr:g} seed {self.seed} ({self.epochs} ep)"


@dataclass(frozen=True)
class Settled:
    """A settled grid: its winner's selection-seed record, the points it ranked and the decision in words."""

    winner: RunRecord
    points: tuple[float, ...]
    decision: str


@dataclass
class Planned:
    request: RunRequest  # the first (highest-priority) request of this run id
    record: RunRecord | None  # None while it has not finished
    rid: str = ""
    # every results folder a stage wants the record in (the probe's folder, then the protocol's)
    folders: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.record is not None


@dataclass
class Plan:
    runs: list[Planned] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)  # what was decided and why, in order
    blocked: list[str] = field(default_factory=list)  # stages that cannot go on, and why
    epochs: dict[str, int] = field(default_factory=dict)  # the chosen schedule per task
    cells: dict[str, list[float]] = field(default_factory=dict)  # claim-1 cells per task

    @property
    def pending(self) -> list[Planned]:
        return [run for run in self.runs if not run.finished]


class Ledger(Protocol):
    """What the plan asks of the finished runs (``execute.Ledger``: composes the id, looks it up)."""

    def run_id(self, request: RunRequest) -> str: ...

    def lookup(self, request: RunRequest) -> RunRecord | None: ...
