"""Finding modules of a model by name pattern, and swapping one for another.

Patterns are regular expressions matched against the full module name
(``re.fullmatch``), so ``encoder\\..*\\.query`` never matches a module merely
containing that text. Both sparsification (``inject``) and GPT-2's Conv1D
conversion (``conv1d``) choose and replace their modules through here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from torch import nn


def matching_module_names(
    model: nn.Module, patterns: Iterable[str], leaves_only: bool = False, kind: type | tuple[type, ...] | None = None
) -> list[str]:
    """Full names, in ``named_modules`` order, of the modules matching any pattern.

    ``leaves_only`` skips modules with children (a split q/k/v container, or a layer
    that is already wrapped); ``kind`` keeps only instances of that class (or classes).
    """
    compiled = [re.compile(pattern) for pattern in patterns]
    return [
        name
        for name, module in model.named_modules()
        if any(regex.fullmatch(name) for regex in compiled)
        and (kind is None or isinstance(module, kind))
        and not (leaves_only and _has_children(module))
    ]


def _has_children(module: nn.Module) -> bool:
    return next(module.children(), None) is not None


def replace_module(model: nn.Module, name: str, new: nn.Module) -> None:
    """Put ``new`` where the submodule ``name`` (a dotted path, as named_modules gives it) is."""
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)
