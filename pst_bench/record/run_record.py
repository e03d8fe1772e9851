"""Reading records: ``RunRecord``, what reports read a record through, and the loaders that validate each
file (``load_record``, ``load_records``, ``as_record``)."""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from ..methods import find_method, structure_of
from ..methods.pst import SCORE_TERMS  # PST's score terms, in the order of the paper's labels
from .format import RecordError, RecordSkipped, validate
from .identity import identity_config

#: Settings that name a run or repeat it, not what it is: left out of ``RunRecord.setting``.
_NOT_A_SETTING = ("train.seed", "method.name", "method.paper_label")
#: Subset settings: a run with any of them set is not comparable to the paper (``is_short``).
# A run whose most-predicted class covers at least this share of the dev set, or whose regression
# predictions spread less than this fraction of the labels' standard deviation, predicts a constant.
CONSTANT_CLASS_SHARE = 0.99
CONSTANT_STD_RATIO = 0.05
#: A run whose sparsity a penalty sets (soft movement pruning) belongs to the cell of its nominal target only
#: when its achieved sparsity lies this close to it (absolute, as a fraction): ``RunRecord.cell_sparsity``.
ACHIEVED_SPARSITY_TOLERANCE = 0.01
BUDGET_KEYS = (
    "model.name",
    "task.name",
    "train.max_train_examples",
    "train.max_eval_examples",
    "train.epochs",
    "train.max_steps",
    "train.batch_size",
    "train.grad_accum_steps",
)
SUBSET_KEYS = ("train.max_train_examples", "train.max_eval_examples", "train.max_steps", "nlg.max_decode_examples")


