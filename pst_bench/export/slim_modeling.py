"""Loading a slim export whose attention lost heads, in plain transformers (``trust_remote_code=True``).

This file is copied as ``modeling_pst_slim.py`` into every slim export that removed heads, and the
export's ``config.json`` points transformers' Auto classes at it (``auto_map``), so that

    AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True)

(or ``AutoModelForCausalLM`` for GPT-2) loads the smaller model with no pst-bench installed. It imports
only torch and transformers. Each ``PstSlim<Base>`` class is the stock class whose q, k, v and
attention output projections are built with the head counts recorded under ``config.pst_slim``
(removed heads are gone from the weights); everything else is the stock model. pst-bench's slimming
(``pst_bench.export.slim``) uses the same helpers to find the modules and size them.
"""

from __future__ import annotations

import re

import torch
import transformers
from torch import nn
from transformers.pytorch_utils import Conv1D

SLIM_KEY = "pst_slim"
ROLES = ("ffn_in", "ffn_out", "attn_in", "attn_out")
#: The stock classes a slim export can be loaded as, each as PstSlim<name> below.
BASES = (
    "BertForSequenceClassification",
    "RobertaForSequenceClassification",
    "GPT2LMHeadModel",
    "GPT2ForSequenceClassification",
)


def weight_of(module) -> torch.Tensor:
    """The (out, in) weight of a Linear or a GPT-2 Conv1D."""
    return module.weight.t() if isinstance(module, Conv1D) else module.weight


def group_by_role(named, units: dict) -> dict[int, dict[str, list]]:
    """{layer index: {role: [values]}} of (name, value) pairs whose name a units pattern matches
    (the first role that matches; group 1 of the pattern is the layer index)."""
    compiled = {role: re.compile(units[role]) for role in ROLES}
    found: dict[int, dict[str, list]] = {}
    for name, value in named:
        for role, regex in compiled.items():
            match = regex.fullmatch(name)
            if match:
                found.setdefault(int(match.group(1)), {}).setdefault(role, []).append(value)
                break
    return found


def module_roles(model, units: dict) -> dict[int, dict[str, list[str]]]:
    """{layer index: {role: [module names]}} of the model's linear maps, from the units patterns."""
    linear = [(name, name) for name, module in model.named_modules() if isinstance(module, (nn.Linear, Conv1D))]
    return group_by_role(linear, units)


def head_rows(keep_heads: torch.Tensor, num_heads: int, head_dim: int, rows: int) -> torch.Tensor:
    """Row indices of the kept heads in a q/k/v projection (a fused one holds q, k, v in turn)."""
    parts = rows // (num_heads * head_dim)
    return torch.arange(rows).view(parts, num_heads, head_dim)[:, keep_heads].reshape(-1)


def set_attention_width(model, attention_name: str, heads: int, head_dim: int) -> None:
    """The head count and width attributes an attention module reads (GPT-2 splits c_attn by width)."""
    attention = model.get_submodule(attention_name)
    for attr in ("num_attention_heads", "num_heads"):
        if hasattr(attention, attr):
            setattr(attention, attr, heads)
    for attr in ("all_head_size", "split_size"):
        if hasattr(attention, attr):
            setattr(attention, attr, heads * head_dim)


def replace(model, name: str, new) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, new)


def _empty_like(module, rows: int, cols: int):
    """A layer of the same kind with the given (out, in) shape; its values come from the checkpoint."""
    if isinstance(module, Conv1D):
        return Conv1D(rows, cols)
    return nn.Linear(cols, rows, bias=module.bias is not None)


def shrink_attention(model, info: dict) -> None:
    """Build every layer's attention with the recorded head count (shapes only)."""
    roles = module_roles(model, info["units"])
    num_heads = int(model.config.num_attention_heads)
    for index, kept in info["heads"].items():
        members = roles[int(index)]
        head_dim = weight_of(model.get_submodule(members["attn_out"][0])).shape[1] // num_heads
        if kept >= num_heads:
            continue
        for name in members["attn_in"]:
            module = model.get_submodule(name)
            rows, cols = weight_of(module).shape
            replace(model, name, _empty_like(module, rows // num_heads * kept, cols))
        out_name = members["attn_out"][0]
        rows, _ = weight_of(model.get_submodule(out_name)).shape
        replace(model, out_name, _empty_like(model.get_submodule(out_name), rows, kept * head_dim))
        set_attention_width(model, members["attn_in"][0].rsplit(".", 1)[0], kept, head_dim)


def _slim_class(base_name: str):
    base = getattr(transformers, base_name)

    def __init__(self, config, *args, **kwargs):
        base.__init__(self, config, *args, **kwargs)
        info = getattr(config, SLIM_KEY, None)
        if info:
            shrink_attention(self, info)

    return type(f"PstSlim{base_name}", (base,), {"__init__": __init__, "__module__": __name__})


for _name in BASES:
    globals()[f"PstSlim{_name}"] = _slim_class(_name)
