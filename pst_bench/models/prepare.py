"""Turning a loaded model into the method's trainable model (config checks: pst_bench.schema.validate)."""

from __future__ import annotations

from ..sparsity.conv1d import linearize_conv1d
from ..sparsity.inject import SPARSE_KINDS, configure_trainable, sparsify
from ..sparsity.layers import SparseLinear
from ..sparsity.structure import apply_structure


def prepare_model(model, model_cfg, method_cfg) -> dict[str, SparseLinear]:
    """Insert the method's sparse layers and set what trains; returns the sparse layers by name.

    GPT-2's Conv1D projections first become nn.Linear (q, k, v split when ``split_qkv``); the masks
    then get the method's pattern and scope (``pst_bench.sparsity.structure``).
    """
    if model_cfg.get("conv1d_modules"):
        qkv = model_cfg.qkv_modules if model_cfg.split_qkv else []
        linearize_conv1d(model, model_cfg.conv1d_modules, qkv)
    layers = {}
    if method_cfg.kind in SPARSE_KINDS:
        layers = sparsify(model, model_cfg.sparse_targets, method_cfg)
        apply_structure(model, layers, method_cfg, model_cfg.get("units"))
    configure_trainable(model, method_cfg, model_cfg.head_modules)
    return layers
