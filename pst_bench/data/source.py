"""Where data comes from, shared by every reader: a local folder or the Hugging Face hub.

- ``configured_dir``: ``data.dir`` (or ``PST_DATA_DIR``) as a path, ``None`` for the hub.
- ``offline_mode_if_requested``: make ``datasets.load_dataset`` honour
  ``HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE`` even when they were set after import.
- ``hub_unreachable_errors``: the exception types meaning "the hub (or its cache)
  could not give us the dataset", to turn into one ``DataError`` with a fix.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datasets

from pst_bench.hub import hub_offline

__all__ = ["configured_dir", "folder_listing", "hub_unreachable_errors", "offline_mode_if_requested"]


def configured_dir(data_cfg: Any) -> Path | None:
    """data_cfg.dir as a path; an empty PST_DATA_DIR counts as unset."""
    value = data_cfg.get("dir") if data_cfg is not None else None
    if value is None or not str(value).strip():
        return None
    return Path(str(value)).expanduser()


def folder_listing(folder: Path) -> str:
    """The names in a folder, comma-separated, for error messages."""
    names = sorted(p.name for p in folder.iterdir())
    return ", ".join(names) if names else "nothing"


@contextlib.contextmanager
def offline_mode_if_requested() -> Iterator[None]:
    """Honour HF_HUB_OFFLINE / HF_DATASETS_OFFLINE even if set after import.

    datasets and huggingface_hub read these variables once, at import. If a
    caller (a test, a notebook) sets them later, load_dataset would still go
    online and retry an unreachable hub for ~25 s; switching the flags for the
    call makes it fail at once (or read the cache), as the user asked.
    """
    if not hub_offline():
        yield
        return
    import huggingface_hub.constants as hub_constants

    flags = [
        (datasets.config, "HF_HUB_OFFLINE"),
        (datasets.config, "HF_DATASETS_OFFLINE"),
        (hub_constants, "HF_HUB_OFFLINE"),
    ]
    saved = [(module, name, getattr(module, name)) for module, name in flags if hasattr(module, name)]
    for module, name, _ in saved:
        setattr(module, name, True)
    try:
        yield
    finally:
        for module, name, value in saved:
            setattr(module, name, value)


def hub_unreachable_errors() -> tuple[type[BaseException], ...]:
    """Errors meaning "the hub (or its cache) could not give us the dataset".

    ConnectionError, the hub's HTTP errors and "not cached" errors are all
    OSError subclasses; the HTTP client's transport errors are not, so they
    are added when that client is installed.
    """
    errors: list[type[BaseException]] = [OSError]
    for module_name in ("httpx2", "httpx"):
        with contextlib.suppress(ImportError):
            errors.append(importlib.import_module(module_name).TransportError)
    return tuple(errors)
