"""What the masks and scores do during training: achieved sparsity, mask flips, the score terms' sizes.

Read-only: nothing here changes a parameter, a mask or a random number, so a run with diagnostics
trains exactly as one without.

- **flip rate**: the fraction of a matrix's mask entries that changed since the previous measurement
  (when do the masks settle?).
- **score terms**: Frobenius norms of PST's three terms of S, |W0 + β·U·V|, α1·A·B and α2·(R + C),
  and of the update β·U·V; a term's **share** is its norm over the sum of the three norms (what
  Table 5's ablation removes). MaP's score is |W| alone, MvP's its trained score matrix.
"""

from __future__ import annotations

import numpy as np
import torch

from ..methods.pst import SCORE_TERMS
from .bits import pack_bits, unpack_bits
from .layers import SparseLinear

TERMS = SCORE_TERMS


def score_term_norms(layer: SparseLinear) -> dict[str, float]:
    """Norms of the score's terms (and of β·U·V under PST), as the layer names them
    (``SparseLinear.score_term_norms``): a term the layer does not have is left out."""
    return layer.score_term_norms()


def term_shares(norms: dict[str, float]) -> dict[str, float]:
    """Each of PST's terms' norm over the sum of the three (empty for other methods)."""
    present = {term: norms[term] for term in TERMS if term in norms}
    total = sum(present.values())
    return {term: value / total for term, value in present.items()} if total > 0 and len(present) > 1 else {}


class MaskDiagnostics:
    """Measures the sparse layers every time it is called; remembers the last masks for the flip rate.

    ``state()`` / ``load_state()`` carry the remembered masks (bit-packed) through a checkpoint, so a
    resumed run measures the same flip rates as an uninterrupted one.
    """

    def __init__(self, layers: dict[str, SparseLinear]):
        self.layers = layers
        self.previous: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def measure(self, step: int) -> dict:
        """{step, per_matrix: {name: {...}}, mean: {...}}: sparsity, flip rate, term norms and shares."""
        per_matrix = {}
        for name, layer in self.layers.items():
            mask = layer.current_mask()
            entry = {"sparsity": 1.0 - float(mask.sum()) / mask.numel()}
            if name in self.previous:
                entry["flip_rate"] = float((mask != self.previous[name]).float().mean())
            self.previous[name] = mask.detach().clone()
            norms = score_term_norms(layer)
            entry.update({f"norm_{term}": value for term, value in norms.items()})
            entry.update({f"share_{term}": value for term, value in term_shares(norms).items()})
            per_matrix[name] = entry
        return {"step": int(step), "per_matrix": per_matrix, "mean": _mean_over(per_matrix)}

    def state(self) -> dict[str, torch.Tensor]:
        """The remembered masks as uint8 bit arrays (``pst_bench.sparsity.bits``), by layer name."""
        return {name: torch.from_numpy(pack_bits(mask)) for name, mask in self.previous.items()}

    def load_state(self, packed: dict[str, torch.Tensor]) -> None:
        for name, bits in packed.items():
            if name in self.layers:
                shape = self.layers[name].weight_shape
                self.previous[name] = torch.from_numpy(np.ascontiguousarray(unpack_bits(bits, shape)))


def _mean_over(per_matrix: dict[str, dict]) -> dict[str, float]:
    keys = sorted({key for entry in per_matrix.values() for key in entry})
    means = {}
    for key in keys:
        values = [entry[key] for entry in per_matrix.values() if key in entry]
        means[key] = float(sum(values) / len(values))
    return means
