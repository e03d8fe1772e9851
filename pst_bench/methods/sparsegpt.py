"""SparseGPT (Frantar & Alistarh, 2023): prune once before fine-tuning, each layer by its OBS updates
under the layer-wise Hessian H = 2·X·Xᵀ of calibration inputs; no trainable parameter beyond the dense
weights (``pst_bench.sparsity.sparsegpt`` says exactly how)."""

# no `from __future__ import annotations`: the schema generator reads SparseGPTParams' annotations as types
import re
from dataclasses import dataclass

from ..errors import ConfigError
from .registry import Method, register_method
from .settings import structure_of
from .wanda import check_one_shot_structure


@dataclass
class SparseGPTParams:
    """SparseGPT's own keys (defaults: the paper's)."""

    calibration_samples: int = 128  # training sequences the Hessians come from (the paper: 128)
    blocksize: int = 128  # columns per lazy-update block (and per adaptive mask selection)
    percdamp: float = 0.01  # dampening: H + percdamp · mean diag(H) · I


def _check(method) -> None:
    if not method.calibration_samples >= 1:
        raise ConfigError(f"method.calibration_samples={method.calibration_samples} must be an integer >= 1")
    if not method.blocksize >= 1:
        raise ConfigError(f"method.blocksize={method.blocksize} must be an integer >= 1")
    if not method.percdamp > 0:
        raise ConfigError(f"method.percdamp={method.percdamp} must be > 0 (the Hessian needs dampening)")
    values = structure_of(method)
    pattern = str(values["pattern"])
    if pattern != "unstructured" and ":" not in pattern:
        raise ConfigError(
            f"method=sparsegpt prunes unstructured or N:M (its OBS updates are per weight): method.pattern={pattern} "
            "needs another method (method=wanda method.schedule=oneshot method.comparison=matrix prunes it once)"
        )
    check_one_shot_structure(method, "method=sparsegpt")
    nm = re.fullmatch(r"\s*(\d+):(\d+)\s*", pattern)
    if nm and int(nm.group(2)) >= 1 and method.blocksize % int(nm.group(2)):
        raise ConfigError(f"method.blocksize={method.blocksize} must be a multiple of M={nm.group(2)} for {pattern}")


register_method(
    Method(
        name="sparsegpt",
        label="SparseGPT",
        layer="pst_bench.sparsity.sparsegpt:SparseGPTSparseLinear",
        params=SparseGPTParams,
        check=_check,
        prunes_once=True,
        color="tab:brown",
    )
)
