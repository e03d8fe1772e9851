"""Masks chosen for several matrices together: ``method.scope=global`` and cross-matrix units.

An *entry* is what one selection ranks: a matrix cut into its pattern's units (``MatrixEntry``), or a
set of FFN neurons or attention heads spanning several matrices (``pst_bench.sparsity.units``). Every
entry's units have one size. ``allocate`` decides how many units each entry keeps:

- ``scope=layer``: every entry alone keeps round((1 - s) x its weights) worth of units (the paper's
  one top-v per matrix, or per layer's heads / FFN neurons for ``pattern=units``);
- ``scope=global``: one ranking of every entry's unit scores, kept from the top until the kept weights
  reach (1 - s) x all weights. When every unit has the same size (unstructured, blocks, N:M) the count
  is exact; otherwise (rows of matrices of different widths, heads beside neurons) it is the largest
  prefix of the ranking that fits, i.e. within one unit of the target.
  Optional bounds (``method.matrix_sparsity_min`` / ``_max``) hold each entry's sparsity within
  [min, max] at the end of the schedule and scale with it during the ramp (bound x s / final), so that a
  bound never forces pruning the schedule has not reached: an entry's share of the joint ranking is
  clamped to its bounds and the ranking goes deeper (or stops earlier) until the total fits.

``MaskGroup`` owns the masks of the layers that are chosen together: a layer asks it for its mask, and
it recomputes every member's mask at once when any member's score inputs or the sparsity changed.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from .mask import kept_count, kth_smallest, topv_mask
from .patterns import MatrixPattern


class MatrixEntry:
    """One sparse layer cut into its pattern's units."""

    def __init__(self, layer, pattern: MatrixPattern):
        self.layer, self.pattern = layer, pattern
        self.shape = layer.weight_shape
        self.numel = self.shape[0] * self.shape[1]
        self.num_units = pattern.num_units(self.shape)
        self.unit_size = pattern.unit_size(self.shape)
        self.always_kept = pattern.always_kept(self.shape)

    @property
    def layers(self) -> list:
        return [self.layer]

    def unit_scores(self, scores: dict) -> torch.Tensor:
        return self.pattern.unit_scores(scores[id(self.layer)]).float()

    def masks(self, keep_units: torch.Tensor, scores: dict) -> dict:
        return {id(self.layer): self.pattern.expand(keep_units, scores[id(self.layer)])}


@dataclass(frozen=True)
class Bounds:
    """Per-entry sparsity bounds at the end of the schedule (None: unbounded)."""

    min_sparsity: float | None = None
    max_sparsity: float | None = None
    final_sparsity: float = 0.0

    @property
    def active(self) -> bool:
        return self.min_sparsity is not None or self.max_sparsity is not None

    def unit_range(self, entry, sparsity: float) -> tuple[int, int]:
        """The fewest and most units an entry may keep at scheduled sparsity ``sparsity``."""
        ramp = sparsity / self.final_sparsity if self.final_sparsity > 0 else 0.0
        most_pruned = entry.numel if self.max_sparsity is None else self.max_sparsity * ramp * entry.numel
        least_pruned = 0.0 if self.min_sparsity is None else self.min_sparsity * ramp * entry.numel
        low = math.ceil((entry.numel - most_pruned - entry.always_kept) / entry.unit_size - 1e-9)
        high = math.floor((entry.numel - least_pruned - entry.always_kept) / entry.unit_size + 1e-9)
        high = max(0, min(entry.num_units, high))
        return max(0, min(low, high)), high


def layer_kept_units(entry, sparsity: float) -> int:
    """Units an entry keeps on its own: round((1 - s) x weights), less what is always kept."""
    budget = kept_count(entry.numel, sparsity) - entry.always_kept
    return max(0, min(entry.num_units, round(budget / entry.unit_size)))


