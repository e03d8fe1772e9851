"""Helpers shared by the tests: Hydra compose, synthetic data, tiny-run overrides, fake records.

Imported as ``from helpers import ...`` (pytest puts tests/ on sys.path); fixtures live in conftest.py.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("PST_SHARED_DATA", ROOT.parent / "shared" / "data"))


def compose_cfg(overrides=(), tmp_path: Path | None = None):
    """The config `pst-bench <overrides>` would run, with outputs redirected to tmp_path."""
    from hydra import compose, initialize_config_module

    extra = []
    if tmp_path is not None:
        extra = [f"paths.results_dir={tmp_path}/results/runs", f"paths.checkpoint_dir={tmp_path}/checkpoints",
                 f"paths.export_dir={tmp_path}/exports", "train.progress_bar=false"]
    with initialize_config_module(config_module="pst_bench.conf", version_base="1.3"):
        return compose(config_name="config", overrides=[*overrides, *extra])


def write_synthetic_sst2(folder: Path, n_train: int = 96, n_dev: int = 32) -> Path:
    """A learnable SST-2-layout task: positive words → 1, negative words → 0."""
    import random

    rng = random.Random(0)
    positive = ["good", "great", "wonderful", "fine", "lovely", "superb"]
    negative = ["bad", "awful", "terrible", "poor", "dull", "boring"]
    task_dir = folder / "SST-2"
    task_dir.mkdir(parents=True, exist_ok=True)
    for name, count in (("train.tsv", n_train), ("dev.tsv", n_dev)):
        lines = ["sentence\tlabel"]
        for i in range(count):
            label = i % 2
            words = rng.sample(positive if label else negative, 3) + rng.sample(["the", "a", "movie", "plot"], 2)
            rng.shuffle(words)
            lines.append(f"{' '.join(words)}\t{label}")
        (task_dir / name).write_text("\n".join(lines) + "\n")
    return folder



def tiny_run_overrides(data_dir: Path, method: str = "pst", *extra: str) -> list[str]:
    return [f"method={method}", "model=tiny-bert", "task=sst2", f"data.dir={data_dir}",
            "train.epochs=2", "train.batch_size=16", "train.lr=1e-3", "method.sparsity=0.5"
            if method != "finetune" else "method.sparsity=0.0", *extra]
