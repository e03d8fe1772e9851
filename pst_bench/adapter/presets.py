"""Which modules of a model are sparsified, by ``config.model_type``, as the paper does it.

Every linear map inside the transformer blocks (attention q, k, v, output; the MLP's projections) is
sparsified; embeddings, norms and heads stay dense. Patterns are regular expressions over full module
names (``re.fullmatch``, ``pst_bench.sparsity.modules``), written with a leading ``.*`` so that one
preset serves the base model and every head class (``model.layers...`` in a ``LlamaForCausalLM``,
``bert.encoder...`` in a ``BertForSequenceClassification``).

``head_modules`` are a sequence-classification head's names: whichever exist train under PST (a causal
LM's head is the tied embedding, or a vocabulary-size matrix, and stays frozen as GPT-2's does).
``units`` says where FFN neurons and attention heads live (``method.pattern=units``); it is left out
where the units code has no rule yet: gated MLPs (gate and up projections both feed a neuron) and
grouped-query attention (k and v have fewer heads than q).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from torch import nn

from ..errors import ConfigError


@dataclass(frozen=True)
class Preset:
    target_modules: tuple[str, ...]
    head_modules: tuple[str, ...] = ("classifier", "score")
    units: dict | None = None
    conv1d_modules: tuple[str, ...] = ()  # GPT-2: transformers' Conv1D projections, linearized first
    qkv_modules: tuple[str, ...] = ()  # GPT-2: the fused q/k/v projection, split into three


_BERT_LIKE = Preset(
    target_modules=(
        r".*encoder\.layer\.\d+\.attention\.self\.(query|key|value)",
        r".*encoder\.layer\.\d+\.attention\.output\.dense",
        r".*encoder\.layer\.\d+\.(intermediate|output)\.dense",
    ),
    units={
        "ffn_in": r".*encoder\.layer\.(\d+)\.intermediate\.dense",
        "ffn_out": r".*encoder\.layer\.(\d+)\.output\.dense",
        "attn_in": r".*encoder\.layer\.(\d+)\.attention\.self\.(query|key|value)",
        "attn_out": r".*encoder\.layer\.(\d+)\.attention\.output\.dense",
    },
)

_GPT2 = Preset(
    target_modules=(
        r".*h\.\d+\.attn\.c_attn(\.[qkv])?",
        r".*h\.\d+\.attn\.c_proj",
        r".*h\.\d+\.mlp\.(c_fc|c_proj)",
    ),
    units={
        "ffn_in": r".*h\.(\d+)\.mlp\.c_fc",
        "ffn_out": r".*h\.(\d+)\.mlp\.c_proj",
        "attn_in": r".*h\.(\d+)\.attn\.c_attn(\.[qkv])?",
        "attn_out": r".*h\.(\d+)\.attn\.c_proj",
    },
    conv1d_modules=(r".*h\.\d+\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)",),
    qkv_modules=(r".*h\.\d+\.attn\.c_attn",),
)

# Llama, Mistral and Qwen2 share one layout: self_attn.{q,k,v,o}_proj, mlp.{gate,up,down}_proj.
_LLAMA_LIKE = Preset(
    target_modules=(
        r".*layers\.\d+\.self_attn\.(q_proj|k_proj|v_proj|o_proj)",
        r".*layers\.\d+\.mlp\.(gate_proj|up_proj|down_proj)",
    ),
)

_OPT = Preset(
    target_modules=(
        r".*decoder\.layers\.\d+\.self_attn\.(q_proj|k_proj|v_proj|out_proj)",
        r".*decoder\.layers\.\d+\.(fc1|fc2)",
    ),
    units={
        "ffn_in": r".*decoder\.layers\.(\d+)\.fc1",
        "ffn_out": r".*decoder\.layers\.(\d+)\.fc2",
        "attn_in": r".*decoder\.layers\.(\d+)\.self_attn\.(q_proj|k_proj|v_proj)",
        "attn_out": r".*decoder\.layers\.(\d+)\.self_attn\.out_proj",
    },
)

PRESETS: dict[str, Preset] = {
    "bert": _BERT_LIKE,
    "roberta": _BERT_LIKE,
    "gpt2": _GPT2,
    "llama": _LLAMA_LIKE,
    "mistral": _LLAMA_LIKE,
    "qwen2": _LLAMA_LIKE,
    "opt": _OPT,
}


def model_type_of(model: nn.Module) -> str | None:
    return getattr(getattr(model, "config", None), "model_type", None)


def linear_layer_shapes(model: nn.Module) -> list[str]:
    """The model's linear layers as name patterns (layer indices folded into ``\\d+``), once each."""
    from transformers.pytorch_utils import Conv1D

    seen: dict[str, None] = {}
    for name, module in model.named_modules():
        if isinstance(module, (nn.Linear, Conv1D)):
            seen.setdefault(re.sub(r"\.\d+\.", r".\\d+.", name), None)
    return list(seen)


def preset_for(model: nn.Module) -> Preset:
    """The preset of the model's ``config.model_type``; without one, a one-line error that lists the
    model's linear layers so the user can write ``target_modules``."""
    model_type = model_type_of(model)
    if model_type in PRESETS:
        return PRESETS[model_type]
    raise ConfigError(
        f"no preset of target modules for model_type={model_type!r} (presets: {', '.join(sorted(PRESETS))}); "
        f"pass target_modules (regexes over module names). Its linear layers: {', '.join(linear_layer_shapes(model))}"
    )
