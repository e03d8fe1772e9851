"""Wanda (Sun et al., 2023, "A Simple and Effective Pruning Approach for Large Language Models"):
S_ij = |W_ij| · ‖X_j‖₂, the weight's magnitude times the norm of its input feature over tokens.

Two schedules (``method.schedule``):

- ``cubic`` (gradual Wanda, ``WandaSparseLinear``): the score replaces MaP's |W| inside the same cubic
  schedule, and W trains densely as under MaP; no parameter is added. ‖X_j‖₂ is a running statistic of
  the training batches' inputs to the layer, over their non-padding tokens (``activations``): every
  optimizer step's micro-batches give m_j = Σ_t x_tj² / T (their mean square of feature j per token),
  folded into the running statistic at the step's end, either as an exponential moving average over
  steps (``method.norm_ema`` = β: a ← β·a + (1 − β)·m, bias-corrected as Adam's moments, so the first
  step's m is used as it is) or, with ``norm_ema: null``, as the cumulative mean over every training token
  seen. ‖X_j‖ is √a_j (the √T factor of the paper's sum over tokens scales every score of a matrix alike
  and changes no ranking). Until the first step's batches are folded in (the warm-up, at sparsity 0)
  the score is |W|. The statistics are buffers, kept in checkpoints, so a resumed run ranks as an
  uninterrupted one. Statistics are folded when the weights have moved (once per optimizer step, the
  first time a mask is asked for), so every micro-batch of a step shares one mask.
- ``oneshot`` (``OneShotWandaSparseLinear``): the paper's algorithm: ‖X_j‖₂ from
  ``method.calibration_samples`` sequences of the training set (128 in the paper), layer by layer with
  the pruned blocks' outputs as the next blocks' inputs (``oneshot``), the mask chosen once at the target
  sparsity and kept while the remaining weights are fine-tuned.

``method.comparison``: ``output`` compares weights within each output row (each row of W keeps its
round((1 − s)·k) best, the paper's per-output comparison group); ``matrix`` ranks the whole matrix as
MaP and PST do (then the score is the only difference from MaP). N:M groups lie within a row, so N:M
goes with either; block, row, column and unit patterns rank across rows and need ``comparison=matrix``.
"""

from __future__ import annotations

import torch
from torch import nn

from .activations import InputNorms, select_tokens
from .layers import SparseLinear
from .mask import kept_count
from .oneshot import OneShotSparseLinear
from .patterns import UNSTRUCTURED

COMPARISONS = ("output", "matrix")
SCHEDULES = ("cubic", "oneshot")


