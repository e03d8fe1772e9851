"""``SparseConfig``: everything that decides how a model is sparsified, as one plain object.

The library's counterpart of peft's ``LoraConfig``, and the only typed copy of a method's keys: it
extends ``MethodSettings`` (the keys every method shares) and PST's ``PstParams`` (``pst_bench.methods``),
and the runner's Hydra schema is generated from the same dataclasses. The runner builds one from its
Hydra config (``from_run_config``), a user writes one by hand; both go through ``get_sparse_model``.
Values are checked by ``pst_bench.methods.checks``, as the runner's are. Importing this module loads
neither Hydra nor OmegaConf nor any runner module.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..methods import MethodSettings, MethodView, find_method, get_method
from ..methods.pst import PstParams


@dataclass
class SparseConfig(PstParams, MethodSettings):
    """How to sparsify a model (defaults: the paper's PST at 90%).

    ``method``: a registered method (``pst_bench.methods``): ``pst`` (frozen W0, trained U·V and importance
    model), ``mvp`` (movement pruning: a trained score per weight, dense training), ``map`` (magnitude,
    dense training) or ``finetune`` (dense, no mask: the baseline). The schedule keys drive
    ``SparseModel.schedule``. PST's keys (r1, r2, alpha1, alpha2, beta, score_terms) are read only when
    method="pst"; another registered method's own keys go in ``method_options`` (``{"seed": 3}``), unset
    ones take its defaults. ``target_modules`` and ``modules_to_save`` (the task head) are regular expressions over
    module names; left ``None``, they come from the preset of the model's ``config.model_type``
    (``pst_bench.adapter.presets``).
    """

    method: str = "pst"
    method_options: dict[str, Any] | None = None  # the own keys (Method.params) of a method other than PST
    # where: None = the model type's preset
    target_modules: list[str] | None = None
    modules_to_save: list[str] | None = None
    unit_roles: dict[str, str] | None = None  # pattern=units: ffn_in, ffn_out, attn_in, attn_out
    conv1d_modules: list[str] | None = None  # GPT-2's Conv1D projections
    qkv_modules: list[str] | None = None  # GPT-2's fused q/k/v, split into three matrices

    def __post_init__(self) -> None:
        from ..methods.checks import check_method  # the runner's checks, one line per problem

        method = get_method(self.method)
        own = set(method.param_names)
        unknown = sorted(set(self.method_options or {}) - own)
        if unknown:
            raise ConfigError(
                f"method_options {unknown} are not keys of method={self.method} (its keys: {sorted(own)})"
            )
        missing = sorted(own - set(self.method_view()))
        if missing:
            raise ConfigError(f"method={self.method} needs method_options {missing} (they have no default)")
        check_method(self.method_view())

    def method_view(self) -> MethodView:
        """This config as the runner's ``cfg.method`` (what the sparsity modules read): the shared keys and
        the method's own (``Method.params``: from ``method_options``, else this config's field, else the
        default)."""
        values = {f.name: getattr(self, f.name) for f in fields(MethodSettings)}
        method = find_method(self.method)
        if method is not None:
            options, defaults = self.method_options or {}, method.param_defaults()
            for key in method.param_names:
                if key in options:
                    values[key] = options[key]
                elif key in _OWN_FIELDS:
                    values[key] = getattr(self, key)
                elif key in defaults:
                    values[key] = defaults[key]
        return MethodView(name=self.method, kind=self.method, **values)

    @classmethod
    def from_run_config(cls, model_cfg, method_cfg) -> SparseConfig:
        """The library config of a runner config's ``model`` and ``method`` groups."""
        from omegaconf import OmegaConf  # the runner's configs only

        method = OmegaConf.to_container(method_cfg, resolve=True) if OmegaConf.is_config(method_cfg) else method_cfg
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in method.items() if key in known}
        values["method"] = method["kind"]
        options = {key: method[key] for key in get_method(method["kind"]).param_names if key not in known}
        values["method_options"] = options or None
        units = model_cfg.get("units")
        values.update(
            target_modules=_list_or_none(model_cfg.get("sparse_targets")),
            modules_to_save=_list_or_none(model_cfg.get("head_modules")),
            unit_roles=dict(units) if units else None,
            conv1d_modules=list(model_cfg.get("conv1d_modules") or []),
            qkv_modules=list(model_cfg.get("qkv_modules") or []) if model_cfg.get("split_qkv") else [],
        )
        return cls(**values)

    # -- JSON ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SparseConfig:
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            known = [f.name for f in fields(cls)]
            raise ConfigError(f"unknown SparseConfig keys {unknown}; this pst-bench knows {known}")
        return cls(**values)

    @classmethod
    def from_json(cls, path: Path) -> SparseConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))


#: Method keys SparseConfig holds as fields (PST's); any other method's go through ``method_options``.
_OWN_FIELDS = frozenset(f.name for f in fields(PstParams))


def _list_or_none(value) -> list | None:
    return None if value is None else list(value)
