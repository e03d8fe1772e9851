"""PST: frozen W0, trainable U·V (rank r2) and importance model A·B (rank r1), R, C.

S = |W0 + β·U·V| + α1·A·B + α2·(R + C), each term optional (``score_terms``, the paper's Table 5).
Only the added matrices train (and the head; biases and norms where ``train_bias_and_norm``); the paper
counts (n + k)(r1 + r2 + 1) per sparsified n × k matrix and nothing else.
"""

# no `from __future__ import annotations`: the schema generator reads PstParams' annotations as types
from dataclasses import dataclass, field

from ..errors import ConfigError
from .registry import Method, register_method

#: The importance-score terms, in the paper's order: mag = |W0 + β·U·V|, ab = α1·A·B, rc = α2·(R + C).
SCORE_TERMS: tuple[str, ...] = ("mag", "ab", "rc")


@dataclass
class PstParams:
    """PST's own keys (defaults: the paper's)."""

    r1: int = 8  # rank of A, B (importance score)
    r2: int = 8  # rank of U, V (weight update)
    alpha1: float = 1.0
    alpha2: float = 1.0
    beta: float = 1.0
    score_terms: list[str] = field(default_factory=lambda: list(SCORE_TERMS))


def _check(method) -> None:
    for key in ("r1", "r2"):
        if not method[key] >= 1:
            raise ConfigError(f"method.{key}={method[key]} must be an integer >= 1")
    terms = list(method.score_terms)
    if not (terms and set(terms) <= set(SCORE_TERMS) and len(set(terms)) == len(terms)):
        raise ConfigError(f"method.score_terms={terms} must be a non-empty subset of [{', '.join(SCORE_TERMS)}]")


def _paper_rule(layer) -> int:
    n, k = layer.weight_shape
    terms = layer.score_terms
    return (n + k) * (layer.r2 + (layer.r1 if "ab" in terms else 0) + (1 if "rc" in terms else 0))


def _label_of(record) -> str:
    terms = record.score_terms
    return "PST" if tuple(terms) == SCORE_TERMS else f"PST[{'+'.join(terms)}]"


def _method_of_label(label: str) -> str | None:
    if label.startswith("PST[") and label.endswith("]"):
        return "pst_" + label[4:-1].replace("+", "_")
    return None


register_method(
    Method(
        name="pst",
        label="PST",
        layer="pst_bench.sparsity.layers:PSTSparseLinear",
        params=PstParams,
        trains="added",
        paper_rule=_paper_rule,
        counts_model=False,
        check=_check,
        label_of=_label_of,
        method_of_label=_method_of_label,
    )
)
