"""The evidence protocol's spec: what a protocol file under ``conf/protocol/`` may say, typed.

A spec names the runs' common overrides, the tasks, the schedule probe's candidate lengths, the stage-0
sparsities and the rule that turns them into cells, each method's learning-rate grid, the selection and
held-out seeds, and the ablation (claims 3-4). ``plan.py`` turns a spec and the finished records into
runs; nothing else reads the file. ``base: <name>`` starts from another spec of the folder and changes
only what the file says (``gpu.yaml`` is ``cpu.yaml`` on a GPU).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..errors import ConfigError

#: Where the named specs live: the top-level conf/protocol/, shipped as the package pst_bench.conf.
SPEC_PACKAGE = "pst_bench.conf"
SPEC_FOLDER = "protocol"
#: Keys whose value a spec replaces whole instead of merging into its base's.
REPLACED_WHOLE = ("ablation.variants", "baselines.grids")


@dataclass
class ScheduleSpec:
    """The schedule probe: MaP and PST at each task's hardest reported sparsity, on the selection seed,
    for each candidate length (shortest first); a task's length is the first at which every probed
    method's last epoch, wholly at the final sparsity, gains less than ``limit`` points."""

    epochs: list[int] = field(default_factory=lambda: [6, 10, 16])
    sparsity: dict[str, float] = field(default_factory=dict)
    methods: list[str] = field(default_factory=lambda: ["map", "pst"])
    limit: float = 0.5
    # a probe run below this share of the best probe run of its length learned too little to judge one
    share: float = 0.6
    results_dir: str = "results/schedule"


@dataclass
class CellRule:
    """Stage 0 -> claim-1 cells: a sparsity of at least ``min_sparsity`` where dense beats its constant
    predictor by ``dense_margin`` points and MaP (seed 0, its middle learning rate) keeps a share of dense's
    best dev value inside ``map_share`` (MaP still learns but loses: the paper's regime)."""

    min_sparsity: float = 0.6
    dense_margin: float = 2.0
    map_share: list[float] = field(default_factory=lambda: [0.6, 0.97])


@dataclass
class Claim2Spec:
    sparsity: float = 0.5
    methods: list[str] = field(default_factory=lambda: ["map", "pst"])


@dataclass
class AblationSpec:
    """Claims 3-4: PST's variants at PST's winning learning rate of one cell, on ``seeds`` (held out).
    Each variant is a list of overrides; the full score (``method=pst``) runs too, as their reference."""

    task: str = "sst2"
    sparsity: float = 0.9
    seeds: list[int] = field(default_factory=lambda: [1, 2, 3])
    variants: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class BaselinesSpec:
    """Methods beyond the paper (issue 24: gradual and one-shot Wanda, SparseGPT), run after the paper's
    claims at every claim-1 cell: tuned on the selection seed like the others, then on the held-out seeds."""

    grids: dict[str, list[float]] = field(default_factory=dict)


@dataclass
class SoftMovementSpec:
    """Soft movement pruning (issue 24) at one cell: its sparsity is an outcome of the penalty λ, so λ is
    searched on the selection seed (geometric steps of ``step`` until the target is bracketed, then
    bisection in log λ) until a run lands within ``tolerance`` of the cell's sparsity, at most ``max_tries``
    runs; the weights train at MvP's winning rate of the cell (its scores at the method's own score_lr);
    then the held-out ``seeds`` at the λ found. ``task: null`` leaves it out."""

    task: str | None = None
    sparsity: float = 0.9
    seeds: list[int] = field(default_factory=lambda: [1, 2, 3])
    start_lambda: float = 400.0
    step: float = 4.0
    tolerance: float = 0.01
    max_tries: int = 8


@dataclass
class MoreSeedsSpec:
    """More held-out seeds where a claim-1 cell's paired differences spread widely (``protocol.seeds``:
    Stein's two-stage rule): for each ``pairs`` entry [a, b], the differences a − b (points x100) over the
    first held-out seeds; the cell's sparse methods then run on the next seeds up to the count the widest
    pair needs for a 95% interval of ``half_width`` points, at most ``max_seeds`` in all. No pairs: off."""

    pairs: list[list[str]] = field(default_factory=list)
    half_width: float = 1.0
    max_seeds: int = 10


@dataclass
class ProtocolSpec:
    name: str = ""
    base: str | None = None
    model: str = "minilm-l6"
    results_dir: str = "results/runs"
    run_overrides: list[str] = field(default_factory=list)  # every run's, before its own
    tasks: list[str] = field(default_factory=lambda: ["sst2", "stsb"])
    selection_seed: int = 0
    heldout_seeds: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5])
    more_seeds: MoreSeedsSpec = field(default_factory=MoreSeedsSpec)
    schedule: ScheduleSpec = field(default_factory=ScheduleSpec)
    sparsities: list[float] = field(default_factory=lambda: [0.5, 0.6, 0.7, 0.8, 0.9])
    cells: CellRule = field(default_factory=CellRule)
    always_tuned: list[float] = field(default_factory=lambda: [0.9])
    claim2: Claim2Spec = field(default_factory=Claim2Spec)
    # method -> learning-rate points (ascending); the middle one is the method's stage-0 point
    grids: dict[str, list[float]] = field(default_factory=dict)
    # method -> its scores' rate as a multiple of train.lr (method.score_lr), a stated rule
    score_lr_ratio: dict[str, float] = field(default_factory=dict)
    max_extensions: int = 2  # points a grid may grow beyond each edge while its winner sits there
    ablation: AblationSpec = field(default_factory=AblationSpec)
    baselines: BaselinesSpec = field(default_factory=BaselinesSpec)
    soft_movement: SoftMovementSpec = field(default_factory=SoftMovementSpec)
    minutes_per_run: dict[str, float] = field(default_factory=dict)  # budget estimate before any run finished
    jobs: int = 1  # runs at once

    @property
    def sparse_methods(self) -> list[str]:
        return [method for method in self.grids if method != "finetune"]


