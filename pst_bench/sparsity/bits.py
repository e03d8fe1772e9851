"""One bit packing for every boolean mask written to disk.

A mask is flattened row-major and packed 8 entries per byte, the first entry in
the most significant bit (numpy's default "big" bit order). Big, not little,
because the run masks committed under ``results/runs/*.masks.npz`` were written
that way and must keep loading unchanged; the compressed export
(``pst_bench.run.compressed``) uses the same order since its format v2.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def _as_numpy(array) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        return array.detach().cpu().numpy()
    return np.asarray(array)


def pack_bits(mask) -> np.ndarray:
    """uint8 array of ceil(numel / 8) bytes holding a boolean mask (a tensor or an array) of any shape."""
    return np.packbits(_as_numpy(mask).astype(bool, copy=False).reshape(-1))


def unpack_bits(bits, shape) -> np.ndarray:
    """The boolean mask of ``shape`` that ``pack_bits`` packed into ``bits`` (a uint8 tensor or array)."""
    shape = tuple(int(size) for size in shape)
    flat = np.unpackbits(_as_numpy(bits), count=math.prod(shape))
    return flat.astype(bool).reshape(shape)
