"""Structured units that span matrices: FFN neurons and attention heads (``method.pattern=units``).

An FFN neuron j is row j of the FFN input projection and column j of the FFN output projection; an
attention head h is the rows of head h in q, k and v (each a block of head_dim rows; a fused GPT-2
c_attn holds q, k, v one after another) and the matching head_dim columns of the attention output
projection. Removing a kept set of them leaves a smaller dense model (``pst_bench.run.slim``).

A unit's score is the mean of its member weights' scores, summed over its member matrices (the
``patterns`` module says why the mean). The model config's ``units`` block says where the member
matrices are: one regular expression per role whose first group is the transformer layer's index.
"""

from __future__ import annotations

import re

import torch

from ..errors import ConfigError

UNIT_KINDS = ("ffn", "head")
ROLES = ("ffn_in", "ffn_out", "attn_in", "attn_out")


def group_by_role(named, units: dict) -> dict[int, dict[str, list]]:
    """{layer index: {role: [values]}} of (name, value) pairs whose name a units pattern matches
    (the first role that matches; group 1 of the pattern is the layer index).

    ``pst_bench.export.slim_modeling`` keeps its own copy: it ships as a slim export's remote code and
    imports torch and transformers only."""
    compiled = {role: re.compile(units[role]) for role in ROLES}
    found: dict[int, dict[str, list]] = {}
    for name, value in named:
        for role, regex in compiled.items():
            match = regex.fullmatch(name)
            if match:
                found.setdefault(int(match.group(1)), {}).setdefault(role, []).append(value)
                break
    return found


class FfnNeurons:
    """The intermediate neurons of one transformer layer's FFN."""

    kind = "ffn"

    def __init__(self, index: str, ffn_in, ffn_out):
        n_ff = ffn_in.weight_shape[0]
        if ffn_out.weight_shape[1] != n_ff:
            raise ConfigError(
                f"layer {index}: the FFN output projection has {ffn_out.weight_shape[1]} inputs but the input "
                f"projection {n_ff} outputs; check the model's units patterns"
            )
        self.index, self.ffn_in, self.ffn_out = index, ffn_in, ffn_out
        self.num_units = n_ff
        self.unit_size = ffn_in.weight_shape[1] + ffn_out.weight_shape[0]
        self.numel = n_ff * self.unit_size
        self.always_kept = 0

    @property
    def layers(self) -> list:
        return [self.ffn_in, self.ffn_out]

    def unit_scores(self, scores: dict) -> torch.Tensor:
        summed = scores[id(self.ffn_in)].float().sum(dim=1) + scores[id(self.ffn_out)].float().sum(dim=0)
        return summed / self.unit_size

    def masks(self, keep: torch.Tensor, scores: dict) -> dict:
        rows = keep[:, None].expand(self.ffn_in.weight_shape)
        cols = keep[None, :].expand(self.ffn_out.weight_shape)
        return {id(self.ffn_in): rows, id(self.ffn_out): cols}


class AttentionHeads:
    """The heads of one transformer layer's attention: q, k, v rows and output-projection columns."""

    kind = "head"

    def __init__(self, index: str, attn_in: list, attn_out, num_heads: int):
        inner = attn_out.weight_shape[1]
        if inner % num_heads:
            raise ConfigError(f"layer {index}: {num_heads} heads do not divide the attention width {inner}")
        self.head_dim = inner // num_heads
        for layer in attn_in:
            if layer.weight_shape[0] % inner:
                raise ConfigError(
                    f"layer {index}: an attention input projection has {layer.weight_shape[0]} outputs, "
                    f"not a multiple of the attention width {inner}"
                )
        self.index, self.attn_in, self.attn_out, self.num_heads = index, attn_in, attn_out, num_heads
        self.num_units = num_heads
        in_rows = sum(layer.weight_shape[0] // inner * layer.weight_shape[1] for layer in attn_in)
        self.unit_size = self.head_dim * (in_rows + attn_out.weight_shape[0])
        self.numel = num_heads * self.unit_size
        self.always_kept = 0

    @property
    def layers(self) -> list:
        return [*self.attn_in, self.attn_out]

    def _in_view(self, layer, tensor: torch.Tensor) -> torch.Tensor:
        """(parts, heads, head_dim, inputs): parts is 3 for a fused q/k/v projection, else 1."""
        n, k = layer.weight_shape
        return tensor.reshape(n // (self.num_heads * self.head_dim), self.num_heads, self.head_dim, k)

    def unit_scores(self, scores: dict) -> torch.Tensor:
        summed = sum(self._in_view(layer, scores[id(layer)].float()).sum(dim=(0, 2, 3)) for layer in self.attn_in)
        out = scores[id(self.attn_out)].float()
        summed = summed + out.reshape(out.shape[0], self.num_heads, self.head_dim).sum(dim=(0, 2))
        return summed / self.unit_size

    def masks(self, keep: torch.Tensor, scores: dict) -> dict:
        masks = {}
        for layer in self.attn_in:
            n, k = layer.weight_shape
            parts = n // (self.num_heads * self.head_dim)
            masks[id(layer)] = keep.view(1, -1, 1, 1).expand(parts, self.num_heads, self.head_dim, k).reshape(n, k)
        n, _ = self.attn_out.weight_shape
        masks[id(self.attn_out)] = keep.view(1, -1, 1).expand(n, self.num_heads, self.head_dim).reshape(n, -1)
        return masks


def build_unit_entries(layers: dict, units_cfg, kinds, num_heads: int) -> tuple[list, list[str]]:
    """The FFN-neuron and head entries of the sparse layers, and the names of layers in no unit.

    Fails with one line when the model config has no units block, when none of the chosen kinds is
    found, or when a transformer layer lacks a member matrix of a chosen kind.
    """
    if not units_cfg:
        raise ConfigError("method.pattern=units needs the model config's `units` block (where FFN and heads live)")
    entries, covered = [], set()
    for index, roles in sorted(group_by_role(layers.items(), dict(units_cfg)).items()):
        if "ffn" in kinds and ("ffn_in" in roles or "ffn_out" in roles):
            if len(roles.get("ffn_in", [])) != 1 or len(roles.get("ffn_out", [])) != 1:
                raise ConfigError(f"layer {index}: FFN neurons need one input and one output projection")
            entries.append(FfnNeurons(index, roles["ffn_in"][0], roles["ffn_out"][0]))
        if "head" in kinds and ("attn_in" in roles or "attn_out" in roles):
            if not roles.get("attn_in") or len(roles.get("attn_out", [])) != 1:
                raise ConfigError(f"layer {index}: heads need the q/k/v projections and one output projection")
            entries.append(AttentionHeads(index, roles["attn_in"], roles["attn_out"][0], num_heads))
        covered.update(id(layer) for entry in entries for layer in entry.layers)
    if not entries:
        raise ConfigError(f"method.pattern=units: no {' or '.join(kinds)} units among the sparse layers {list(layers)}")
    return entries, [name for name, layer in layers.items() if id(layer) not in covered]
