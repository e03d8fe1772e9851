"""The settings every method shares (schedule, what else trains, mask structure), as one plain dataclass.

``MethodSettings`` is the single typed copy of these keys: the library's ``SparseConfig`` extends it,
and the runner's Hydra schema (``pst_bench.schema.structured.MethodConfig``) is generated from it.
Nothing here imports torch, Hydra or OmegaConf.
"""

# no `from __future__ import annotations`: the schema generator reads these annotations as types
from dataclasses import dataclass, field
from typing import Any

#: A method's mask-structure keys and their defaults (the paper's setting: one unstructured top-v per
#: matrix). Records written before these keys existed have none of them: readers fill the defaults in
#: (``structure_of``), and a run's identity leaves out a key that holds its default, so those runs keep
#: their ids and sweeps still resume them (``pst_bench.record.identity_config``).
STRUCTURE_DEFAULTS: dict[str, Any] = {
    "pattern": "unstructured",
    "block_shape": [4, 4],
    "units": ["ffn", "head"],
    "scope": "layer",
    "matrix_sparsity_min": None,
    "matrix_sparsity_max": None,
}


def structure_of(method_cfg) -> dict[str, Any]:
    """The structure keys of a method config (a DictConfig, a record's dict, a ``MethodView``), defaults
    filled in."""
    values = {}
    for key, default in STRUCTURE_DEFAULTS.items():
        value = method_cfg.get(key, default)
        values[key] = list(value) if isinstance(default, list) and value is not None else value
    return values


@dataclass
class MethodSettings:
    """Keys of every method: the cubic schedule, biases and norms, and the mask structure."""

    sparsity: float = 0.9  # target (final) fraction of pruned weights, in [0, 1)
    initial_sparsity: float = 0.0  # held during warm-up
    warmup_frac: float = 0.1  # fraction of steps at initial sparsity
    cooldown_frac: float = 0.3  # fraction of steps at the target sparsity
    train_bias_and_norm: bool = False  # methods that freeze W0 (PST): biases and LayerNorm train too
    # mask structure (README, "Sparsity patterns"; pst_bench.sparsity.structure)
    pattern: str = STRUCTURE_DEFAULTS["pattern"]  # unstructured | N:M (e.g. 2:4) | block | row | column | units
    block_shape: list[int] = field(default_factory=lambda: list(STRUCTURE_DEFAULTS["block_shape"]))  # [b_out, b_in]
    units: list[str] = field(default_factory=lambda: list(STRUCTURE_DEFAULTS["units"]))  # for pattern=units
    scope: str = STRUCTURE_DEFAULTS["scope"]  # layer | global
    matrix_sparsity_min: float | None = None  # per-matrix (per unit set) bounds at the final sparsity
    matrix_sparsity_max: float | None = None


class MethodView(dict):
    """A method's keys as the sparsity modules read them: ``view.kind``, ``view["r1"]``, ``view.get(...)``.

    The library's stand-in for the runner's ``cfg.method`` (a DictConfig), without OmegaConf."""

    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None
