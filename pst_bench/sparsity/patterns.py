"""Sparsity patterns of one matrix: which weights a mask keeps or drops together.

``method.pattern`` names one of

- ``unstructured``: every weight is a unit (the paper);
- ``N:M`` (``2:4``, ``4:8``): in every run of M consecutive weights along the input dimension
  (a row of the n x k weight) keep N, the layout sparse tensor cores run;
- ``block``: tiles of ``method.block_shape`` = [b_out, b_in] weights;
- ``row`` / ``column``: whole output neurons (rows) / whole input channels (columns) of a matrix;
- ``units``: FFN neurons and attention heads across matrices (``pst_bench.sparsity.units``).

Every pattern is a set of equal-sized units per matrix. The method's score S is reduced over each
unit by its **mean**: PST's A·B and R + C terms (and MvP's trained scores) can be negative, so a norm
would rank a strongly negative, i.e. unimportant, unit high; the mean is the unit's average
per-weight importance and stays comparable between units of different size (a row of a 384 x 1536
matrix and one of a 1536 x 384 matrix under ``method.scope=global``). For magnitude (MaP) it is the
L1 norm per weight, the classic structured-magnitude criterion. The mask keeps the top units
(``topv_mask`` on the unit scores, so counts are exact and ties go by position) and the
straight-through backward is unchanged: every weight's score gets its own gradient.

N:M is the one pattern with a fixed final sparsity, 1 - N/M. The cubic schedule still drives it:
at scheduled sparsity s a fraction s / (1 - N/M) of the groups is already at N:M, the others dense.
Groups go N:M in order of their cost (the summed score of the M - N weights they would lose), so the
"unit" of N:M is a group's M - N droppable weights, kept (dense) or dropped (N:M) together; the N best
weights of every group are always kept (``always_kept``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from ..errors import ConfigError
from .mask import kept_count, topv_mask

PATTERN_KINDS = ("unstructured", "N:M", "block", "row", "column", "units")
_NM = re.compile(r"(\d+):(\d+)")


class MatrixPattern:
    """How one n x k matrix is cut into equal units, and a mask built back from kept units."""

    name = ""

    def check(self, shape: tuple[int, int], where: str) -> None:
        """Raise a one-line ConfigError when the pattern cannot tile this matrix."""

    def num_units(self, shape: tuple[int, int]) -> int:
        raise NotImplementedError

    def unit_size(self, shape: tuple[int, int]) -> int:
        """Weights a unit keeps when it is kept (and drops when it is not)."""
        raise NotImplementedError

    def always_kept(self, shape: tuple[int, int]) -> int:
        """Weights kept whatever the units' fate (N:M's N per group; 0 elsewhere)."""
        return 0

    def unit_scores(self, scores: torch.Tensor) -> torch.Tensor:
        """One score per unit, flat, in the order ``expand`` reads its keep vector."""
        raise NotImplementedError

    def expand(self, keep_units: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """The boolean weight mask of a keep vector over this matrix's units."""
        raise NotImplementedError

    def kept_units(self, shape: tuple[int, int], sparsity: float) -> int:
        """How many units a matrix keeps on its own (``method.scope=layer``) at this sparsity."""
        n, k = shape
        budget = kept_count(n * k, sparsity) - self.always_kept(shape)
        return max(0, min(self.num_units(shape), round(budget / self.unit_size(shape))))

    def mask(self, scores: torch.Tensor, sparsity: float) -> torch.Tensor:
        """The mask of one matrix scored alone: the top units at this sparsity."""
        shape = tuple(scores.shape)
        keep = topv_mask(self.unit_scores(scores), self.kept_units(shape, sparsity))
        return self.expand(keep, scores)

    def __repr__(self) -> str:
        return self.name


class Unstructured(MatrixPattern):
    """Every weight is its own unit: the paper's top-v of the scores."""

    name = "unstructured"

    def num_units(self, shape):
        return shape[0] * shape[1]

    def unit_size(self, shape):
        return 1

    def unit_scores(self, scores):
        return scores.detach().reshape(-1)

    def expand(self, keep_units, scores):
        return keep_units.view(scores.shape)

    def mask(self, scores, sparsity):
        # the plain path of the paper, exactly as before patterns existed (same masks, same run ids)
        return topv_mask(scores, kept_count(scores.numel(), sparsity))


@dataclass(frozen=True)
class _Tiles:
    rows: int
    cols: int


