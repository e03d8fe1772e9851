"""Top-v binary masks and the straight-through estimator.

``topv_mask`` selects exactly ``v`` entries of a score matrix with
``kthvalue`` (linear time, no full sort). Ties at the threshold are broken
by position (lowest flat index first), so the count is always exact and the
result deterministic.

``StraightThroughMask`` returns a precomputed mask in the forward pass and
hands the incoming gradient unchanged to the scores in the backward pass
(dM/dS := 1), which is how gradients reach importance scores.
"""

from __future__ import annotations

import torch


def kept_count(num_elements: int, sparsity: float) -> int:
    """v = round((1 - p) * n * k): how many entries the mask keeps."""
    return int(round((1.0 - sparsity) * num_elements))


@torch.no_grad()
def topv_mask(scores: torch.Tensor, keep: int) -> torch.Tensor:
    """Boolean mask with exactly ``keep`` True entries at the largest scores."""
    numel = scores.numel()
    if keep >= numel:
        return torch.ones_like(scores, dtype=torch.bool)
    if keep <= 0:
        return torch.zeros_like(scores, dtype=torch.bool)
    flat = scores.detach().reshape(-1).float()
    # The (numel - keep)-th smallest value is the largest pruned score: every
    # score strictly above it is kept, and ties at it fill the remainder.
    threshold = torch.kthvalue(flat, numel - keep).values
    mask = flat > threshold
    missing = keep - int(mask.sum())
    if missing > 0:
        tied = torch.nonzero(flat == threshold, as_tuple=False).squeeze(1)
        mask[tied[:missing]] = True
    return mask.view_as(scores)


class StraightThroughMask(torch.autograd.Function):
    """Forward: the given binary mask (as the scores' dtype). Backward: identity to the scores."""

    @staticmethod
    def forward(ctx, scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return mask.to(scores.dtype)

    @staticmethod
    def backward(ctx, grad_mask: torch.Tensor):
        return grad_mask, None
