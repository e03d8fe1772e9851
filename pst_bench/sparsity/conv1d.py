"""GPT-2's Conv1D projections as nn.Linear, and back: the one place that transposes.

transformers' GPT-2 stores each projection as ``Conv1D`` with weight (in, out) and
computes ``x @ W + b``. The sparse layers wrap ``nn.Linear`` (weight (out, in)), so
the Conv1D layers chosen by ``model.conv1d_modules`` are turned into Linear layers
before sparsification, and turned back at export so that plain ``transformers``
loads the merged checkpoint.

``c_attn`` fuses q, k and v into one (in, 3·hidden) weight. The authors prune q, k
and v as separate matrices, each with its own top-v; with ``split_qkv`` it becomes
a ``QKVProjection`` of three Linear layers whose outputs are concatenated, which
computes exactly what ``c_attn`` did.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from transformers.pytorch_utils import Conv1D

from ..errors import ConfigError
from .modules import matching_module_names, replace_module

_LINEARIZED_ATTR = "_pst_linearized_conv1d"


class QKVProjection(nn.Module):
    """q, k, v as three Linear layers; output = [q(x), k(x), v(x)] like GPT-2's fused c_attn."""

    def __init__(self, q: nn.Linear, k: nn.Linear, v: nn.Linear):
        super().__init__()
        self.q, self.k, self.v = q, k, v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.q(x), self.k(x), self.v(x)], dim=-1)


def _linear_from(weight_in_out: torch.Tensor, bias: torch.Tensor | None) -> nn.Linear:
    n_in, n_out = weight_in_out.shape
    linear = nn.Linear(n_in, n_out, bias=bias is not None, device=weight_in_out.device, dtype=weight_in_out.dtype)
    with torch.no_grad():
        linear.weight.copy_(weight_in_out.t())
        if bias is not None:
            linear.bias.copy_(bias)
    return linear


def conv1d_to_linear(conv: Conv1D) -> nn.Linear:
    return _linear_from(conv.weight, conv.bias)


def linear_to_conv1d(linear: nn.Linear) -> Conv1D:
    conv = Conv1D(linear.out_features, linear.in_features).to(device=linear.weight.device, dtype=linear.weight.dtype)
    with torch.no_grad():
        conv.weight.copy_(linear.weight.t())
        conv.bias.copy_(linear.bias if linear.bias is not None else torch.zeros_like(conv.bias))
    return conv


def split_qkv(conv: Conv1D) -> QKVProjection:
    hidden = conv.weight.shape[1] // 3
    parts = [
        _linear_from(conv.weight[:, i * hidden : (i + 1) * hidden], conv.bias[i * hidden : (i + 1) * hidden])
        for i in range(3)
    ]
    return QKVProjection(*parts)


def fuse_qkv(qkv: QKVProjection) -> Conv1D:
    """Back to one Conv1D (weights concatenated along the output dimension)."""
    parts = [qkv.q, qkv.k, qkv.v]
    fused = nn.Linear(
        parts[0].in_features,
        sum(p.out_features for p in parts),
        device=parts[0].weight.device,
        dtype=parts[0].weight.dtype,
    )
    with torch.no_grad():
        fused.weight.copy_(torch.cat([p.weight for p in parts], dim=0))
        fused.bias.copy_(torch.cat([p.bias for p in parts], dim=0))
    return linear_to_conv1d(fused)


def linearize_conv1d(model: nn.Module, patterns: Iterable[str], qkv_patterns: Iterable[str] = ()) -> list[str]:
    """Replace matching Conv1D modules by nn.Linear (or QKVProjection for ``qkv_patterns``)."""
    patterns = list(patterns)
    names = matching_module_names(model, patterns, kind=Conv1D)
    if patterns and not names:
        raise ConfigError(f"no Conv1D module of {type(model).__name__} matches {patterns}")
    fused_qkv = set(matching_module_names(model, qkv_patterns, kind=Conv1D))
    for name in names:
        conv = model.get_submodule(name)
        replace_module(model, name, split_qkv(conv) if name in fused_qkv else conv1d_to_linear(conv))
    setattr(model, _LINEARIZED_ATTR, names)
    return names


def restore_conv1d(model: nn.Module) -> None:
    """Undo ``linearize_conv1d`` (after merging the masks), so the model saves as plain GPT-2."""
    for name in getattr(model, _LINEARIZED_ATTR, []):
        module = model.get_submodule(name)
        if isinstance(module, QKVProjection):
            replace_module(model, name, fuse_qkv(module))
        elif isinstance(module, nn.Linear):
            replace_module(model, name, linear_to_conv1d(module))
        else:
            raise TypeError(f"{name} is a {type(module).__name__}: merge the sparse layers before restoring")
    setattr(model, _LINEARIZED_ATTR, [])
