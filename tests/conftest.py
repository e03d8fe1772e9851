"""Shared test helpers: offline hub, Hydra compose, synthetic and real data folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests never touch the hub: a request would only fail after about a minute of retries here.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.pop("PST_DATA_DIR", None)

from helpers import SHARED_DATA, write_synthetic_sst2  # noqa: E402


@pytest.fixture
def synthetic_data(tmp_path) -> Path:
    return write_synthetic_sst2(tmp_path / "glue_data")


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED_DATA / "glue").is_dir():
        pytest.skip(f"real data folder not found at {SHARED_DATA} (set PST_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture
def offline_hub_with_empty_cache(tmp_path, monkeypatch):
    """HF_HUB_OFFLINE=1 set after the libraries were imported, and empty hub/datasets caches.

    The loaders must still honour the variable (not retry an unreachable hub for ~25 s), and
    a copy cached on a developer's machine must not be able to answer.
    """
    import datasets
    import huggingface_hub.constants as hub_constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets")
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