class Blocks(MatrixPattern):
    """Tiles of b_out x b_in weights; ``None`` for a side means the whole matrix side (row / column)."""

    def __init__(self, b_out: int | None, b_in: int | None, name: str = "block"):
        self.b_out, self.b_in, self.name = b_out, b_in, name

    def tile(self, shape) -> _Tiles:
        n, k = shape
        return _Tiles(self.b_out or n, self.b_in or k)

    def check(self, shape, where):
        n, k = shape
        tile = self.tile(shape)
        if tile.rows > n or tile.cols > k:
            raise ConfigError(f"{where}: block {tile.rows}x{tile.cols} is larger than the {n}x{k} matrix")
        if n % tile.rows or k % tile.cols:
            raise ConfigError(f"{where}: block {tile.rows}x{tile.cols} does not divide the {n}x{k} matrix")

    def num_units(self, shape):
        tile = self.tile(shape)
        return (shape[0] // tile.rows) * (shape[1] // tile.cols)

    def unit_size(self, shape):
        tile = self.tile(shape)
        return tile.rows * tile.cols

    def unit_scores(self, scores):
        n, k = scores.shape
        tile = self.tile((n, k))
        tiles = scores.detach().float().reshape(n // tile.rows, tile.rows, k // tile.cols, tile.cols)
        return tiles.mean(dim=(1, 3)).reshape(-1)

    def expand(self, keep_units, scores):
        n, k = scores.shape
        tile = self.tile((n, k))
        grid = keep_units.view(n // tile.rows, k // tile.cols)
        return grid.repeat_interleave(tile.rows, dim=0).repeat_interleave(tile.cols, dim=1)

    def __repr__(self):
        if self.name != "block":
            return self.name
        return f"block {self.b_out}x{self.b_in}"


class NM(MatrixPattern):
    """N of every M consecutive weights along the input dimension; dense groups while the schedule ramps."""

    def __init__(self, n: int, m: int):
        self.n, self.m = n, m
        self.name = f"{n}:{m}"

    @property
    def final_sparsity(self) -> float:
        return 1.0 - self.n / self.m

    def check(self, shape, where):
        if shape[1] % self.m:
            raise ConfigError(f"{where}: {self.name} needs an input dimension divisible by {self.m}, got {shape[1]}")

    def num_units(self, shape):
        return shape[0] * shape[1] // self.m

    def unit_size(self, shape):
        return self.m - self.n

    def always_kept(self, shape):
        return self.num_units(shape) * self.n

    def _groups(self, scores: torch.Tensor) -> torch.Tensor:
        return scores.detach().float().reshape(-1, self.m)

    def unit_scores(self, scores):
        # a group's cost of going N:M: the summed score of the M - N weights it would drop
        groups = self._groups(scores)
        return groups.sum(dim=1) - groups.topk(self.n, dim=1).values.sum(dim=1)

    def expand(self, keep_units, scores):
        groups = self._groups(scores)
        mask = torch.zeros_like(groups, dtype=torch.bool)
        mask.scatter_(1, groups.topk(self.n, dim=1).indices, True)
        mask[keep_units] = True  # groups kept dense
        return mask.view(scores.shape)


class KeepAll(Unstructured):
    """Nothing pruned: a sparse target outside every chosen unit kind (``pattern=units``, ``units=[ffn]``)."""

    name = "dense (outside the chosen units)"

    def mask(self, scores, sparsity):
        return torch.ones_like(scores, dtype=torch.bool)


UNSTRUCTURED = Unstructured()
KEEP_ALL = KeepAll()


def parse_pattern(pattern: str, block_shape=(4, 4)) -> MatrixPattern:
    """The matrix pattern a ``method.pattern`` value names (``units`` is not one: see ``units``)."""
    text = str(pattern).strip()
    if text == "unstructured":
        return UNSTRUCTURED
    if text == "row":
        return Blocks(1, None, name="row")
    if text == "column":
        return Blocks(None, 1, name="column")
    if text == "block":
        b_out, b_in = (int(v) for v in block_shape)
        if b_out < 1 or b_in < 1:
            raise ConfigError(f"method.block_shape={list(block_shape)} must be two integers >= 1")
        return Blocks(b_out, b_in)
    match = _NM.fullmatch(text)
    if match:
        n, m = int(match.group(1)), int(match.group(2))
        if not 1 <= n < m:
            raise ConfigError(f"method.pattern={text}: N:M needs 1 <= N < M")
        return NM(n, m)
    raise ConfigError(f"method.pattern={text!r} is unknown; choose one of {', '.join(PATTERN_KINDS)} (e.g. 2:4)")
