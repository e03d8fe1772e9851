"""Run identity and results records, written atomically.

A record is written once, at the end of a finished run, through a temporary
file in the same folder and ``os.replace``: a killed run leaves either no record
or the complete previous one, never a partial file.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path

from omegaconf import OmegaConf

# Keys that say where/how a run executes, not what it computes: they do not change its identity.
_NON_IDENTITY_KEYS = {
    "paths": None, "data": ["dir"], "info": None, "export": None, "export_compressed": None, "run_name": None,
    "artifacts": None,
    "train": ["resume", "progress_bar", "device", "num_workers", "checkpoint_every_steps",
              "eval_batch_size"],
}
_VERSIONED = ("torch", "transformers", "datasets", "accelerate", "evaluate", "hydra-core",
              "omegaconf", "scikit-learn", "scipy", "numpy", "pst-bench")


def identity_config(cfg) -> dict:
    """The resolved config minus the keys that do not change the results."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    for key, sub in _NON_IDENTITY_KEYS.items():
        if sub is None:
            plain.pop(key, None)
        else:
            for name in sub:
                plain.get(key, {}).pop(name, None)
    return plain


def config_hash(cfg) -> str:
    blob = json.dumps(identity_config(cfg), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def run_id(cfg) -> str:
    """A deterministic name: the same command gives the same id, so it resumes."""
    if cfg.get("run_name"):
        return str(cfg.run_name)
    sparsity = round(float(cfg.method.sparsity) * 100)
    return (f"{cfg.task.name}_{cfg.model.name}_{cfg.method.name}_p{sparsity}_"
            f"s{cfg.train.seed}_{config_hash(cfg)}")


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; results should read like any file
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, payload: dict) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")


def read_record(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


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
            commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True,
                                    text=True, timeout=10, check=True).stdout.strip()
            dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=where,
                                   capture_output=True, text=True, timeout=10).stdout.strip() != ""
            return {"commit": commit, "dirty": dirty}
        except (OSError, subprocess.SubprocessError):
            continue
    return {"commit": None, "dirty": None}
