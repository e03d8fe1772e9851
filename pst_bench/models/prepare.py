"""Turning a loaded model into the method's trainable model, through the library API (``pst_bench.adapter``).

Config checks: ``pst_bench.schema.validate``.
"""

from __future__ import annotations

from ..adapter import SparseConfig, SparseModel, get_sparse_model
from ..sparsity.layers import SparseLinear


def sparse_model_for(model, model_cfg, method_cfg) -> SparseModel:
    """``get_sparse_model`` with the library config of the run's ``model`` and ``method`` groups."""
    return get_sparse_model(model, SparseConfig.from_run_config(model_cfg, method_cfg))


def prepare_model(model, model_cfg, method_cfg) -> dict[str, SparseLinear]:
    """Insert the method's sparse layers and set what trains (in place); returns the sparse layers by name.

    GPT-2's Conv1D projections first become nn.Linear (q, k, v split when ``split_qkv``); the masks
    then get the method's pattern and scope (``pst_bench.sparsity.structure``).
    """
    return sparse_model_for(model, model_cfg, method_cfg).sparse_layers
