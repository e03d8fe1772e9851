"""Physical slimming: a merged model whose masks removed whole FFN neurons or heads, as a smaller dense model.

An FFN neuron whose column of the FFN output projection is all zero adds nothing to the output, and
neither does an attention head whose columns of the attention output projection are all zero (its
q, k, v rows only feed those columns). Removing them (rows of the FFN input projection and of q, k, v,
columns of the output projections, their biases) changes no logit: the slim model computes exactly
what the masked one did, with fewer multiply-adds. ``method.pattern=units`` makes such masks.

Loading:

- FFN neurons: the stock config has one width for every layer (``intermediate_size``, GPT-2's
  ``n_inner``). Layers that kept fewer neurons than the widest one are padded back to its count
  with removed neurons (their output columns are zero, so the logits stay identical), and the
  result loads in vanilla ``transformers`` with ``from_pretrained``.
- Heads: transformers 5 has no head pruning any more (``prune_heads`` and ``config.pruned_heads``
  are gone), and a stock config cannot say "fewer heads of the same size". A model with heads
  removed records the kept count per layer in its config under ``pst_slim`` and carries its loader:
  ``modeling_pst_slim.py`` (a copy of ``pst_bench.export.slim_modeling``, torch and transformers only)
  with ``auto_map`` in ``config.json``, so plain ``AutoModelFor...from_pretrained(folder,
  trust_remote_code=True)`` builds the stock model with q, k, v and the output projection at those
  counts and loads the weights. ``load_slim(folder)`` does that for either kind of export.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
import transformers
from torch import nn
from transformers.pytorch_utils import Conv1D

from ..errors import ConfigError
from ..files import atomic_folder
from ..sparsity.conv1d import conv1d_to_linear, linear_to_conv1d
from ..sparsity.modules import replace_module
from . import slim_modeling
from .slim_modeling import SLIM_KEY, head_rows, module_roles, set_attention_width
from .slim_modeling import weight_of as _weight

REMOTE_CODE = "modeling_pst_slim.py"
#: transformers' Auto class of each base class a slim export can have
AUTO_CLASSES = {
    "BertForSequenceClassification": "AutoModelForSequenceClassification",
    "RobertaForSequenceClassification": "AutoModelForSequenceClassification",
    "GPT2ForSequenceClassification": "AutoModelForSequenceClassification",
    "GPT2LMHeadModel": "AutoModelForCausalLM",
}


def _sliced(module, rows: torch.Tensor | None = None, cols: torch.Tensor | None = None):
    """The same kind of layer with only the given output rows / input columns (and bias entries)."""
    linear = conv1d_to_linear(module) if isinstance(module, Conv1D) else module
    weight = linear.weight.detach()
    weight = weight if rows is None else weight[rows]
    weight = weight if cols is None else weight[:, cols]
    new = nn.Linear(weight.shape[1], weight.shape[0], bias=linear.bias is not None, dtype=weight.dtype)
    with torch.no_grad():
        new.weight.copy_(weight)
        if linear.bias is not None:
            new.bias.copy_(linear.bias.detach() if rows is None else linear.bias.detach()[rows])
    return linear_to_conv1d(new) if isinstance(module, Conv1D) else new


def _roles(model, units_cfg) -> dict[int, dict[str, list[str]]]:
    """{layer index: {role: [module names]}} of the model's linear maps, from the units patterns."""
    found = module_roles(model, dict(units_cfg))
    if not found:
        raise ConfigError(f"no module of {type(model).__name__} matches the units patterns {dict(units_cfg)}")
    return found


def _heads_of(model) -> int:
    return int(model.config.num_attention_heads)


def _shrink_heads(model, roles: dict, keep: torch.Tensor, head_dim: int) -> None:
    """Keep only the ``keep`` heads' rows of q, k, v and columns of the output projection."""
    num_heads = _heads_of(model)
    for name in roles["attn_in"]:
        module = model.get_submodule(name)
        replace_module(
            model, name, _sliced(module, rows=head_rows(keep, num_heads, head_dim, _weight(module).shape[0]))
        )
    out_name = roles["attn_out"][0]
    cols = torch.arange(num_heads * head_dim).view(num_heads, head_dim)[keep].reshape(-1)
    replace_module(model, out_name, _sliced(model.get_submodule(out_name), cols=cols))
    set_attention_width(model, roles["attn_in"][0].rsplit(".", 1)[0], int(keep.numel()), head_dim)


