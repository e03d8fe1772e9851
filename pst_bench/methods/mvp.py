"""MvP: movement pruning, one trainable score per weight (the paper counts them: n·k per matrix)."""

from .registry import Method, register_method


def _one_score_per_weight(layer) -> int:
    n, k = layer.weight_shape
    return n * k


register_method(
    Method(
        name="mvp",
        label="MvP",
        layer="pst_bench.sparsity.layers:MovementSparseLinear",
        paper_rule=_one_score_per_weight,
    )
)
