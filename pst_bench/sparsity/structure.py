"""Giving a model's sparse layers the mask structure the method config asks for.

``method.pattern`` (``patterns``: unstructured, N:M, block, row, column; ``units``: FFN neurons and
heads) and ``method.scope`` (``layer``: each matrix, or each layer's unit set, alone; ``global``: one
ranking over all of them, ``allocation``). The paper's setting, unstructured per matrix, needs nothing:
every sparse layer starts that way.
"""

from __future__ import annotations

import logging

from ..methods.settings import structure_of
from .allocation import Bounds, MaskGroup, MatrixEntry
from .patterns import KEEP_ALL, UNSTRUCTURED, parse_pattern
from .units import build_unit_entries

log = logging.getLogger(__name__)

SCOPES = ("layer", "global")


def apply_structure(model, layers: dict, method_cfg, units_cfg=None) -> None:
    """Set every sparse layer's pattern and, where masks are chosen together, their mask group."""
    if not layers:
        return
    structure = structure_of(method_cfg)
    bounds = Bounds(structure["matrix_sparsity_min"], structure["matrix_sparsity_max"], float(method_cfg.sparsity))
    if structure["pattern"] == "units":
        num_heads = getattr(model.config, "num_attention_heads", None)
        entries, outside = build_unit_entries(layers, units_cfg, structure["units"], int(num_heads or 0))
        for name in outside:
            layers[name].pattern = KEEP_ALL
        if outside:
            log.warning("pattern=units, units=%s: %d sparse matrices stay dense", structure["units"], len(outside))
        MaskGroup(entries, structure["scope"], bounds)
        return
    pattern = parse_pattern(structure["pattern"], structure["block_shape"])
    for name, layer in layers.items():
        pattern.check(layer.weight_shape, name)
        layer.pattern = pattern
    if structure["scope"] == "global":
        MaskGroup([MatrixEntry(layer, pattern) for layer in layers.values()], "global", bounds)
    elif pattern is not UNSTRUCTURED:
        log.debug("pattern %r on %d matrices, one selection per matrix", pattern, len(layers))


def describe_structure(layers: dict, method_cfg) -> str:
    """One line on how the masks of these layers are chosen (``info=params`` prints it)."""
    if not layers:
        return "none (dense)"
    values = structure_of(method_cfg)
    head = f"pattern={values['pattern']}"
    head += f" {values['block_shape'][0]}x{values['block_shape'][1]}" if values["pattern"] == "block" else ""
    head += f" ({'+'.join(values['units'])})" if values["pattern"] == "units" else ""
    head += f", scope={values['scope']}"
    if values["scope"] == "global" and (
        values["matrix_sparsity_min"] is not None or values["matrix_sparsity_max"] is not None
    ):
        head += (
            f", per-matrix sparsity in [{values['matrix_sparsity_min'] or 0:g}, {values['matrix_sparsity_max'] or 1:g}]"
        )
    groups = {id(layer.mask_group): layer.mask_group for layer in layers.values() if layer.mask_group is not None}
    first = next(iter(layers.values()))
    once = ", chosen once from calibration data" if hasattr(first, "calibration_samples") else ""
    if getattr(first, "comparison", None) == "output" and values["pattern"] == "unstructured":
        return f"{head}: one selection per output row (Wanda's comparison group, {len(layers)} matrices){once}"
    if not groups:
        return f"{head}: one selection per matrix ({len(layers)} matrices){once}"
    parts = []
    for group in groups.values():
        kinds: dict[str, list] = {}
        for entry in group.entries:
            kinds.setdefault(getattr(entry, "kind", "matrix"), []).append(entry)
        sizes = ", ".join(
            f"{len(entries)} matrices' units"
            if kind == "matrix"
            else f"{len(entries)} x {entries[0].num_units} {kind} units"
            for kind, entries in kinds.items()
        )
        how = "one ranking over all of them" if group.scope == "global" else "one selection per layer's set"
        parts.append(f"{sizes}, {how}")
    dense = sum(layer.mask_group is None for layer in layers.values())
    if dense:
        parts.append(f"{dense} matrices left dense")
    return f"{head}: {'; '.join(parts)}"