def _first_kept(dead: torch.Tensor, count: int) -> torch.Tensor:
    """Indices of the live units, padded with the first removed ones up to ``count``."""
    live = torch.nonzero(~dead).squeeze(1)
    padding = torch.nonzero(dead).squeeze(1)[: max(0, count - live.numel())]
    return torch.sort(torch.cat([live, padding])).values


@torch.no_grad()
def slim_model(model, units_cfg) -> dict:
    """Remove every dead FFN neuron and head in place (module docstring); returns what was kept."""
    roles = _roles(model, units_cfg)
    num_heads = _heads_of(model)
    dead_ffn, dead_heads = {}, {}
    for index, members in roles.items():
        if "ffn_out" in members:
            dead_ffn[index] = ~_weight(model.get_submodule(members["ffn_out"][0])).detach().any(dim=0)
        if "attn_out" in members:
            out = _weight(model.get_submodule(members["attn_out"][0])).detach()
            dead = ~out.reshape(out.shape[0], num_heads, -1).any(dim=2).any(dim=0)
            dead[0] &= not bool(dead.all())  # keep one head: a layer needs at least one
            dead_heads[index] = dead
    width = max(int((~dead).sum()) for dead in dead_ffn.values()) if dead_ffn else 0
    width = max(width, 1)
    for index, dead in dead_ffn.items():
        keep = _first_kept(dead, width)
        for name in roles[index]["ffn_in"]:
            replace_module(model, name, _sliced(model.get_submodule(name), rows=keep))
        name = roles[index]["ffn_out"][0]
        replace_module(model, name, _sliced(model.get_submodule(name), cols=keep))
    heads_kept = {}
    for index, dead in dead_heads.items():
        if dead.any():
            head_dim = _weight(model.get_submodule(roles[index]["attn_out"][0])).shape[1] // num_heads
            _shrink_heads(model, roles[index], torch.nonzero(~dead).squeeze(1), head_dim)
        heads_kept[index] = int((~dead).sum())
    if dead_ffn:
        setattr(model.config, "n_inner" if model.config.model_type == "gpt2" else "intermediate_size", width)
    removed_heads = any(count < num_heads for count in heads_kept.values())
    loader = "from_pretrained"
    if removed_heads:
        setattr(model.config, SLIM_KEY, {"heads": {str(i): c for i, c in heads_kept.items()}, "units": dict(units_cfg)})
        base = type(model).__name__
        if base not in AUTO_CLASSES:
            raise ConfigError(f"removed heads of a {base} cannot be loaded back; supported: {', '.join(AUTO_CLASSES)}")
        model.config.auto_map = {AUTO_CLASSES[base]: f"{REMOTE_CODE[:-3]}.PstSlim{base}"}
        loader = "from_pretrained(trust_remote_code=True)"
    return {
        "ffn_width": width if dead_ffn else None,
        "ffn_live_per_layer": {str(i): int((~dead).sum()) for i, dead in dead_ffn.items()},
        "heads_per_layer": {str(i): c for i, c in heads_kept.items()},
        "loader": loader,
    }


def save_slim(model, tokenizer, units_cfg, target: Path) -> dict:
    """Slim ``model`` (a merged export, in place) and save it to ``target``; what was kept and the sizes."""
    before = sum(p.numel() for p in model.parameters())
    summary = slim_model(model, units_cfg)
    with atomic_folder(target) as partial:
        model.save_pretrained(partial)
        if tokenizer is not None:
            tokenizer.save_pretrained(partial)
        if getattr(model.config, SLIM_KEY, None):  # the loader travels with the weights
            shutil.copyfile(slim_modeling.__file__, partial / REMOTE_CODE)
    return {
        "dir": str(target),
        "params_before": before,
        "params_after": sum(p.numel() for p in model.parameters()),
        **summary,
    }


def load_slim(path, **from_pretrained_kwargs):
    """A slim export as a model, through transformers' Auto class for its architecture; an export that
    removed heads brings its own loader (``modeling_pst_slim.py``), so remote code is trusted for it."""
    path = Path(path)
    config = transformers.AutoConfig.from_pretrained(path)
    base = config.architectures[0]
    auto_class = getattr(transformers, AUTO_CLASSES.get(base, "AutoModel"))
    trust = bool(getattr(config, SLIM_KEY, None))
    return auto_class.from_pretrained(path, trust_remote_code=trust, **from_pretrained_kwargs).eval()
