"""Shared fixtures: offline hub, one thread, synthetic and real data folders, the session's tiny runs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# Tests never touch the hub: a request would only fail after about a minute of retries here.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.pop("PST_DATA_DIR", None)
# One thread, here and in every subprocess a test starts: the models are tiny (a 32-wide BERT), so more
# threads only spin, and the suite shares its machine with whatever else runs there.
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402

from helpers import (  # noqa: E402
    SHARED_DATA,
    compose_cfg,
    run,
    shared_data_missing,
    tiny_run_overrides,
    write_synthetic_sst2,
)

torch.set_num_threads(1)


@pytest.fixture
def synthetic_data(tmp_path) -> Path:
    return write_synthetic_sst2(tmp_path / "glue_data")


@pytest.fixture
def shared_data() -> Path:
    """The real data folder (helpers.SHARED_DATA); the test is skipped where it is missing."""
    reason = shared_data_missing("glue")
    if reason:
        pytest.skip(reason)
    return SHARED_DATA


class TinyRuns:
    """Tiny real runs (tiny BERT on synthetic SST-2, two epochs, diagnostics every 2 steps), each trained
    once per session on first use and shared by the training, long-run and figure tests.

    ``get(method, sparsity)`` gives the record of the run (training it the first time); every run writes
    into one root (``results_dir``, ``log_dir``). A test that needs a runs folder of its own, holding only
    some of the runs, asks ``folder(dest, *keys)`` for a copy. Tests must not change the shared files.
    """

    EXTRA = ("train.diagnostics_every_steps=2", "export=false")

    def __init__(self, root: Path):
        self.root = root
        self.data = write_synthetic_sst2(root / "glue_data")
        self._records: dict[tuple[str, float], dict] = {}

    @property
    def results_dir(self) -> Path:
        return self.root / "results" / "runs"

    @property
    def log_dir(self) -> Path:
        return self.root / "logs"

    def overrides(self, method: str, sparsity: float | None = None, *extra: str) -> list[str]:
        """The run's overrides (``tiny_run_overrides`` with the shared extras), outputs not redirected."""
        sparsity = (0.0 if method == "finetune" else 0.5) if sparsity is None else sparsity
        return tiny_run_overrides(self.data, method, *self.EXTRA, f"method.sparsity={sparsity}", *extra)

    def get(self, method: str, sparsity: float | None = None) -> dict:
        sparsity = (0.0 if method == "finetune" else 0.5) if sparsity is None else sparsity
        key = (method, float(sparsity))
        if key not in self._records:
            self._records[key] = run(compose_cfg(self.overrides(method, sparsity), self.root))
        return self._records[key]

    def folder(self, dest: Path, *keys: tuple[str, float]) -> Path:
        """A runs folder at ``dest`` with copies of the records (and masks, score samples) of ``keys``."""
        dest.mkdir(parents=True, exist_ok=True)
        for key in keys:
            rid = self.get(*key)["run_id"]
            for path in self.results_dir.glob(f"{rid}.*"):
                shutil.copy2(path, dest / path.name)
        return dest


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory) -> TinyRuns:
    return TinyRuns(tmp_path_factory.mktemp("tiny_runs"))


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
