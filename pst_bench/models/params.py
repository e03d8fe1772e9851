"""Trainable-parameter counts: exact, and by the rule the paper printed.

Exact counts are read off the prepared model (every tensor with
requires_grad). The paper's Table 2 rule is different, and each method's
registry entry owns it (``Method.paper_rule``, ``Method.counts_model``): dense
methods print the nominal model size; MvP adds one score per sparsified weight
to it; PST counts (n + k)(r1 + r2 + 1) per sparsified n x k matrix and nothing
else (no task head). See shared/paper/README.md for how the printed numbers relate.
"""

from __future__ import annotations

from ..methods import get_method
from ..sparsity.structure import describe_structure
from .loading import meta_model
from .prepare import prepare_model


def parameter_report(model, layers, model_cfg, method_cfg) -> dict:
    """Counts for a model already prepared for its method."""
    added_ids = {id(getattr(layer, name)) for layer in layers.values() for name in layer.added_param_names}
    all_params = list(model.parameters())
    trainable = [p for p in all_params if p.requires_grad]
    sparse_added = sum(p.numel() for p in trainable if id(p) in added_ids)
    sparsified = sum(layer.base_layer.weight.numel() for layer in layers.values())
    report = {
        "model_params": sum(p.numel() for p in all_params if id(p) not in added_ids),
        "trainable_total": sum(p.numel() for p in trainable),
        "trainable_sparse_added": sparse_added,
        "trainable_other": sum(p.numel() for p in trainable) - sparse_added,
        "sparsified_matrices": len(layers),
        "sparsified_weights": sparsified,
        "paper_rule_m": paper_rule_millions(layers, model_cfg, method_cfg),
        "mask_structure": describe_structure(layers, method_cfg),
    }
    return report


def paper_rule_millions(layers, model_cfg, method_cfg) -> float | None:
    """Trainable parameters (millions) as the paper counts them; None where undefined."""
    method = get_method(method_cfg.kind)
    extra = sum(method.count(layer) for layer in layers.values())
    if not method.counts_model:
        return round(extra / 1e6, 2)
    if model_cfg.nominal_params_m is None:
        return None
    return round(float(model_cfg.nominal_params_m) + extra / 1e6, 2)


def parameter_report_for_config(cfg) -> dict:
    """Counts for cfg.model × cfg.method built on the meta device: no weights are loaded."""
    model = meta_model(cfg.model, cfg.task)
    layers = prepare_model(model, cfg.model, cfg.method)
    return parameter_report(model, layers, cfg.model, cfg.method)


def format_report(cfg, report: dict) -> str:
    rows = [
        ("model", cfg.model.name),
        ("method", cfg.method.name),
        ("task", cfg.task.name),
        ("parameters of the model", f"{report['model_params']:,}"),
        ("sparsified matrices", f"{report['sparsified_matrices']}"),
        ("weights in sparsified matrices", f"{report['sparsified_weights']:,}"),
        ("mask structure", report["mask_structure"]),
        ("trainable, total (exact)", f"{report['trainable_total']:,}"),
        ("  added by the method (scores / U,V,A,B,R,C)", f"{report['trainable_sparse_added']:,}"),
        ("  model weights, head, biases, norms", f"{report['trainable_other']:,}"),
        ("paper rule (M)", "n/a" if report["paper_rule_m"] is None else f"{report['paper_rule_m']:.2f}"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
