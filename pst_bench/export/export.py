"""What a finished run writes besides its record: masks and scores, the merged, compressed and slim exports."""

from __future__ import annotations

from pathlib import Path

from ..adapter.model import merge_and_unload
from ..files import atomic_folder
from . import artifacts
from .compressed import checkpoint_sizes, save_compressed
from .slim import save_slim


def save_artifacts(cfg, layers: dict, results_dir: Path, rid: str) -> dict:
    """Masks and a score sample next to the record (file names, relative to it)."""
    saved = {}
    if not layers:
        return saved
    if cfg.artifacts.save_masks:
        saved["masks"] = artifacts.save_masks(layers, results_dir / f"{rid}.masks.npz").name
    if cfg.artifacts.score_sample:
        path = artifacts.save_score_sample(
            layers,
            results_dir / f"{rid}.scores.npz",
            per_layer=int(cfg.artifacts.score_sample),
            max_layers=int(cfg.artifacts.score_sample_layers),
            seed=int(cfg.train.seed),
        )
        saved["scores"] = path.name
    return saved


def export_model(model, tokenizer, target: Path) -> Path:
    """save_pretrained of the model with every mask merged: W* = M ⊙ W, plain nn.Linear layers.

    Written through ``atomic_folder``, so a crash never leaves half an export.
    """
    merge_and_unload(model)  # GPT-2: back to transformers' Conv1D layout too
    with atomic_folder(target) as partial:
        model.save_pretrained(partial)
        tokenizer.save_pretrained(partial)
    return target


def export_compressed(model, tokenizer, export_dir: Path, value_dtype: str) -> dict:
    """The merged model as bitmask + values (pst_bench.export.compressed) in <export_dir>.compressed/."""
    folder = save_compressed(
        model, export_dir.with_name(f"{export_dir.name}.compressed"), value_dtype=value_dtype, tokenizer=tokenizer
    )
    return {"dir": str(folder), "value_dtype": value_dtype, **checkpoint_sizes(export_dir, folder)}


def export_run(cfg, model, tokenizer, rid: str) -> dict:
    """The exports ``cfg`` asks for, as the record's ``export_dir`` / ``export_compressed`` fields."""
    if not cfg.export:
        return {}
    export_dir = export_model(model, tokenizer, Path(cfg.paths.export_dir) / rid)
    exported = {"export_dir": str(export_dir)}
    if cfg.get("export_compressed"):
        exported["export_compressed"] = export_compressed(model, tokenizer, export_dir, str(cfg.export_compressed))
    if cfg.get("export_slim"):  # last: slimming changes the model in place
        target = export_dir.with_name(f"{export_dir.name}.slim")
        exported["export_slim"] = save_slim(model, tokenizer, cfg.model.units, target)
    return exported