def _flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    """{"train.lr": 3e-4, ...}: a nested config as dotted keys (lists stay values)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _finite_number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True)
class RunRecord:
    """One validated results record; ``name`` is its path relative to the folder it was read from."""

    path: Path
    name: str
    data: dict

    # -- identity -----------------------------------------------------------------
    @property
    def run_id(self) -> str:
        return str(self.data.get("run_id") or self.path.stem)

    @property
    def task(self) -> str:
        return str(self.data["task"])

    @property
    def model(self) -> str:
        return str(self.data["model"])

    @property
    def method(self) -> str:
        """The method's config name (``pst_mag_ab_rc``); ``computation`` says what it computes."""
        return str(self.data["method"])

    @property
    def seed(self) -> int:
        return int(self.data["seed"])

    @property
    def sparsity(self) -> float:
        """Target sparsity as a fraction."""
        return float(self.data["sparsity"])

    @property
    def sparsity_pct(self) -> float:
        return round(100.0 * self.sparsity, 4)

    @property
    def sparsity_control(self) -> str:
        """``schedule`` (the masks keep exactly the target) or ``penalty`` (the achieved sparsity is an
        outcome of a penalty: soft movement pruning); records without the key are ``schedule``."""
        return str(self.data.get("sparsity_control") or "schedule")

    @property
    def achieved_sparsity(self) -> float | None:
        """The pruned share of all sparsified weights under the final masks, as measured; None if absent."""
        return _finite_number((self.data.get("sparsity_achieved") or {}).get("overall"))

    def cell_sparsity(self, tolerance: float = ACHIEVED_SPARSITY_TOLERANCE) -> float | None:
        """The sparsity of the cell this run belongs to: its target where the schedule sets it; where a
        penalty does, the nominal target only when the achieved sparsity lies within ``tolerance`` of it,
        else None (the run matches no cell and is compared with none)."""
        if self.sparsity_control == "schedule":
            return self.sparsity
        achieved = self.achieved_sparsity
        return self.sparsity if achieved is not None and abs(achieved - self.sparsity) <= tolerance else None

    @property
    def config(self) -> dict:
        return self.data.get("config") or {}

    @property
    def method_config(self) -> dict:
        return self.config.get("method") or {}

    @property
    def family(self) -> str:
        """The task family: ``glue`` (classification/regression) or ``nlg`` (generation)."""
        kind = (self.config.get("task") or {}).get("kind")
        if kind:
            return str(kind)
        return "nlg" if "generation" in self.data else "glue"

    # -- what the method computes -----------------------------------------------------
    @property
    def kind(self) -> str:
        return str(self.method_config.get("kind") or self.data.get("method_kind") or self.method.split("_")[0])

    @property
    def score_terms(self) -> tuple[str, ...]:
        """PST's importance-score terms in the paper's order (all three unless the config says otherwise)."""
        terms = self.method_config.get("score_terms")
        if not isinstance(terms, list) or not terms:
            return SCORE_TERMS
        return tuple(term for term in SCORE_TERMS if term in terms)

    @property
    def structure(self) -> tuple[str, ...]:
        """The mask structure where it is not the paper's, e.g. ("2:4",), ("units:ffn+head", "global");
        () for one unstructured top-v per matrix."""
        values = structure_of(self.method_config)
        pattern = values["pattern"]
        if pattern == "block":
            pattern = "block:" + "x".join(str(v) for v in values["block_shape"])
        elif pattern == "units":
            pattern = "units:" + "+".join(values["units"])
        parts = () if pattern == "unstructured" else (pattern,)
        return parts + (() if values["scope"] == "layer" else (values["scope"],))

    @property
    def computation(self) -> tuple[str, ...]:
        """What the method computes, independent of its config name: ("pst", "mag", "ab", "rc"), then the
        mask structure where it is not the paper's (so a 2:4 run never shares a cell with the paper's)."""
        base = ("pst", *self.score_terms) if self.kind == "pst" else (self.kind,)
        method = find_method(self.kind)  # a variant its registry entry names (one-shot Wanda: "oneshot")
        return base + (method.variant(self.method_config) if method is not None else ()) + self.structure

    @property
    def ranks(self) -> tuple[int | None, int | None]:
        """(r1, r2) of a PST record; (None, None) for the other methods."""
        if self.kind != "pst":
            return None, None
        r1, r2 = self.method_config.get("r1"), self.method_config.get("r2")
        return (None if r1 is None else int(r1)), (None if r2 is None else int(r2))

    @cached_property  # reports ask for it once per comparison; the config never changes
    def setting(self) -> dict[str, Any]:
        """Every identity setting of the run except its seed and names, as dotted keys."""
        flat = _flatten(identity_config(self.config))
        for key in _NOT_A_SETTING:
            flat.pop(key, None)
        return flat

    @property
    def budget(self) -> dict[str, Any]:
        """The training protocol (data, epochs, steps, batch): two runs compare like with like only on one."""
        flat = _flatten(self.config)
        return {key: flat.get(key) for key in BUDGET_KEYS}

    @property
    def is_short(self) -> bool:
        """True when the run trained, evaluated or decoded on a subset (not comparable to the paper)."""
        flat = _flatten(self.config)
        return any(flat.get(key) is not None for key in SUBSET_KEYS)

    @property
    def dirty(self) -> bool:
        """True when the run came from a checkout with uncommitted changes (``git.dirty``); a record
        without git information (or with an unknown state) counts as clean."""
        git = self.data.get("git")
        return isinstance(git, dict) and git.get("dirty") is True

    # -- values ---------------------------------------------------------------------
    @property
    def main_split(self) -> str:
        return str(self.data["main_split"])

    @property
    def metric(self) -> str:
        return str(self.data.get("metric") or "")

    @property
    def higher_is_better(self) -> bool:
        """The per-epoch main value: a metric (GLUE) or the dev loss (NLG, lower is better)."""
        return self.metric != "loss"

    @property
    def chosen_epoch(self) -> dict | None:
        """The best epoch of the final window (the authors' rule), else the final epoch."""
        for key in ("best_in_final_window", "final"):
            entry = self.data.get(key)
            if isinstance(entry, dict):
                return entry
        return None

    @property
    def prediction_summary(self) -> dict | None:
        """How the main dev split's predictions at the chosen epoch are spread, when the record stores it.

        Classification: ``counts`` per predicted class and ``majority_share``; regression: ``mean``,
        ``std`` beside ``label_mean``, ``label_std`` (``pst_bench.tasks.glue.prediction_summary``).
        """
        entry = self.chosen_epoch or {}
        summary = ((entry.get("eval") or {}).get(self.main_split) or {}).get("predictions")
        return summary if isinstance(summary, dict) else None

    @property
    def constant_predictor(self) -> bool | None:
        """True when the run predicts one class (or one value) on dev, so its metric says nothing of the
        method; None when the record does not say (an older record, a generation task).

        One class: the most-predicted class covers at least ``CONSTANT_CLASS_SHARE`` of the dev set.
        One value: the predictions spread less than ``CONSTANT_STD_RATIO`` of the labels' spread.
        """
        summary = self.prediction_summary
        if summary is None:
            return None
        if "majority_share" in summary:
            return float(summary["majority_share"]) >= CONSTANT_CLASS_SHARE
        label_std = float(summary.get("label_std") or 0.0)
        return float(summary["std"]) < CONSTANT_STD_RATIO * label_std or label_std == 0.0

    @property
    def constant_baseline(self) -> float | None:
        """The best main dev value a constant predictor reaches on this run's dev set, when the record
        stores it (classification records since the baseline was added; ``tasks.glue.constant_baseline``)."""
        best = (self.prediction_summary or {}).get("constant_baseline") or {}
        return _finite_number(best.get("main"))

    @property
    def dev_value(self) -> float | None:
        """The task's main dev value at the chosen epoch; None when absent or not finite."""
        entry = self.chosen_epoch
        return None if entry is None else _finite_number(entry.get("main"))

    def raw_dev_metric(self, metric: str, split: str | None = None):
        """A named dev metric at the chosen epoch as stored (NaN included), or None when absent.

        ``main`` stands in when the named metric is the record's main metric on its main split.
        """
        entry = self.chosen_epoch or {}
        split = split or self.main_split
        scores = (entry.get("eval") or {}).get(split) or {}
        if metric in scores:
            return scores[metric]
        if self.metric == metric and split == self.main_split:
            return entry.get("main")
        return None

    @property
    def ranking_value(self) -> float | None:
        """``dev_value`` signed so that larger is better (the dev loss of generation tasks negated)."""
        value = self.dev_value
        if value is None:
            return None
        return value if self.higher_is_better else -value

    def dev_metric(self, metric: str, split: str | None = None) -> float | None:
        """``raw_dev_metric`` as a float; None when absent or not finite."""
        return _finite_number(self.raw_dev_metric(metric, split))

    @property
    def test_metrics(self) -> dict | None:
        """The generation metrics of the test split (NLG), or None."""
        try:
            metrics = self.data["generation"]["test"]["metrics"]
        except (KeyError, TypeError):
            return None
        return metrics if isinstance(metrics, dict) else None

    @property
    def params(self) -> dict:
        return self.data.get("params") or {}

    def artifact(self, key: str) -> Path | None:
        """A file saved beside the record (``masks``, ``scores``), or None."""
        name = (self.data.get("artifacts") or {}).get(key)
        return self.path.parent / name if name else None


def load_record(path: Path, root: Path | None = None) -> RunRecord:
    """The validated record in ``path``; RecordError says why it is unusable."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise RecordError(f"not readable JSON ({err})") from None
    validate(data)
    name = path.relative_to(root).as_posix() if root is not None else path.name
    return RunRecord(path=path, name=name, data=data)


def iter_record_files(folder: Path) -> Iterator[Path]:
    """Every ``*.json`` file under ``folder``, sub-folders included, in path order."""
    return (path for path in sorted(Path(folder).rglob("*.json")) if path.is_file())


def load_records(folder: Path) -> list[RunRecord]:
    """Every usable record under ``folder`` (recursively); each other ``.json`` file warns once."""
    records = []
    for path in iter_record_files(folder):
        try:
            records.append(load_record(path, root=Path(folder)))
        except RecordError as why:
            warnings.warn(f"{path}: skipped, {why}", RecordSkipped, stacklevel=2)
    return records


def as_record(data: dict, name: str = "record.json") -> RunRecord:
    """A RunRecord from an in-memory dict (validated), e.g. the return value of a run."""
    validate(data)
    return RunRecord(path=Path(name), name=name, data=data)
