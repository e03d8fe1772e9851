"""The results record: the one owner of what a finished run writes and what reports read from it.

A run writes one JSON record at its end (``build_record``, then
``files.write_json_atomic``). Reports never parse the JSON themselves: they call
``load_records`` (or ``load_record``), which validates each file and hands back a
``RunRecord``, and they read values only through its properties:

- identity: ``task``, ``model``, ``method`` (the config name), ``seed``, ``sparsity``;
- what the method computes, whatever its name (``computation``: ``pst`` and
  ``pst_mag_ab_rc`` are one), and its ranks;
- ``setting``: every other setting that can change the result (learning rate,
  epochs, data subset, ...), so that a report can tell a hyperparameter grid from
  repeated seeds (see ``pst_bench.report.selection``);
- the values: ``dev_value`` (the task's main dev metric at the best epoch of the final
  30% window, else the final epoch: the authors' selection rule), ``dev_metric`` for a
  named metric, ``test_metrics`` for the generation tasks.

Files that are not a usable record are skipped with a ``RecordSkipped`` warning that
names the file and says why (missing keys by name, a status other than finished, ...).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import platform
import subprocess
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from .methods import STRUCTURE_DEFAULTS, find_method, structure_of
from .methods.pst import SCORE_TERMS  # PST's score terms, in the order of the paper's labels

SCHEMA_VERSION = 1
READABLE_SCHEMAS = (1,)
FINISHED = "finished"
#: Keys every finished record has; a record missing any is skipped (with the names).
REQUIRED_KEYS = ("status", "task", "model", "method", "sparsity", "seed", "main_split", "final")
#: Settings that say where/how a run executes, not what it computes: not part of its identity.
_NON_IDENTITY_KEYS = {
    "paths": None,
    "data": ["dir"],
    "info": None,
    "export": None,
    "export_compressed": None,
    "export_slim": None,
    "run_name": None,
    "artifacts": None,
    "train": [
        "resume",
        "progress_bar",
        "device",
        "num_workers",
        "checkpoint_every_steps",
        "eval_batch_size",
        "log_with",  # tracking and diagnostics observe a run; they never change it
        "diagnostics_every_steps",
    ],
    # where a model's FFN neurons and heads live: architecture facts, not a setting (the pattern is one)
    "model": ["units"],
}
#: Keys added after records existed, left out of the identity while they hold the value that reproduces the
#: older behaviour, so the runs made before them keep their ids.
_LATER_DEFAULTS = {
    "train": {"group_by_length": False},
    # a dataset of one's own (GlueTaskConfig): the GLUE tasks hold these defaults
    "task": {
        "data_format": None,
        "data_files": {},
        "label_column": "label",
        "label_values": None,
        "data_hub": None,
        "data_hub_config": None,
    },
}
#: Keys whose only effect is another identity key's value, added after records existed: method.lr.paper
#: feeds train.lr at paper scale (the resolved train.lr is the identity), so runs keep their ids.
_FEEDS_ANOTHER_KEY = (("method", "lr", "paper"),)
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
_VERSIONED = (
    "torch",
    "transformers",
    "datasets",
    "accelerate",
    "evaluate",
    "hydra-core",
    "omegaconf",
    "scikit-learn",
    "scipy",
    "numpy",
    "pst-bench",
)


class RecordSkipped(UserWarning):
    """A file under a runs folder that no report uses (unreadable, not finished, incomplete)."""


class RecordError(ValueError):
    """Why one file is not a usable results record."""


# --------------------------------------------------------------------------- run identity


def identity_config(cfg) -> dict:
    """The resolved config minus the keys that do not change the results, and minus the mask-structure
    keys that hold their default (runs from before those keys existed keep their ids)."""
    # a stored record's config is copied: the pops below must not change the record
    # enum_to_str: typed choices (train.device, train.mixed_precision) hash as the strings they always were
    plain = copy.deepcopy(cfg) if isinstance(cfg, dict) else OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    for key, sub in _NON_IDENTITY_KEYS.items():
        if sub is None:
            plain.pop(key, None)
        else:
            for name in sub:
                (plain.get(key) or {}).pop(name, None)
    for key, defaults in _LATER_DEFAULTS.items():
        section = plain.get(key) or {}
        for name, default in defaults.items():
            if name in section and section[name] == default:
                section.pop(name)
    for section, sub, name in _FEEDS_ANOTHER_KEY:
        inner = (plain.get(section) or {}).get(sub)
        if isinstance(inner, dict):
            inner.pop(name, None)
    method = plain.get("method") or {}
    for name, default in STRUCTURE_DEFAULTS.items():
        if name in method and method[name] == default:
            method.pop(name)
    return plain


def config_hash(cfg) -> str:
    blob = json.dumps(identity_config(cfg), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def run_id(cfg) -> str:
    """A deterministic name: the same command gives the same id, so it resumes."""
    if cfg.get("run_name"):
        return str(cfg.run_name)
    sparsity = round(float(cfg.method.sparsity) * 100)
    return f"{cfg.task.name}_{cfg.model.name}_{cfg.method.name}_p{sparsity}_s{cfg.train.seed}_{config_hash(cfg)}"


# --------------------------------------------------------------------------- writing


def library_versions() -> dict:
    versions = {"python": platform.python_version()}
    for dist in _VERSIONED:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return versions


def git_state() -> dict:
    """Commit of the checkout pst-bench runs from (the current folder, else the package's)."""
    for where in (Path.cwd(), Path(__file__).resolve().parent):
        try:
            commit = subprocess.run(
                ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            dirty = (
                subprocess.run(
                    ["git", "status", "--porcelain", "--untracked-files=no"],
                    cwd=where,
                    capture_output=True,
                    text=True,
                    timeout=10,
                ).stdout.strip()
                != ""
            )
            return {"commit": commit, "dirty": dirty}
        except (OSError, subprocess.SubprocessError):
            continue
    return {"commit": None, "dirty": None}


def _epoch_summary(entry: dict | None, main_split: str) -> dict | None:
    if entry is None:
        return None
    return {"epoch": entry["epoch"], "main": entry["eval"][main_split]["main"], "eval": entry["eval"]}


def build_record(
    cfg,
    *,
    rid: str,
    metric: str,
    history: list[dict],
    final: dict,
    best: dict | None,
    steps: dict,
    train_examples: int,
    eval_examples: dict,
    params: dict,
    sparsity_achieved: dict,
    wall_time_s: float,
    device: str,
    num_processes: int,
    checkpoint_dir: str,
    extra: dict | None = None,
    diagnostics: list | None = None,
) -> dict:
    """The record of a finished run (schema ``SCHEMA_VERSION``), before exports are added.

    ``final`` and ``best`` are entries of ``history`` (``best``: the best epoch in the
    final window, or None); ``extra`` holds what the task runner adds (NLG: ``generation``);
    ``diagnostics`` the loop's averaged mask and score measurements ({step, mean}, every N steps).
    """
    main_split = str(cfg.task.main_split)
    method = find_method(str(cfg.method.kind))
    control = method.sparsity_control if method is not None else "schedule"
    return {
        "schema": SCHEMA_VERSION,
        "status": FINISHED,
        "run_id": rid,
        "task": cfg.task.name,
        "model": cfg.model.name,
        "method": cfg.method.name,
        "method_kind": cfg.method.kind,
        "paper_label": cfg.method.get("paper_label"),
        "sparsity": float(cfg.method.sparsity),
        "seed": int(cfg.train.seed),
        "metric": metric,
        "main_split": main_split,
        "final": _epoch_summary(final, main_split),
        "best_in_final_window": _epoch_summary(best, main_split),
        "epochs": history,
        "diagnostics": diagnostics or [],
        "steps": steps,
        "train_examples": train_examples,
        "eval_examples": eval_examples,
        "params": params,
        "sparsity_achieved": sparsity_achieved,
        # a penalty sets the sparsity (soft movement pruning): the achieved one decides the run's cell
        **({"sparsity_control": control} if control != "schedule" else {}),
        "wall_time_s": round(wall_time_s, 2),
        "device": device,
        "num_processes": num_processes,
        "versions": library_versions(),
        "git": git_state(),
        "config": OmegaConf.to_container(cfg, resolve=True, enum_to_str=True),
        **(extra or {}),
        "checkpoint_dir": checkpoint_dir,
        "export_dir": None,
        "export_compressed": None,
    }


def read_record(path: Path) -> dict | None:
    """The raw JSON of a record file, or None when it is missing or unreadable (resume checks)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


# --------------------------------------------------------------------------- reading


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


def validate(data: Any) -> None:
    """Raise RecordError saying why ``data`` is not a usable finished record."""
    if not isinstance(data, dict):
        raise RecordError("not a results record (not a JSON object)")
    if data.get("status") not in (None, FINISHED):  # a run still going (or failed): say so first
        raise RecordError(f"status is {data['status']!r}, not {FINISHED!r}")
    missing = [key for key in REQUIRED_KEYS if data.get(key) is None]
    if missing:
        raise RecordError(f"missing key(s): {', '.join(missing)}")
    schema = data.get("schema", SCHEMA_VERSION)
    if schema not in READABLE_SCHEMAS:
        raise RecordError(f"schema {schema!r} is not one this version reads ({READABLE_SCHEMAS})")
    for key, kind in (
        ("task", str),
        ("model", str),
        ("method", str),
        ("main_split", str),
        ("seed", int),
        ("sparsity", (int, float)),
        ("final", dict),
    ):
        if not isinstance(data[key], kind) or isinstance(data[key], bool):
            raise RecordError(f"{key!r} has the wrong type ({type(data[key]).__name__})")
    if not 0.0 <= float(data["sparsity"]) < 1.0:
        raise RecordError(f"sparsity {data['sparsity']} outside [0, 1)")
    for key in ("config", "artifacts", "params"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            raise RecordError(f"{key!r} is not an object")
    method_cfg = (data.get("config") or {}).get("method") or {}
    if (method_cfg.get("kind") or data.get("method_kind")) == "pst":
        absent = [f"config.method.{k}" for k in ("r1", "r2") if method_cfg.get(k) is None]
        if absent:
            raise RecordError(f"missing key(s): {', '.join(absent)}")


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