def _spec_text(name: str) -> str:
    path = Path(name)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.exists():
            raise ConfigError(f"protocol spec {name}: no such file (give a path or a name in conf/{SPEC_FOLDER}/)")
        return path.read_text()
    try:
        return (resources.files(SPEC_PACKAGE) / SPEC_FOLDER / f"{name}.yaml").read_text()
    except FileNotFoundError:
        names = sorted(
            p.name[: -len(".yaml")]
            for p in (resources.files(SPEC_PACKAGE) / SPEC_FOLDER).iterdir()
            if p.name.endswith(".yaml")
        )
        raise ConfigError(
            f"protocol spec {name!r}: unknown; choose one of {', '.join(names)} or give a .yaml path"
        ) from None


def load_spec(name: str) -> ProtocolSpec:
    """The spec ``name`` (a file of conf/protocol/ or a path), its ``base`` chain merged under it, typed."""
    text = _spec_text(name)
    try:
        own = OmegaConf.create(text)
        layers = [own]
        seen = {name}
        while layers[0].get("base"):
            base = str(layers[0].base)
            if base in seen:
                raise ConfigError(f"protocol spec {name}: its base chain loops at {base!r}")
            seen.add(base)
            layers.insert(0, OmegaConf.create(_spec_text(base)))
        merged = OmegaConf.merge(OmegaConf.structured(ProtocolSpec), *layers)
        # sets a spec replaces whole (a merge would keep its base's members)
        for layer in layers:
            for key in REPLACED_WHOLE:
                value = OmegaConf.select(layer, key)
                if value is not None:
                    OmegaConf.update(merged, key, value, merge=False)
    except OmegaConfBaseException as error:
        raise ConfigError(f"protocol spec {name}: {str(error).splitlines()[0]}") from None
    spec: ProtocolSpec = OmegaConf.to_object(merged)
    spec.name = spec.name or Path(name).stem
    check_spec(spec)
    return spec


def check_spec(spec: ProtocolSpec) -> None:
    """One line per problem a spec can have before anything runs."""
    if not spec.grids.get("finetune") or not spec.grids.get("map"):
        raise ConfigError(f"protocol spec {spec.name}: grids needs finetune and map (the cell rule's dense and MaP)")
    for where, grids in (("grids", spec.grids), ("baselines.grids", spec.baselines.grids)):
        for method, points in grids.items():
            if len(points) < 1 or sorted(points) != list(points):
                raise ConfigError(f"protocol spec {spec.name}: {where}.{method} must be ascending learning rates")
    for method in spec.baselines.grids:
        if method in spec.grids:
            raise ConfigError(f"protocol spec {spec.name}: {method} is in grids and baselines.grids; name it once")
    for task in spec.tasks:
        if task not in spec.schedule.sparsity:
            raise ConfigError(f"protocol spec {spec.name}: schedule.sparsity has no entry for task {task}")
    if spec.selection_seed in spec.heldout_seeds or spec.selection_seed in spec.ablation.seeds:
        raise ConfigError(f"protocol spec {spec.name}: the selection seed {spec.selection_seed} may not be reported")
    low, high = spec.cells.map_share
    if not 0 < low < high:
        raise ConfigError(f"protocol spec {spec.name}: cells.map_share must be [low, high] with 0 < low < high")
    if spec.schedule.epochs != sorted(spec.schedule.epochs):
        raise ConfigError(f"protocol spec {spec.name}: schedule.epochs must be ascending (shortest first)")
    soft = spec.soft_movement
    if soft.task is not None and (soft.task not in spec.tasks or spec.selection_seed in soft.seeds):
        raise ConfigError(f"protocol spec {spec.name}: soft_movement.task must be one of tasks and its seeds held out")
    if soft.step <= 1.0 or soft.start_lambda <= 0.0:
        raise ConfigError(f"protocol spec {spec.name}: soft_movement needs start_lambda > 0 and step > 1")
    more = spec.more_seeds
    if any(len(pair) != 2 or not set(pair) <= set(spec.sparse_methods) for pair in more.pairs):
        raise ConfigError(
            f"protocol spec {spec.name}: more_seeds.pairs must be [a, b] pairs of the grids' sparse methods"
        )
    if more.pairs and (more.max_seeds < len(spec.heldout_seeds) or more.half_width <= 0):
        raise ConfigError(
            f"protocol spec {spec.name}: more_seeds needs half_width > 0 and max_seeds >= the held-out seeds"
        )
    if spec.jobs < 1:
        raise ConfigError(f"protocol spec {spec.name}: jobs must be at least 1")
