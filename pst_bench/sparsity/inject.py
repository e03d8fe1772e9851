"""Putting sparse layers into a model, choosing what trains, and merging them out.

Target modules are chosen by regular expressions matched against the full
module name (``re.fullmatch``, see ``modules``); a pattern list that matches
nothing is an error, never a silent dense run.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from ..errors import ConfigError
from ..methods import get_method
from .layers import SparseLinear
from .modules import matching_module_names, replace_module


def sparsify(model: nn.Module, target_patterns: Iterable[str], method_cfg) -> dict[str, SparseLinear]:
    """Wrap every nn.Linear matching ``target_patterns`` in the method's sparse layer (its registry entry's)."""
    method = get_method(method_cfg.kind)
    if not method.sparse:
        raise ConfigError(f"method={method.name} is dense: it has no sparse layer")
    patterns = list(target_patterns)
    names = matching_module_names(model, patterns, leaves_only=True)
    if not names:
        sample = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)][:5]
        raise ConfigError(
            f"no module of {type(model).__name__} matches the sparse target patterns "
            f"{patterns}; linear layers look like {sample}"
        )
    layers = {}
    for name in names:
        module = model.get_submodule(name)
        if not isinstance(module, nn.Linear):
            raise ConfigError(f"sparse target {name!r} is a {type(module).__name__}, not nn.Linear")
        layer = method.make_layer(module, method_cfg)
        layer.final_sparsity = float(method_cfg.get("sparsity", 0.0))
        replace_module(model, name, layer)
        layers[name] = layer
    return layers


def sparse_layers(model: nn.Module) -> dict[str, SparseLinear]:
    return {name: m for name, m in model.named_modules() if isinstance(m, SparseLinear)}


def set_sparsity(model: nn.Module, sparsity: float) -> None:
    for layer in sparse_layers(model).values():
        layer.sparsity = float(sparsity)


def method_penalty(model: nn.Module) -> torch.Tensor | None:
    """The term a method adds to the training loss: the mean of its layers' penalties (soft movement's
    λ·mean σ(S) per matrix, averaged over matrices as the authors' code does); None for most methods."""
    terms = [term for layer in sparse_layers(model).values() if (term := layer.penalty()) is not None]
    return torch.stack(terms).mean() if terms else None


def method_buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    """{full name: buffer} of the state the sparse layers keep in buffers (``state_buffer_names``):
    checkpoints and adapters save them beside the trained parameters."""
    return {
        f"{name}.{buffer}": getattr(layer, buffer)
        for name, layer in sparse_layers(model).items()
        for buffer in layer.state_buffer_names
    }


def configure_trainable(model: nn.Module, method_cfg, head_patterns: Iterable[str]) -> None:
    """Set requires_grad as the method's registry entry says (``Method.trains``).

    ``all`` (finetune, MaP, MvP): every parameter trains (MvP's scores included).
    ``added`` (PST): only the layers' added parameters (U, V, A, B, R, C), the task head and, if
    ``method.train_bias_and_norm``, biases and LayerNorm; W0 stays frozen.
    """
    if get_method(method_cfg.kind).trains == "all":
        for param in model.parameters():
            param.requires_grad_(True)
        return
    for param in model.parameters():
        param.requires_grad_(False)
    for layer in sparse_layers(model).values():
        for pname in layer.added_param_names:
            getattr(layer, pname).requires_grad_(True)
    head_patterns = list(head_patterns)
    head_names = matching_module_names(model, head_patterns)
    if head_patterns and not head_names:  # an empty list is legal: GPT-2's LM head is tied and frozen
        raise ConfigError(f"no module matches the task-head patterns {head_patterns}")
    for name in head_names:
        for param in model.get_submodule(name).parameters():
            param.requires_grad_(True)
    if method_cfg.train_bias_and_norm:
        for module in model.modules():
            if isinstance(module, nn.LayerNorm):
                module.requires_grad_(True)
            bias = getattr(module, "bias", None)
            if isinstance(bias, nn.Parameter):
                bias.requires_grad_(True)


def merge_sparse_layers(model: nn.Module) -> nn.Module:
    """Replace every sparse layer by a plain nn.Linear holding W* = M ⊙ W (in place)."""
    for name, layer in sparse_layers(model).items():
        replace_module(model, name, layer.merge())
    return model
