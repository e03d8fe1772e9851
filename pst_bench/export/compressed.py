"""A compact on-disk format for a sparse model: bitmask + kept values in safetensors.

``save_pretrained`` writes a pruned matrix densely, zeros included. Here every
floating matrix whose compressed form is smaller than its dense form is stored
as two tensors:

    <name>.bitmask   uint8, the nonzero pattern packed 8 entries per byte (pst_bench.sparsity.bits)
    <name>.values    the nonzero entries in row-major order, in the chosen value dtype

and everything else (embeddings, biases, LayerNorm) densely in the value dtype.
The nonzero pattern is exact for a merged model (W* = M ⊙ W), so decompression
is lossless with ``value_dtype=float32``; with float16 only the rounding of each
stored value changes. Tied weights (GPT-2's LM head) are stored once.

``load_compressed(folder)`` rebuilds a normal transformers model from the
folder's config.json and the compressed file; ``python -m pst_bench.export.compressed
expand <folder> <out>`` writes it back out with ``save_pretrained``.
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
from pathlib import Path

import torch
import transformers
from safetensors.torch import load_file, save_file

from ..sparsity.bits import pack_bits, unpack_bits
from . import VALUE_DTYPES

# v2: big bit order, as the saved run masks (v1 packed little-endian; its bits read as v2 would be wrong).
FORMAT = "pst-bench/bitmask-v2"
RETIRED_FORMATS = ("pst-bench/bitmask-v1",)
WEIGHTS_NAME = "model.sparse.safetensors"


def _bitmask_is_smaller(tensor: torch.Tensor, nonzero: int, value_bytes: int) -> bool:
    dense = tensor.numel() * value_bytes
    return tensor.ndim >= 2 and (tensor.numel() + 7) // 8 + nonzero * value_bytes < dense


def compress_state_dict(state_dict: dict, value_dtype: str = "float16") -> tuple[dict, dict]:
    """(tensors for safetensors, metadata) of a state dict."""
    if value_dtype not in VALUE_DTYPES:
        raise ValueError(f"value_dtype={value_dtype!r}: choose one of {', '.join(VALUE_DTYPES)}")
    dtype = VALUE_DTYPES[value_dtype]
    value_bytes = torch.finfo(dtype).bits // 8
    tensors, entries, aliases, seen = {}, {}, {}, {}
    for name, tensor in state_dict.items():
        tensor = tensor.detach().cpu()
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
        if key in seen:  # tied weights: one copy, the other name points at it
            aliases[name] = seen[key]
            continue
        seen[key] = name
        entry = {"shape": list(tensor.shape), "dtype": str(tensor.dtype).removeprefix("torch.")}
        if tensor.is_floating_point():
            nonzero = tensor != 0
            if _bitmask_is_smaller(tensor, int(nonzero.sum()), value_bytes):
                tensors[f"{name}.bitmask"] = torch.from_numpy(pack_bits(nonzero))
                tensors[f"{name}.values"] = tensor[nonzero].to(dtype).contiguous()
                entry["kind"] = "bitmask"
            else:
                tensors[name] = tensor.to(dtype).contiguous()
                entry["kind"] = "dense"
        else:
            tensors[name] = tensor.contiguous()
            entry["kind"] = "dense"
        entries[name] = entry
    metadata = {
        "format": FORMAT,
        "value_dtype": value_dtype,
        "entries": json.dumps(entries),
        "aliases": json.dumps(aliases),
    }
    return tensors, metadata


def decompress_state_dict(tensors: dict, metadata: dict) -> dict:
    found = (metadata or {}).get("format")
    if found in RETIRED_FORMATS:
        raise ValueError(
            f"{found} files (little bit order) are no longer read: re-export the model with save_compressed ({FORMAT})"
        )
    if found != FORMAT:
        raise ValueError(f"not a {FORMAT} file (format={found!r})")
    state = {}
    for name, entry in json.loads(metadata["entries"]).items():
        dtype = getattr(torch, entry["dtype"])
        if entry["kind"] == "bitmask":
            mask = torch.from_numpy(unpack_bits(tensors[f"{name}.bitmask"], entry["shape"]))
            dense = torch.zeros(entry["shape"], dtype=dtype)
            dense[mask] = tensors[f"{name}.values"].to(dtype)
            state[name] = dense
        else:
            state[name] = tensors[name].to(dtype)
    for alias, target in json.loads(metadata["aliases"]).items():
        state[alias] = state[target]
    return state


def save_compressed(model, folder: Path, value_dtype: str = "float16", tokenizer=None) -> Path:
    """Write config.json (+ tokenizer) and the compressed weights; atomic (temporary folder, rename).

    ``model`` is a plain transformers model, i.e. after merge_sparse_layers (and restore_conv1d).
    """
    from ..files import atomic_folder
    from ..sparsity.inject import sparse_layers

    if sparse_layers(model):
        raise ValueError("merge the sparse layers first (pst_bench.sparsity.inject.merge_sparse_layers)")
    folder = Path(folder)
    tensors, metadata = compress_state_dict(model.state_dict(), value_dtype)
    config = copy.deepcopy(model.config)
    config.architectures = [type(model).__name__]  # what load_compressed instantiates
    with atomic_folder(folder) as partial:
        save_file(tensors, str(partial / WEIGHTS_NAME), metadata=metadata)
        config.save_pretrained(partial)
        if tokenizer is not None:
            tokenizer.save_pretrained(partial)
    return folder


def load_compressed(folder: Path, device: str = "cpu"):
    """The transformers model stored by save_compressed, with dense weights, in eval mode."""
    folder = Path(folder)
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} not found: not a folder written by save_compressed")
    config = transformers.AutoConfig.from_pretrained(folder)
    architecture = (config.architectures or [None])[0]
    model_class = getattr(transformers, architecture or "", None)
    if model_class is None:
        raise ValueError(f"{folder}/config.json names no known architecture ({config.architectures})")
    from safetensors import safe_open

    with safe_open(str(weights), framework="pt") as handle:
        metadata = handle.metadata()
    model = model_class(config)
    model.load_state_dict(decompress_state_dict(load_file(str(weights)), metadata), strict=True)
    return model.to(device).eval()


def checkpoint_sizes(dense_folder: Path, compressed_folder: Path) -> dict:
    """Bytes of the dense save_pretrained weights and of the compressed weights."""
    dense = sum(f.stat().st_size for f in Path(dense_folder).glob("*.safetensors"))
    compressed = (Path(compressed_folder) / WEIGHTS_NAME).stat().st_size
    return {
        "dense_bytes": dense,
        "compressed_bytes": compressed,
        "ratio": round(compressed / dense, 4) if dense else None,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pst_bench.export.compressed",
        description="Expand a compressed sparse model into a save_pretrained folder.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    expand = sub.add_parser("expand", help="write a normal (dense) save_pretrained folder")
    expand.add_argument("folder", type=Path)
    expand.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    model = load_compressed(args.folder)
    model.save_pretrained(args.out)
    for extra in args.folder.iterdir():  # tokenizer files travel along
        if extra.name not in (WEIGHTS_NAME, "config.json") and extra.is_file():
            shutil.copy2(extra, args.out / extra.name)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
