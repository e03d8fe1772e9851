"""Soft movement pruning (Sanh, Wolf & Rush, 2020, "Movement Pruning: Adaptive Sparsity by Fine-Tuning",
section 4 and their code, ``examples/research_projects/movement-pruning``: ``sigmoied_threshold``).

One trainable score per weight, as MvP, but no top-v: a weight is kept where σ(S_ij) > τ, one threshold
for every matrix, and the loss gains λ·R(S), R(S) = the mean over sparsified matrices of mean σ(S_ij)
(the L1 norm of σ(S) per weight). Gradients reach S through the straight-through estimator
(dL/dS = dL/dW' ⊙ W, the movement) plus the penalty's pull towards pruning; how much is pruned is an
outcome of λ, not a setting. The threshold follows the cubic schedule: with r_t = s_t / s_final the
schedule's progress (``method.sparsity`` is the nominal target; it shapes the ramp only),
τ_t = τ₀ + (τ − τ₀)·r_t and λ_t = λ·τ_t / τ (the authors' ``schedule_threshold``). Scores start at
``score_init`` (0: σ = 0.5, every weight kept). As in the authors' binarizer, at least 0.5% of a matrix
(+1 weight) is kept: below that, its top scores are.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import MovementSparseLinear, SparseLinear
from .mask import topv_mask

#: the least share of a matrix kept whatever the threshold (the authors' ThresholdBinarizer)
MIN_KEPT_SHARE = 0.005


class SoftMovementSparseLinear(MovementSparseLinear):
    """Soft movement pruning: mask σ(S) > τ_t, penalty λ_t · mean σ(S) (module docstring)."""

    method = "soft_mvp"

    def __init__(
        self,
        base_layer: nn.Linear,
        threshold: float = 0.1,
        initial_threshold: float = 0.0,
        final_lambda: float = 400.0,
        score_init: float = 0.0,
    ):
        SparseLinear.__init__(self, base_layer)
        weight = base_layer.weight
        self.mask_scores = nn.Parameter(torch.full_like(weight, float(score_init)))
        self.threshold, self.initial_threshold = float(threshold), float(initial_threshold)
        self.final_lambda, self.score_init = float(final_lambda), float(score_init)

    @property
    def ramp(self) -> float:
        """r_t = s_t / s_final in [0, 1]: how far the schedule has gone."""
        final = self.final_sparsity
        return 1.0 if final <= 0 else min(1.0, max(0.0, self.sparsity / final))

    @property
    def current_threshold(self) -> float:
        return self.initial_threshold + (self.threshold - self.initial_threshold) * self.ramp

    @property
    def current_lambda(self) -> float:
        return self.final_lambda * self.current_threshold / self.threshold if self.threshold > 0 else 0.0

    def select_mask(self, scores: torch.Tensor) -> torch.Tensor:
        mask = torch.sigmoid(scores) > self.current_threshold
        least = int(MIN_KEPT_SHARE * scores.numel()) + 1
        if int(torch.count_nonzero(mask)) < least:
            mask = topv_mask(scores, least)
        return mask

    def penalty(self) -> torch.Tensor | None:
        lam = self.current_lambda
        if lam == 0.0:
            return None
        return lam * torch.sigmoid(self.mask_scores.float()).mean()

    def extra_repr(self) -> str:
        return (
            super().extra_repr() + f", threshold={self.threshold}, initial_threshold={self.initial_threshold}, "
            f"final_lambda={self.final_lambda}, score_init={self.score_init}"
        )
