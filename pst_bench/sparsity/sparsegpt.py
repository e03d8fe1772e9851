"""SparseGPT (Frantar & Alistarh, 2023, "SparseGPT: Massive Language Models Can Be Accurately Pruned in
One-Shot"): prune a layer once so that its output on the calibration inputs changes least, updating the
weights it keeps.

For a layer W (n × k) and calibration inputs X (k × T tokens) the layer-wise loss ‖WX − ŴX‖² has the
Hessian H = 2·X·Xᵀ, the same for every output row. ``sparsegpt_prune`` is the paper's Algorithm 1:

1. dampening: H + λ·I with λ = ``percdamp`` × mean diag(H) (features never active get H_jj = 1 and
   their weights zeroed);
2. U = the upper Cholesky factor of H⁻¹ (H⁻¹ = UᵀU): row j of U is the first row of (H_{F_j})⁻¹ over
   √ of its first entry, where F_j = {j, …, k − 1} are the columns not yet processed, so one
   factorisation gives every inverse Hessian the column-by-column OBS update needs;
3. columns in blocks of ``blocksize`` (lazy batch updates): at the start of a block, the mask of its
   columns is chosen adaptively from the saliency w²/U_jj² (OBS's w²/[H_F⁻¹]_jj) of the weights as
   updated so far: the lowest-saliency share of the block, every block pruning its share of the
   matrix's exact pruned count; under N:M, the M − N lowest of each row's group of M, chosen when the
   group's first column is reached;
4. column j: the pruned weights of the column are set to 0, and the error δ = (w_j − q_j)/U_jj is spread
   over the block's later columns (w_F −= δ·U_{j,F}), and after the block over all later columns at once.

The kept weights change (that is the point); the pruned are exactly 0. ``SparseGPTSparseLinear`` gathers H
over the calibration batches' non-padding tokens (``activations.HessianSum``) and prunes through
``oneshot.calibrate_sequentially`` (block by block, pruned outputs feeding the next blocks).
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from .activations import HessianSum
from .mask import kept_count, topv_mask
from .oneshot import OneShotSparseLinear
from .patterns import NM, MatrixPattern


def inverse_hessian_factor(hessian: torch.Tensor) -> torch.Tensor:
    """U, upper triangular with H⁻¹ = UᵀU (H already dampened)."""
    lower, info = torch.linalg.cholesky_ex(hessian)
    if int(info) != 0:
        raise ConfigError("SparseGPT: the dampened Hessian is not positive definite; raise method.percdamp")
    return torch.linalg.cholesky(torch.cholesky_inverse(lower), upper=True)


def dampened(hessian: torch.Tensor, weight: torch.Tensor, percdamp: float) -> torch.Tensor:
    """H with dead features set to 1 on the diagonal (their weights zeroed in ``weight``, in place) and
    percdamp × its mean diagonal added."""
    hessian = hessian.clone()
    dead = torch.diagonal(hessian) == 0
    hessian[dead, dead] = 1.0
    weight[:, dead] = 0.0
    hessian.diagonal().add_(percdamp * torch.diagonal(hessian).mean())
    return hessian


def _pruned_before(column: int, columns: int, total_pruned: int) -> int:
    """Weights pruned in the columns before ``column``: the block shares add up to ``total_pruned``."""
    return (total_pruned * column + columns // 2) // columns


@torch.no_grad()
def sparsegpt_prune(
    weight: torch.Tensor,
    hessian: torch.Tensor,
    sparsity: float,
    pattern: MatrixPattern | None = None,
    blocksize: int = 128,
    percdamp: float = 0.01,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(the pruned and updated weight, the boolean mask, True = kept) of ``weight`` (n × k) under the
    layer Hessian ``hessian`` (k × k). Float64 inputs are computed in float64, anything else in float32.
    ``pattern``: unstructured (None) or an ``NM``."""
    dtype = torch.float64 if weight.dtype == torch.float64 else torch.float32
    W = weight.detach().to(dtype).clone()
    n, k = W.shape
    H = dampened(hessian.detach().to(dtype), W, percdamp)
    U = inverse_hessian_factor(H)
    nm = pattern if isinstance(pattern, NM) else None
    total_pruned = n * k - kept_count(n * k, sparsity)
    pruned = torch.zeros(n, k, dtype=torch.bool, device=W.device)
    for i1 in range(0, k, blocksize):
        i2 = min(i1 + blocksize, k)
        W1, U1 = W[:, i1:i2].clone(), U[i1:i2, i1:i2]
        diag = torch.diagonal(U1)
        Q1, Err1 = torch.zeros_like(W1), torch.zeros_like(W1)
        if nm is None:
            count = _pruned_before(i2, k, total_pruned) - _pruned_before(i1, k, total_pruned)
            saliency = W1.square() / diag.square()
            M1 = ~topv_mask(saliency, saliency.numel() - count)
        else:
            M1 = torch.zeros_like(W1, dtype=torch.bool)
        for i in range(i2 - i1):
            if nm is not None and (i1 + i) % nm.m == 0:
                group = slice(i, i + nm.m)
                saliency = W1[:, group].square() / diag[group].square()
                lowest = saliency.topk(nm.m - nm.n, dim=1, largest=False).indices
                M1[:, group] = M1[:, group].scatter(1, lowest, True)
            w = W1[:, i]
            q = torch.where(M1[:, i], torch.zeros_like(w), w)
            err = (w - q) / U1[i, i]
            W1[:, i:] -= torch.outer(err, U1[i, i:])
            Q1[:, i], Err1[:, i] = q, err
        W[:, i1:i2] = Q1
        W[:, i2:] -= Err1 @ U[i1:i2, i2:]
        pruned[:, i1:i2] = M1
    return W, ~pruned


class SparseGPTSparseLinear(OneShotSparseLinear):
    """SparseGPT: H gathered over the calibration tokens, the mask and the kept weights' OBS updates from
    ``sparsegpt_prune``; then the mask is fixed and the kept weights fine-tune densely."""

    method = "sparsegpt"

    def __init__(
        self, base_layer: nn.Linear, calibration_samples: int = 128, blocksize: int = 128, percdamp: float = 0.01
    ):
        super().__init__(base_layer, calibration_samples)
        self.blocksize, self.percdamp = int(blocksize), float(percdamp)

    def new_statistic(self) -> HessianSum:
        return HessianSum(self.weight_shape[1], self.base_layer.weight.device)

    def importance_scores(self) -> torch.Tensor:
        """The mask SparseGPT chose (1 kept, 0 pruned): its saliencies change as it goes and are not kept."""
        return self.frozen_mask.to(self.base_layer.weight.dtype)

    def prune_from(self, statistic: HessianSum) -> torch.Tensor:
        weight = self.base_layer.weight
        pruned, mask = sparsegpt_prune(
            weight, statistic.hessian(), self.sparsity, self.pattern, self.blocksize, self.percdamp
        )
        weight.copy_(pruned.to(weight.dtype))
        return mask

    def extra_repr(self) -> str:
        return super().extra_repr() + f", blocksize={self.blocksize}, percdamp={self.percdamp}"
