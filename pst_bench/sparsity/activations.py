"""What the data-aware methods see of a layer's inputs: the non-padding tokens and their statistics.

Wanda's score needs ‖X_j‖₂, the norm of input feature j over tokens; SparseGPT needs the Hessian
H = 2·X·Xᵀ of the layer's reconstruction loss. Both are sums over **tokens that are not padding**: a
batch of GLUE sentences padded to its longest member carries many pad positions whose hidden states
are not data. ``TokenMask`` learns which positions are real from the ``attention_mask`` the model is
called with (a forward pre-hook on the model, ``install_token_mask``); a sparse layer then keeps only
those rows of its input (``select_tokens``). A layer whose input does not have the batch's (B, L) shape,
or a call without an attention mask, counts every position.

The statistics are token means (``InputNorms``: the mean of x_j² per token; ``HessianSum``: 2·X·Xᵀ over
the number of tokens), so that their scale does not depend on how many batches were seen. A constant
factor changes neither Wanda's ranking nor SparseGPT's updates (its dampening is relative to H's mean
diagonal).
"""

from __future__ import annotations

import torch
from torch import nn


class TokenMask:
    """The non-padding positions of the batch a model is running on (a (B, L) bool tensor, or None)."""

    def __init__(self):
        self.mask: torch.Tensor | None = None

    def capture(self, module, args, kwargs):
        """Forward pre-hook (``with_kwargs``): remember the call's ``attention_mask``."""
        mask = kwargs.get("attention_mask")
        if mask is None and len(args) > 1 and isinstance(args[1], torch.Tensor):
            mask = args[1]  # a positional attention_mask (input_ids, attention_mask, ...)
        self.mask = mask.bool() if isinstance(mask, torch.Tensor) and mask.dim() == 2 else None


def install_token_mask(model: nn.Module, layers) -> TokenMask:
    """Give ``layers`` (sparse layers that collect input statistics) one ``TokenMask`` fed by ``model``."""
    tokens = TokenMask()
    model.register_forward_pre_hook(tokens.capture, with_kwargs=True)
    for layer in layers:
        layer.token_mask = tokens
    return tokens


def select_tokens(inputs: torch.Tensor, tokens: TokenMask | None) -> torch.Tensor:
    """The rows of a layer input (..., k) that are real tokens, as a float32 (T, k) matrix."""
    k = inputs.shape[-1]
    mask = tokens.mask if tokens is not None else None
    if mask is not None and tuple(inputs.shape[:-1]) == tuple(mask.shape):
        return inputs.detach()[mask.to(inputs.device)].float()
    return inputs.detach().reshape(-1, k).float()


class InputNorms:
    """Σ_t x_tj² and the token count T of a layer's inputs: the mean square of feature j is their ratio."""

    def __init__(self, features: int, device):
        self.sum_sq = torch.zeros(features, device=device, dtype=torch.float32)
        self.tokens = 0

    def add(self, x: torch.Tensor) -> None:
        self.sum_sq.add_(x.square().sum(dim=0))
        self.tokens += x.shape[0]

    def mean_sq(self) -> torch.Tensor:
        return self.sum_sq / max(1, self.tokens)


class HessianSum:
    """H = 2·X·Xᵀ / T over the T tokens seen (float32), SparseGPT's layer-wise Hessian; its diagonal / 2
    is Wanda's mean square per feature."""

    def __init__(self, features: int, device):
        self.xtx = torch.zeros(features, features, device=device, dtype=torch.float32)
        self.tokens = 0

    def add(self, x: torch.Tensor) -> None:
        self.xtx.addmm_(x.t(), x)
        self.tokens += x.shape[0]

    def hessian(self) -> torch.Tensor:
        return self.xtx * (2.0 / max(1, self.tokens))

    def mean_sq(self) -> torch.Tensor:
        return torch.diagonal(self.xtx) / max(1, self.tokens)
