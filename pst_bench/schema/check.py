"""`pst-bench info=check ...`: everything a run would find wrong before it trains, one line per problem.

Composition (types, unknown keys, the typed choices of ``train.device`` / ``train.mixed_precision``)
is checked before Hydra starts (``precheck``); ``check_config`` then looks at what composing cannot:

- **values**: ranges and combinations (``validate.validate_config``; the first one wrong, since later
  checks assume the earlier hold);
- **device**: ``train.device=cuda`` with no CUDA device visible;
- **precision**: bf16 on a GPU without bf16, fp16 on the CPU (accelerate does not autocast there: the run
  would silently train in float32);
- **data**: the local folder and its split files (GLUE: every split the run reads; NLG: the task folder),
  or, with the hub as the source and ``HF_HUB_OFFLINE=1``, the dataset in the local caches;
- **model**: the weights (``model.local_dir`` with config.json and a weights file, an installed
  package, or a hub id in the local cache) and the tokenizer likewise.

Nothing is downloaded and the network is never contacted: with the hub online, a hub id missing from the
cache is reported as what the run will download, not as a problem.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import PstBenchError

_WEIGHT_FILES = ("*.safetensors", "*.bin", "*.safetensors.index.json", "*.bin.index.json")


@dataclass
class CheckReport:
    """What ``check_config`` found: ``problems`` (each one line) and ``notes`` (what was checked)."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_config(cfg) -> CheckReport:
    """Every check of the module docstring on a composed run config; trains nothing, downloads nothing."""
    report = CheckReport()
    for part in (_check_values, _check_device_and_precision, _check_data, _check_model):
        try:
            part(cfg, report)
        except PstBenchError as err:  # a check that could not finish says why, in one line
            report.problems.append(_one_line(err))
    return report


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())


# --------------------------------------------------------------------------- values


def _check_values(cfg, report: CheckReport) -> None:
    from .validate import validate_config

    validate_config(cfg)  # raises ConfigError (one line) at the first value out of range
    report.notes.append(f"config: method={cfg.method.name} sparsity={cfg.method.sparsity}, values in range")


# --------------------------------------------------------------------------- device and precision


def _check_device_and_precision(cfg, report: CheckReport) -> None:
    import torch

    device, precision = str(cfg.train.device), str(cfg.train.mixed_precision)
    cuda = torch.cuda.is_available()
    if device == "cuda" and not cuda:
        report.problems.append("train.device=cuda but no CUDA device is visible; use train.device=auto or cpu")
        return
    runs_on = "cuda" if device == "cuda" or (device == "auto" and cuda) else "cpu"
    if precision == "bf16" and runs_on == "cuda" and not torch.cuda.is_bf16_supported():
        name = torch.cuda.get_device_name()
        report.problems.append(
            f"train.mixed_precision=bf16 but the GPU ({name}) has no bf16; use train.mixed_precision=fp16"
        )
    elif precision == "fp16" and runs_on == "cpu":
        report.problems.append(
            "train.mixed_precision=fp16 on the CPU: accelerate does not autocast to fp16 there and the run "
            "would train in float32; use train.mixed_precision=bf16 or no"
        )
    else:
        report.notes.append(f"device: {runs_on} (train.device={device}), mixed precision {precision}")


# --------------------------------------------------------------------------- data


def _check_data(cfg, report: CheckReport) -> None:
    from ..data.source import configured_dir
    from ..tasks import task_kind

    kind = task_kind(cfg.task)
    folder = configured_dir(cfg.data)
    if folder is not None:
        problem = _glue_files_problem(cfg, folder) if kind == "glue" else _nlg_folder_problem(cfg, folder)
        if problem:
            report.problems.append(problem)
        else:
            report.notes.append(f"data: task={cfg.task.name} from {folder}")
        return
    repo = str(cfg.data.hub_dataset) if kind == "glue" else str(cfg.task.get("hub_dataset") or "")
    cached = bool(repo) and _dataset_cached(repo)
    from ..hub import hub_offline

    if cached:
        report.notes.append(f"data: task={cfg.task.name} from the cached hub dataset {repo}")
    elif hub_offline():
        report.problems.append(
            f"data: task={cfg.task.name} has no local folder (data.dir and PST_DATA_DIR are unset) and the hub "
            f"dataset {repo or '(none named)'} is not in the local cache while the hub is offline (HF_HUB_OFFLINE=1); "
            f"set data.dir=/path/to/data or PST_DATA_DIR (docs/usage.md, Data)"
        )
    else:
        report.notes.append(f"data: task={cfg.task.name} from the hub dataset {repo}, downloaded when the run starts")


