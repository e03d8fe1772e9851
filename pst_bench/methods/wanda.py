"""Wanda (Sun et al., 2023): S = |W_ij| · ‖X_j‖₂, no trainable parameter beyond the dense weights.

``schedule: cubic`` prunes gradually inside MaP's cubic schedule with a running input statistic over the
training batches; ``schedule: oneshot`` prunes once before fine-tuning from ``calibration_samples``
sequences of the training set, as the paper (``pst_bench.sparsity.wanda`` says exactly how).
"""

# no `from __future__ import annotations`: the schema generator reads WandaParams' annotations as types
from dataclasses import dataclass

from ..errors import ConfigError
from .registry import Method, register_method
from .settings import structure_of

SCHEDULES = ("cubic", "oneshot")
COMPARISONS = ("output", "matrix")
#: patterns whose units lie within one output row (Wanda's per-output comparison keeps its meaning)
_ROW_LOCAL = ("unstructured", "N:M")


@dataclass
class WandaParams:
    """Wanda's own keys (defaults: the paper's where it has one)."""

    schedule: str = "cubic"  # cubic: gradual, as MaP | oneshot: prune once before fine-tuning
    calibration_samples: int = 128  # oneshot: training sequences the norms come from (the paper: 128)
    norm_ema: float | None = 0.99  # cubic: EMA of the per-step mean square per feature; null = cumulative
    comparison: str = "output"  # output: each row keeps its best (the paper) | matrix: one top-v per matrix


def pattern_kind(pattern: str) -> str:
    return "N:M" if ":" in str(pattern) else str(pattern)


def check_one_shot_structure(method, name: str) -> None:
    """One-shot methods prune layer by layer: one selection per matrix."""
    values = structure_of(method)
    if values["scope"] != "layer" or values["pattern"] == "units":
        raise ConfigError(
            f"{name} prunes block by block before training: method.scope=global and method.pattern=units need "
            "a gradual method (method=wanda method.schedule=cubic); set method.scope=layer"
        )


def _check(method) -> None:
    if method.schedule not in SCHEDULES:
        raise ConfigError(f"method.schedule={method.schedule!r}: choose one of {', '.join(SCHEDULES)}")
    if method.comparison not in COMPARISONS:
        raise ConfigError(f"method.comparison={method.comparison!r}: choose one of {', '.join(COMPARISONS)}")
    if not method.calibration_samples >= 1:
        raise ConfigError(f"method.calibration_samples={method.calibration_samples} must be an integer >= 1")
    ema = method.norm_ema
    if ema is not None and not 0.0 <= ema < 1.0:
        raise ConfigError(f"method.norm_ema={ema} must be in [0, 1) or null (the cumulative mean)")
    values = structure_of(method)
    if method.comparison == "output" and (
        pattern_kind(values["pattern"]) not in _ROW_LOCAL or values["scope"] != "layer"
    ):
        raise ConfigError(
            f"method.comparison=output compares weights within each output row: method.pattern={values['pattern']} "
            f"with method.scope={values['scope']} ranks across rows; add method.comparison=matrix"
        )
    if method.schedule == "oneshot":
        check_one_shot_structure(method, "method=wanda method.schedule=oneshot")


def _is_one_shot(method) -> bool:
    return method.get("schedule", "cubic") == "oneshot"


def _variant(method) -> tuple[str, ...]:
    return ("oneshot",) if _is_one_shot(method) else ()


def _label_of(record) -> str:
    return "Wanda (one-shot)" if _is_one_shot(record.method_config) else "Wanda"


def _method_of_label(label: str):
    return "wanda_oneshot" if label == "Wanda (one-shot)" else None


register_method(
    Method(
        name="wanda",
        label="Wanda",
        layer="pst_bench.sparsity.wanda:wanda_layer",
        params=WandaParams,
        check=_check,
        label_of=_label_of,
        method_of_label=_method_of_label,
        prunes_once=_is_one_shot,
        variant_of=_variant,
        color="tab:orange",
    )
)
