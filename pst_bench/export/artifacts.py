"""What a run saves for the paper's figures besides its record: masks and a score sample.

``<id>.masks.npz`` (numpy, compressed) holds, for every sparsified matrix, its
final mask as a bit array (``pst_bench.sparsity.bits.pack_bits``) under
``<name>`` and its shape under ``<name>.shape``. Figure 2 (one layer's mask and
its row/column sparsity) and Figure 5 (Hamming similarity between methods'
masks) are drawn from it.

``<id>.scores.npz`` holds, for a few matrices, a seeded random sample of
entries: weight value |W|, importance score S and whether the entry is kept
(Figure 4: weight vs score, kept vs pruned).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from ..files import atomic_write_bytes
from ..sparsity.bits import pack_bits, unpack_bits


def _npz_bytes(arrays: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


@torch.no_grad()
def save_masks(layers: dict, path: Path) -> Path:
    arrays = {}
    for name, layer in layers.items():
        mask = layer.current_mask()
        arrays[name] = pack_bits(mask)
        arrays[f"{name}.shape"] = np.asarray(mask.shape)
    atomic_write_bytes(path, _npz_bytes(arrays))
    return path


def load_masks(path: Path) -> dict[str, np.ndarray]:
    """{matrix name: boolean mask} from a ``.masks.npz`` file."""
    with np.load(path) as data:
        return {key: unpack_bits(data[key], data[f"{key}.shape"]) for key in data.files if not key.endswith(".shape")}


@torch.no_grad()
def save_score_sample(layers: dict, path: Path, per_layer: int = 2000, max_layers: int = 6, seed: int = 0) -> Path:
    """A sample of (|W|, S, kept) entries of the first ``max_layers`` sparsified matrices."""
    generator = torch.Generator().manual_seed(seed)
    arrays = {}
    for name, layer in list(layers.items())[:max_layers]:
        weight = layer.dense_weight().reshape(-1).float().cpu()
        scores = layer.importance_scores().reshape(-1).float().cpu()
        kept = layer.current_mask().reshape(-1).cpu()
        index = torch.randperm(weight.numel(), generator=generator)[:per_layer]
        arrays[f"{name}.weight"] = weight[index].numpy()
        arrays[f"{name}.score"] = scores[index].numpy()
        arrays[f"{name}.kept"] = kept[index].numpy()
    atomic_write_bytes(path, _npz_bytes(arrays))
    return path