def _glue_files_problem(cfg, folder: Path) -> str | None:
    from ..data.glue import LAYOUTS

    local_dir = str(cfg.task.local_dir)
    candidates = [folder / local_dir, folder / "glue" / local_dir]
    task_dir = next((c for c in candidates if c.is_dir()), None)
    layout = LAYOUTS.get(str(cfg.task.name))
    files = layout.split_files if layout is not None else {}
    wanted = [s for s in ("train", *cfg.task.eval_splits) if s in files]
    if task_dir is None:
        expected = ", ".join(f"{local_dir}/{files[s]}" for s in wanted)
        return (
            f"data: no {local_dir} folder for task={cfg.task.name} in {folder} (looked in "
            f"{', '.join(str(c) for c in candidates)}); it needs {expected} (set data.dir or PST_DATA_DIR)"
        )
    missing = [files[s] for s in wanted if not (task_dir / files[s]).is_file()]
    if missing:
        return f"data: {task_dir} lacks {', '.join(missing)} (splits {', '.join(wanted)} of task={cfg.task.name})"
    return None


def _nlg_folder_problem(cfg, folder: Path) -> str | None:
    local_dir = str(cfg.task.get("local_dir") or cfg.task.name)
    candidates = [folder / local_dir, folder / "nlg" / local_dir]
    if any(c.is_dir() for c in candidates):
        return None
    looked = ", ".join(str(c) for c in candidates)
    return f"data: no {local_dir} folder for task={cfg.task.name}: looked in {looked} (set data.dir or PST_DATA_DIR)"


def _dataset_cached(repo: str) -> bool:
    """A hub dataset in the hub cache (its snapshot) or in datasets' own cache (its prepared copy)."""
    import datasets
    import huggingface_hub.constants as hub_constants

    hub = Path(hub_constants.HF_HUB_CACHE) / f"datasets--{repo.replace('/', '--')}" / "snapshots"
    prepared = Path(datasets.config.HF_DATASETS_CACHE) / repo.replace("/", "___")
    return _non_empty(hub) or _non_empty(prepared)


# --------------------------------------------------------------------------- model


def _check_model(cfg, report: CheckReport) -> None:
    from ..errors import ModelLoadError
    from ..models.loading import tokenizer_source, weights_source

    model = cfg.model
    if model.random_init:
        report.notes.append(f"model: {model.name}, random weights (model.random_init=true)")
    else:
        try:
            source, _ = weights_source(model)
        except ModelLoadError as err:
            report.problems.append(f"model: {_one_line(err)}")
        else:
            _check_source(f"model {model.name}", source, report, weights=True)
    if not (model.tokenizer or model.random_init):
        return  # the tokenizer comes from the weights' source, checked above
    try:
        source, _ = tokenizer_source(model)
    except ModelLoadError as err:
        report.problems.append(f"tokenizer: {_one_line(err)}")
    else:
        _check_source(f"tokenizer of {model.name}", source, report, weights=False)


def _check_source(what: str, source: str, report: CheckReport, weights: bool) -> None:
    """A local folder (with a weights file when ``weights``) or a hub id in the cache (offline: required)."""
    from ..hub import hub_offline

    folder = Path(source).expanduser()
    if folder.is_dir():
        if weights and not any(any(folder.glob(pattern)) for pattern in _WEIGHT_FILES):
            report.problems.append(f"{what}: {folder} has config.json but no weights file (*.safetensors, *.bin)")
        else:
            report.notes.append(f"{what}: {folder}")
        return
    if _model_cached(source):
        report.notes.append(f"{what}: {source} (hub cache)")
    elif hub_offline():
        report.problems.append(
            f"{what}: {source!r} is not in the local hub cache and the hub is offline (HF_HUB_OFFLINE=1); "
            "point model.local_dir at a folder with the weights, or use model=minilm-l6 (bundled)"
        )
    else:
        report.notes.append(f"{what}: {source} from the hub, downloaded when the run starts")


def _model_cached(repo: str) -> bool:
    import huggingface_hub.constants as hub_constants

    return _non_empty(Path(hub_constants.HF_HUB_CACHE) / f"models--{repo.replace('/', '--')}" / "snapshots")


def _non_empty(folder: Path) -> bool:
    try:
        return folder.is_dir() and any(os.scandir(folder))
    except OSError:
        return False
