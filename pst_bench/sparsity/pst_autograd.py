"""PST's masked weight and linear layer (Eq. 7): fused by hand, and a plain reference to test them against.

With W = W0 + β·U·V, the score S = [|W|] + [α1·A·B] + [α2·(R + C)] (Eq. 6, each
bracketed term optional), the mask M = top-v(S) with a straight-through
estimator (dM/dS := 1) and W' = W ⊙ M, a PST layer computes y = x·W'ᵀ + b.

``PSTLinear`` (training) and ``PSTMaskedWeight`` (evaluation cache, export,
autocast) compute the gradients of U, V, A, B, R, C by hand so that nothing
n x k but the boolean mask lives from the forward to the backward pass.
``reference_pst_linear`` / ``reference_pst_weight`` compute the same with
ordinary autograd ops and keep every intermediate: they are the oracle, not for
training.

All four take the factors in one order, ``U, V, A, B, R, C`` (A, B and R, C are
None when their score term is off), then the mask (the fused ones) or the kept
count v (the reference, which selects the mask itself), then
``beta, alpha1, alpha2, use_magnitude``; ``PSTLinear`` then takes the autocast dtype
(``compute_dtype``, None without autocast).

Mixed precision (``precision``): both fused functions run with autocast off. W' is built in the
parameters' dtype; under autocast ``PSTLinear`` casts x, W' and b to ``compute_dtype`` for the product
(what autocast does to ``nn.Linear``), saves x in that dtype, and computes dL/dx and G = dL/dW' in it,
then the factor gradients in the parameters' dtype from G.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .mask import StraightThroughMask, topv_mask
from .precision import autocast_off


def _pst_factor_grads(ctx, factors, grad_masked, weight=None):
    """Gradients of U, V, A, B, R, C from G = dL/dW', the gradient of the masked weight.

    With W = W0 + β·U·V, the straight-through estimator gives the score gradient
    G_S = G ⊙ W, and S = |W| + α1·A·B + α2·(R + C) yields

        dA = α1·G_S·Bᵀ      dB = α1·Aᵀ·G_S
        dR = α2·G_S·1       dC = α2·1ᵀ·G_S          (row / column sums)
        dW = G ⊙ M + G_S ⊙ sign(W) = G ⊙ (M + |W|)   (the |W| term only with the magnitude score)
        dU = β·dW·Vᵀ        dV = β·Uᵀ·dW

    W is recomputed here rather than saved: W0 is resident anyway and U·V is a
    rank-r2 product, so nothing n x k has to live from the forward to the backward
    pass besides the boolean mask.
    """
    w0, U, V, A, B, mask = factors
    beta, alpha1, alpha2, use_magnitude = ctx.scalars
    if weight is None:
        weight = torch.addmm(w0, U, V, alpha=beta)
    score_grad = grad_masked * weight
    grad_A = grad_B = grad_R = grad_C = None
    if ctx.has_low_rank:
        grad_A = (score_grad @ B.t()).mul_(alpha1)
        grad_B = (A.t() @ score_grad).mul_(alpha1)
    if ctx.has_structure:
        grad_R = score_grad.sum(dim=1).mul_(alpha2)
        grad_C = score_grad.sum(dim=0).mul_(alpha2)
    del score_grad
    # Reuse the weight buffer for dW: one n x k temporary fewer.
    if use_magnitude:
        grad_weight = weight.abs_().add_(mask).mul_(grad_masked)
    else:
        grad_weight = weight.copy_(grad_masked).mul_(mask)
    grad_U = (grad_weight @ V.t()).mul_(beta)
    grad_V = (U.t() @ grad_weight).mul_(beta)
    return grad_U, grad_V, grad_A, grad_B, grad_R, grad_C


def _save_factors(ctx, saved, A, R, scalars) -> None:
    """What both fused backwards need: the small factors, the mask and which score terms exist.

    R and C are not saved: their gradients are sums of G_S, which needs neither.
    """
    ctx.save_for_backward(*saved)
    ctx.scalars = scalars
    ctx.has_low_rank, ctx.has_structure = A is not None, R is not None


class PSTMaskedWeight(torch.autograd.Function):
    """W' = (W0 + β·U·V) ⊙ M with the PST gradients computed by hand (_pst_factor_grads).

    Used where the masked weight itself is needed (evaluation cache, export, and
    training under autocast); plain fp32 training goes through PSTLinear.
    """

    @staticmethod
    def forward(ctx, w0, U, V, A, B, R, C, mask, beta, alpha1, alpha2, use_magnitude):
        with autocast_off(w0.device.type):  # W' in the parameters' dtype (precision)
            weight = torch.addmm(w0, U, V, alpha=beta)
        _save_factors(ctx, (w0, U, V, A, B, mask), A, R, (beta, alpha1, alpha2, use_magnitude))
        return weight.mul_(mask)

    @staticmethod
    def backward(ctx, grad_out):
        w0 = ctx.saved_tensors[0]
        with autocast_off(w0.device.type):
            grads = _pst_factor_grads(ctx, ctx.saved_tensors, grad_out.to(w0.dtype))
        return (None, *grads, None, None, None, None, None)


class PSTLinear(torch.autograd.Function):
    """y = x·W'ᵀ + b with W' = (W0 + β·U·V) ⊙ M, fused so the backward needs no saved W'.

    An unfused ``F.linear(x, masked_weight)`` keeps W' (n x k) alive from the
    forward to the backward pass of every layer, a full extra copy of the frozen
    model during training. Here only x (which any linear layer keeps), the small
    factors and the boolean mask are saved; W' is rebuilt in the backward.
    """

    @staticmethod
    def forward(ctx, inputs, w0, bias, U, V, A, B, R, C, mask, beta, alpha1, alpha2, use_magnitude, compute_dtype=None):
        ctx.input_dtype = inputs.dtype
        with autocast_off(inputs.device.type):
            weight = torch.addmm(w0, U, V, alpha=beta).mul_(mask)  # the parameters' dtype
            if compute_dtype is not None:  # autocast: the product in its dtype, as for nn.Linear
                inputs, weight = inputs.to(compute_dtype), weight.to(compute_dtype)
                bias = None if bias is None else bias.to(compute_dtype)
            output = F.linear(inputs, weight, bias)
        del weight
        _save_factors(ctx, (inputs, w0, U, V, A, B, mask), A, R, (beta, alpha1, alpha2, use_magnitude))
        ctx.has_bias = bias is not None
        return output

    @staticmethod
    def backward(ctx, grad_output):
        inputs, *factors = ctx.saved_tensors
        w0, U, V, _, _, mask = factors
        beta = ctx.scalars[0]
        n, k = w0.shape
        with autocast_off(inputs.device.type):
            grad_2d = grad_output.reshape(-1, n).to(inputs.dtype)  # the product's dtype (x as saved)
            weight = torch.addmm(w0, U, V, alpha=beta)  # W, reused by _pst_factor_grads
            grad_input = grad_bias = None
            if ctx.needs_input_grad[0]:
                masked = weight * mask
                grad_input = (grad_2d @ masked.to(grad_2d.dtype)).view(inputs.shape).to(ctx.input_dtype)
                del masked
            if ctx.has_bias and ctx.needs_input_grad[2]:
                grad_bias = grad_2d.sum(dim=0, dtype=w0.dtype)
            grad_masked = (grad_2d.t() @ inputs.reshape(-1, k)).to(w0.dtype)  # dL/dW', n x k
            grads = _pst_factor_grads(ctx, factors, grad_masked, weight)
        return (grad_input, None, grad_bias, *grads, None, None, None, None, None, None)


# -- the reference: Eq. 6-7 as written, with ordinary autograd ops ----------------------------------------
def reference_pst_scores(weight, A, B, R, C, alpha1, alpha2, use_magnitude) -> torch.Tensor:
    """S = [|W|] + [α1·A·B] + [α2·(R + C)] (Eq. 6), a term present where its factors are."""
    scores = weight.abs() if use_magnitude else torch.zeros_like(weight)
    if A is not None:
        scores = scores + alpha1 * (A @ B)
    if R is not None:
        scores = scores + alpha2 * (R.unsqueeze(1) + C.unsqueeze(0))
    return scores


def reference_pst_weight(w0, U, V, A, B, R, C, keep, beta, alpha1, alpha2, use_magnitude) -> torch.Tensor:
    """W' = W ⊙ top-v(S) with W = W0 + β·U·V; the mask's gradient reaches S straight through."""
    weight = w0 + beta * (U @ V)
    scores = reference_pst_scores(weight, A, B, R, C, alpha1, alpha2, use_magnitude)
    mask = StraightThroughMask.apply(scores, topv_mask(scores, keep))
    return weight * mask


def reference_pst_linear(inputs, w0, bias, U, V, A, B, R, C, keep, beta, alpha1, alpha2, use_magnitude) -> torch.Tensor:
    """y = x·W'ᵀ + b (Eq. 7) through autograd: what PSTLinear must equal, value and gradients."""
    masked = reference_pst_weight(w0, U, V, A, B, R, C, keep, beta, alpha1, alpha2, use_magnitude)
    return F.linear(inputs, masked, bias)