def _joint_counts(unit_scores: list[torch.Tensor], joint: torch.Tensor, rank: int) -> list[int]:
    """How many of the top ``rank`` units of one joint ranking (``joint``: the entries' unit scores one
    after another) fall in each entry; ties by position, as ``topv_mask`` breaks them: the earlier
    entry, then the lower index."""
    lengths = [len(scores) for scores in unit_scores]
    total = joint.numel()
    if rank <= 0 or rank >= total:
        return [0] * len(lengths) if rank <= 0 else lengths
    threshold = kth_smallest(joint, total - rank)  # the best unit left out
    above = [int(torch.count_nonzero(scores > threshold)) for scores in unit_scores]
    left = rank - sum(above)
    counts = []
    for scores, count in zip(unit_scores, above):
        tied = min(left, int(torch.count_nonzero(scores == threshold)))
        counts.append(count + tied)
        left -= tied
    return counts


def global_counts(entries: list, unit_scores: list[torch.Tensor], sparsity: float, bounds: Bounds) -> list[int]:
    """Units each entry keeps under one ranking of all their units (``scope=global``).

    The top r units of the joint ranking, each entry's share clamped to its bounds, for the largest r
    whose kept weights fit (1 - s) x all weights: exact when every unit has one size and no bound binds,
    otherwise within one unit of the target. The kept weights grow with r, so r is found by bisection
    (each step one ``kth_smallest`` over the units; no sort).
    """
    budget = kept_count(sum(e.numel for e in entries), sparsity) - sum(e.always_kept for e in entries)
    ranges = [bounds.unit_range(e, sparsity) for e in entries]
    sizes = [e.unit_size for e in entries]

    joint = torch.cat(unit_scores)

    def clamped(rank: int) -> list[int]:
        counts = _joint_counts(unit_scores, joint, rank)
        return [min(max(count, low), high) for count, (low, high) in zip(counts, ranges)]

    if len(set(sizes)) == 1 and not bounds.active:
        return clamped(budget // sizes[0])
    low, high = 0, joint.numel()
    while low < high:  # the largest rank whose clamped kept weights fit the budget
        middle = (low + high + 1) // 2
        if sum(size * count for size, count in zip(sizes, clamped(middle))) <= budget:
            low = middle
        else:
            high = middle - 1
    return clamped(low)


def allocate(entries: list, unit_scores: list[torch.Tensor], sparsity: float, scope: str, bounds: Bounds):
    """One keep vector per entry (see the module's docstring for the two scopes)."""
    if scope == "layer":
        counts = [layer_kept_units(entry, sparsity) for entry in entries]
    else:
        counts = global_counts(entries, unit_scores, sparsity, bounds)
    return [topv_mask(scores, count) for scores, count in zip(unit_scores, counts)]


class MaskGroup:
    """The masks of several sparse layers, chosen together and refreshed together."""

    def __init__(self, entries: list, scope: str, bounds: Bounds):
        self.entries, self.scope, self.bounds = entries, scope, bounds
        self.layers = list({id(layer): layer for e in entries for layer in e.layers}.values())
        self._key: tuple | None = None
        for layer in self.layers:
            layer.mask_group = self

    def _current_key(self) -> tuple:
        versions = tuple(layer._versions(layer.score_inputs()) for layer in self.layers)
        return (tuple(layer.sparsity for layer in self.layers), versions)

    @torch.no_grad()
    def refresh(self) -> None:
        """Recompute every member's mask when any score input or the sparsity changed."""
        key = self._current_key()
        if key == self._key:
            return
        started = time.perf_counter()
        scores = {id(layer): layer.scores_for_mask() for layer in self.layers}  # float32 (precision)
        unit_scores = [e.unit_scores(scores) for e in self.entries]
        keeps = allocate(self.entries, unit_scores, self.layers[0].sparsity, self.scope, self.bounds)
        masks = {}
        for entry, keep in zip(self.entries, keeps):
            masks.update(entry.masks(keep, scores))
        seconds = (time.perf_counter() - started) / len(self.layers)
        for layer in self.layers:
            layer._mask = masks[id(layer)].contiguous()
            layer._mask_key = key
            layer.mask_computations += 1
            layer.mask_seconds += seconds
        self._key = key
