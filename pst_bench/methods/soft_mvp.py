"""Soft movement pruning (Sanh et al., 2020): a trainable score per weight as MvP, kept where σ(S) > τ,
with λ · mean σ(S) added to the loss; the achieved sparsity is an outcome of λ
(``pst_bench.sparsity.soft_movement`` says exactly how). Records of it carry ``sparsity_control: penalty``:
``method.sparsity`` is the nominal cell (and shapes the threshold's ramp), the achieved sparsity decides
whether the run belongs to it (``pst_bench.record.RunRecord.cell_sparsity``)."""

# no `from __future__ import annotations`: the schema generator reads SoftMvpParams' annotations as types
from dataclasses import dataclass

from ..errors import ConfigError
from .registry import Method, register_method
from .settings import structure_of


@dataclass
class SoftMvpParams:
    """Soft movement pruning's keys (defaults: the authors' soft movement command, sigmoied_threshold)."""

    threshold: float = 0.1  # final τ on σ(S) (--final_threshold)
    initial_threshold: float = 0.0  # τ during the warm-up (--initial_threshold: every weight kept)
    final_lambda: float = 400.0  # λ of the L1 penalty at the final threshold (--final_lambda)
    score_init: float = 0.0  # every score's start (--mask_init constant --mask_scale 0)


def _check(method) -> None:
    if not 0.0 <= method.initial_threshold <= method.threshold < 1.0:
        raise ConfigError(
            f"method.initial_threshold={method.initial_threshold} and method.threshold={method.threshold} "
            "must satisfy 0 <= initial_threshold <= threshold < 1 (thresholds on sigma(S))"
        )
    if not method.final_lambda >= 0:
        raise ConfigError(f"method.final_lambda={method.final_lambda} must be >= 0")
    if not method.sparsity > 0:
        raise ConfigError(
            f"method.sparsity={method.sparsity}: soft_mvp needs a nominal target above 0 "
            "(it shapes the threshold's ramp)"
        )
    values = structure_of(method)
    if values["pattern"] != "unstructured" or values["scope"] != "layer":
        raise ConfigError(
            "method=soft_mvp keeps every weight whose sigma(S) passes one threshold: "
            f"method.pattern={values['pattern']} / method.scope={values['scope']} need a top-v method "
            "(method=mvp, map, pst or wanda)"
        )


def _one_score_per_weight(layer) -> int:
    n, k = layer.weight_shape
    return n * k


register_method(
    Method(
        name="soft_mvp",
        label="Soft MvP",
        layer="pst_bench.sparsity.soft_movement:SoftMovementSparseLinear",
        params=SoftMvpParams,
        paper_rule=_one_score_per_weight,
        check=_check,
        sparsity_control="penalty",
        color="tab:pink",
    )
)