@torch.no_grad()
def per_output_mask(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Each row keeps its round((1 − s)·k) highest scores (``topk`` per row, no sort)."""
    n, k = scores.shape
    keep = kept_count(k, sparsity)
    if keep >= k:
        return torch.ones_like(scores, dtype=torch.bool)
    mask = torch.zeros_like(scores, dtype=torch.bool)
    if keep > 0:
        mask.scatter_(1, scores.float().topk(keep, dim=1, sorted=False).indices, True)
    return mask


def wanda_select(layer: SparseLinear, scores: torch.Tensor) -> torch.Tensor:
    """The layer's mask from Wanda scores: per output row for unstructured ``comparison=output``, else the
    pattern's selection (as every method's)."""
    if layer.comparison == "output" and layer.pattern is UNSTRUCTURED and layer.mask_group is None:
        return per_output_mask(scores, layer.sparsity)
    return layer.pattern.mask(scores, layer.sparsity)


class WandaSparseLinear(SparseLinear):
    """Gradual Wanda: S = |W| · √a, a the running mean square of each input feature (module docstring)."""

    method = "wanda"
    state_buffer_names = ("input_stat", "input_weight", "pending_sq", "pending_tokens")
    collects_inputs = True

    def __init__(self, base_layer: nn.Linear, norm_ema: float | None = 0.99, comparison: str = "output"):
        super().__init__(base_layer)
        if comparison not in COMPARISONS:
            raise ValueError(f"comparison={comparison!r}: choose one of {', '.join(COMPARISONS)}")
        k = self.weight_shape[1]
        device = base_layer.weight.device
        self.norm_ema = None if norm_ema is None else float(norm_ema)
        self.comparison = comparison
        # a_j = input_stat_j / input_weight: an EMA with its bias correction, or a sum over tokens / count
        self.register_buffer("input_stat", torch.zeros(k, device=device))
        self.register_buffer("input_weight", torch.zeros((), device=device))
        # this step's micro-batches, folded in once the weights have moved
        self.register_buffer("pending_sq", torch.zeros(k, device=device))
        self.register_buffer("pending_tokens", torch.zeros((), device=device))
        self.token_mask = None
        self._folded_at = None

    @torch.no_grad()
    def fold_statistics(self) -> None:
        """Fold the pending micro-batches into the running statistic (no device sync). Under several
        processes (DDP) the pending sums are summed over them first, so every process ranks by the same
        statistic and keeps the same mask (every process folds at the same point: the first mask asked
        for after an optimizer step)."""
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        if distributed and torch.distributed.get_world_size() > 1:
            torch.distributed.all_reduce(self.pending_sq)
            torch.distributed.all_reduce(self.pending_tokens)
        pending = self.pending_tokens
        if self.norm_ema is None:
            self.input_stat.add_(self.pending_sq)
            self.input_weight.add_(pending)
        else:
            beta, has = self.norm_ema, pending > 0
            step_mean = self.pending_sq / pending.clamp_min(1.0)
            self.input_stat.copy_(torch.where(has, beta * self.input_stat + (1 - beta) * step_mean, self.input_stat))
            self.input_weight.copy_(torch.where(has, beta * self.input_weight + (1 - beta), self.input_weight))
        self.pending_sq.zero_()
        self.pending_tokens.zero_()

    def input_norms(self) -> torch.Tensor:
        """‖X_j‖ (up to a factor common to the matrix): √a_j, or 1 before any statistic."""
        seen = self.input_weight > 0
        return torch.where(seen, (self.input_stat / self.input_weight.clamp_min(1e-30)).sqrt(), 1.0)

    def importance_scores(self) -> torch.Tensor:
        return self.base_layer.weight.detach().abs() * self.input_norms().to(self.base_layer.weight.dtype)

    def score_inputs(self) -> list[torch.Tensor]:
        # the weights moved (an optimizer step, a checkpoint load): the last step's batches count now
        version = self._versions([self.base_layer.weight])
        if version != self._folded_at:
            self._folded_at = version
            self.fold_statistics()
        return [self.base_layer.weight, self.input_stat, self.input_weight]

    def select_mask(self, scores: torch.Tensor) -> torch.Tensor:
        return wanda_select(self, scores)

    def masked_weight(self, mask: torch.Tensor) -> torch.Tensor:
        return self.base_layer.weight * mask

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        output = super().forward(inputs)
        if self.training and torch.is_grad_enabled():  # training batches only, never evaluation
            with torch.no_grad():
                x = select_tokens(inputs, self.token_mask)
                self.pending_sq.add_(x.square().sum(dim=0))
                self.pending_tokens.add_(x.shape[0])
        return output

    def extra_repr(self) -> str:
        return super().extra_repr() + f", norm_ema={self.norm_ema}, comparison={self.comparison}"


class OneShotWandaSparseLinear(OneShotSparseLinear):
    """One-shot Wanda: the mask from |W| · ‖X_j‖ of the calibration tokens, then fixed."""

    method = "wanda"
    state_buffer_names = OneShotSparseLinear.state_buffer_names + ("input_sq_mean",)

    def __init__(self, base_layer: nn.Linear, calibration_samples: int = 128, comparison: str = "output"):
        super().__init__(base_layer, calibration_samples)
        if comparison not in COMPARISONS:
            raise ValueError(f"comparison={comparison!r}: choose one of {', '.join(COMPARISONS)}")
        self.comparison = comparison
        k = self.weight_shape[1]
        self.register_buffer("input_sq_mean", torch.ones(k, device=base_layer.weight.device))

    def new_statistic(self) -> InputNorms:
        return InputNorms(self.weight_shape[1], self.base_layer.weight.device)

    def importance_scores(self) -> torch.Tensor:
        """The Wanda score with the calibration norms (the mask itself was chosen from the weights then)."""
        weight = self.base_layer.weight.detach()
        return weight.abs() * self.input_sq_mean.sqrt().to(weight.dtype)

    def prune_from(self, statistic: InputNorms) -> torch.Tensor:
        self.input_sq_mean.copy_(statistic.mean_sq())
        return wanda_select(self, self.importance_scores().float())

    def extra_repr(self) -> str:
        return super().extra_repr() + f", comparison={self.comparison}"


def wanda_layer(
    base_layer: nn.Linear,
    schedule: str = "cubic",
    calibration_samples: int = 128,
    norm_ema: float | None = 0.99,
    comparison: str = "output",
) -> SparseLinear:
    """The Wanda layer of ``method.schedule``: gradual (cubic) or one-shot."""
    if schedule == "oneshot":
        return OneShotWandaSparseLinear(base_layer, calibration_samples, comparison)
    if schedule != "cubic":
        raise ValueError(f"schedule={schedule!r}: choose one of {', '.join(SCHEDULES)}")
    return WandaSparseLinear(base_layer, norm_ema, comparison)
