"""The method registry: one ``Method`` per method, the only place that knows what a method is.

A method registers once (``register_method``): its layer class, the keys of its own (a dataclass), its
paper label, its parameter rule, what it trains and its checks. Everything else asks the registry:
``sparsity.inject`` builds the layers, ``schema.structured`` types the runner's method configs,
``methods.checks`` validates them, ``models.params`` counts by the paper's rule, ``report.labels``
names the rows.

The built-in methods are the modules of this package (``finetune``, ``map``, ``mvp``, ``pst``, and the
baselines beyond the paper ``wanda``, ``sparsegpt``, ``soft_mvp``); every
such module is imported the first time the registry is asked, so adding a method means adding one
module here and one YAML file under ``conf/method`` (a method defined elsewhere calls
``register_method`` itself before its config is composed).

Torch-free: a layer class may be named by its import path (``"pst_bench.sparsity.layers:MagnitudeSparseLinear"``)
and is imported when a model is sparsified.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import MISSING, dataclass, fields
from typing import Any

from ..errors import ConfigError

#: Modules of this package that define no method.
_INFRASTRUCTURE = {"registry", "settings", "checks"}


@dataclass(frozen=True)
class Method:
    """What makes a method, in one place.

    ``name``: the ``method.kind`` value. ``label``: the paper's name of its rows. ``layer``: the sparse
    layer class wrapping each target ``nn.Linear`` (or its ``"module:Class"`` path), ``None`` for a dense
    method (no mask, sparsity 0). ``params``: a dataclass of the keys only this method has; each is passed
    to the layer's constructor by name. ``trains``: ``"all"`` (every weight trains) or ``"added"`` (only
    the layer's added parameters, the task head and, where ``train_bias_and_norm``, biases and norms).
    ``paper_rule``: trainable parameters the paper attributes to one sparsified matrix; ``counts_model``:
    whether the paper adds the model's nominal size to them. ``check``: value checks of the method's own
    keys (``ConfigError`` in one line). ``label_of``: the label of a record where it depends on the keys
    (PST's score terms); ``method_of_label``: the inverse, for labels the paper names.
    ``prunes_once``: whether a method config prunes once before training from calibration data (the mask
    then stays fixed: SparseGPT, one-shot Wanda), a bool or a function of the method config.
    ``variant_of``: what a record's method config computes beyond its kind (one-shot Wanda:
    ``("oneshot",)``), so reports never take two variants for two tuning points of one method.
    ``sparsity_control``: ``"schedule"`` (the mask keeps exactly the scheduled share) or ``"penalty"``
    (a threshold and a penalty set it: the achieved sparsity is an outcome, soft movement pruning).
    ``color``: the colour of its curves in figures (None: one of the report's spare colours).
    """

    name: str
    label: str
    layer: type | str | None = None
    params: type | None = None
    trains: str = "all"
    paper_rule: Callable[[Any], int] | None = None
    counts_model: bool = True
    check: Callable[[Any], None] | None = None
    label_of: Callable[[Any], str] | None = None
    method_of_label: Callable[[str], str | None] | None = None
    prunes_once: bool | Callable[[Any], bool] = False
    variant_of: Callable[[Any], tuple[str, ...]] | None = None
    sparsity_control: str = "schedule"
    color: str | None = None

    def __post_init__(self):
        if self.trains not in ("all", "added"):
            raise ValueError(f"method {self.name}: trains={self.trains!r} must be 'all' or 'added'")
        if self.sparsity_control not in ("schedule", "penalty"):
            raise ValueError(f"method {self.name}: sparsity_control={self.sparsity_control!r}: schedule or penalty")

    def is_one_shot(self, method_cfg) -> bool:
        """Whether this method config prunes once, before training, from calibration batches."""
        return bool(self.prunes_once(method_cfg) if callable(self.prunes_once) else self.prunes_once)

    def variant(self, method_cfg) -> tuple[str, ...]:
        """What the config computes beyond its kind, e.g. ``("oneshot",)``; () for most methods."""
        return tuple(self.variant_of(method_cfg)) if self.variant_of else ()

    @property
    def sparse(self) -> bool:
        """Whether the method masks weights (a dense method keeps sparsity 0)."""
        return self.layer is not None

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in fields(self.params)) if self.params else ()

    def param_defaults(self) -> dict[str, Any]:
        """The defaults of the method's own keys (fields without one are left out)."""
        defaults = {}
        for f in fields(self.params) if self.params else ():
            if f.default is not MISSING:
                defaults[f.name] = f.default
            elif f.default_factory is not MISSING:
                defaults[f.name] = f.default_factory()
        return defaults

    def layer_class(self) -> type:
        if isinstance(self.layer, str):
            module, _, name = self.layer.partition(":")
            return getattr(importlib.import_module(module), name)
        return self.layer

    def make_layer(self, base, method_cfg):
        """The method's sparse layer around ``base``, built with the method's own keys of ``method_cfg``."""
        kwargs = {}
        for name in self.param_names:
            value = method_cfg[name]
            kwargs[name] = tuple(value) if isinstance(value, list) else value
        return self.layer_class()(base, **kwargs)

    def label_for(self, record) -> str:
        return self.label_of(record) if self.label_of else self.label

    def config_of_label(self, label: str) -> str | None:
        if label == self.label:
            return self.name
        return self.method_of_label(label) if self.method_of_label else None

    def count(self, layer) -> int:
        return self.paper_rule(layer) if self.paper_rule else 0


_METHODS: dict[str, Method] = {}
_LISTENERS: list[Callable[[Method], None]] = []
_loaded = False


def register_method(method: Method, replace: bool = False) -> Method:
    """Add ``method`` to the registry (``replace``: overwrite one of the same name, else an error).

    Whoever listens (``on_register``: the runner's schema, which stores ``base_<name>_method``) hears of it."""
    if method.name in _METHODS and not replace and _METHODS[method.name] != method:
        raise ValueError(f"a method named {method.name!r} is registered already")
    _METHODS[method.name] = method
    for listener in _LISTENERS:
        listener(method)
    return method


def on_register(listener: Callable[[Method], None]) -> None:
    """Call ``listener(method)`` for every method registered from now on (once per listener)."""
    if listener not in _LISTENERS:
        _LISTENERS.append(listener)


def unregister_method(name: str) -> None:
    _METHODS.pop(name, None)


def _load_package_methods() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    package = __name__.rpartition(".")[0]
    for info in pkgutil.iter_modules(importlib.import_module(package).__path__):
        if info.name not in _INFRASTRUCTURE and not info.name.startswith("_"):
            importlib.import_module(f"{package}.{info.name}")


def registered_methods() -> dict[str, Method]:
    """{name: Method} of every registered method, in name order."""
    _load_package_methods()
    return dict(sorted(_METHODS.items()))


def method_names() -> tuple[str, ...]:
    return tuple(registered_methods())


def sparse_method_names() -> tuple[str, ...]:
    return tuple(name for name, method in registered_methods().items() if method.sparse)


def find_method(name: str) -> Method | None:
    return registered_methods().get(name)


def get_method(name: str) -> Method:
    """The registered method ``name`` (``method.kind``), or a one-line ConfigError naming the known ones."""
    method = find_method(name)
    if method is None:
        raise ConfigError(f"method.kind={name!r} is unknown; choose one of {', '.join(method_names())}")
    return method
