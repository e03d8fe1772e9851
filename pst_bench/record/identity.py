"""A run's identity: the resolved config minus what does not change its results, hashed into the run id
(the same command gives the same id, so it resumes and a finished run is not trained twice)."""

from __future__ import annotations

import copy
import hashlib
import json

from omegaconf import OmegaConf

from ..methods import STRUCTURE_DEFAULTS

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
