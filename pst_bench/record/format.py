"""The record format: its schema version, the keys every finished record has, and the check that says
why a file is not a usable record (``validate``)."""

from __future__ import annotations

from typing import Any

SCHEMA_VERSION = 1
READABLE_SCHEMAS = (1,)
FINISHED = "finished"
#: Keys every finished record has; a record missing any is skipped (with the names).
REQUIRED_KEYS = ("status", "task", "model", "method", "sparsity", "seed", "main_split", "final")


class RecordSkipped(UserWarning):
    """A file under a runs folder that no report uses (unreadable, not finished, incomplete)."""


class RecordError(ValueError):
    """Why one file is not a usable results record."""


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
