"""Value checks of a method's keys, each a one-line ConfigError: the runner's configs and the library's
``SparseConfig`` both go through ``check_method``.

The shared keys (sparsity, schedule, mask structure) are checked here; a method's own keys by its
registry entry's ``check``. Types are not checked here (the runner's structured configs refuse a value
of the wrong type while Hydra composes).
"""

from __future__ import annotations

from ..errors import ConfigError
from ..sparsity.patterns import NM, parse_pattern
from ..sparsity.structure import SCOPES
from ..sparsity.units import UNIT_KINDS
from .registry import get_method, sparse_method_names
from .settings import structure_of


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def check_method(method) -> None:
    """``method``: the runner's ``cfg.method`` or ``SparseConfig.method_view()``."""
    spec = get_method(method.kind)  # raises on an unknown kind, naming the registered ones
    _check(0.0 <= method.sparsity < 1.0, f"method.sparsity={method.sparsity} must be in [0, 1)")
    _check(0.0 <= method.initial_sparsity < 1.0, f"method.initial_sparsity={method.initial_sparsity} must be in [0, 1)")
    _check(
        method.initial_sparsity <= method.sparsity or not spec.sparse,
        f"method.initial_sparsity={method.initial_sparsity} exceeds method.sparsity={method.sparsity}",
    )
    _check(
        spec.sparse or method.sparsity == 0.0,
        f"method={method.kind} is dense: use method={', '.join(sparse_method_names())} for a sparsity above 0",
    )
    fractions = (method.warmup_frac, method.cooldown_frac)
    _check(
        all(0.0 <= f <= 1.0 for f in fractions) and sum(fractions) <= 1.0,
        f"method.warmup_frac + method.cooldown_frac = {sum(fractions)} must be within [0, 1]",
    )
    if spec.check is not None:
        spec.check(method)
    _check_structure(method, spec.sparse)


def _check_structure(method, sparse: bool) -> None:
    """Pattern, scope and bounds (shapes are checked when the layers exist: ``patterns.check``)."""
    values = structure_of(method)
    pattern = values["pattern"]
    if pattern == "unstructured" and values["scope"] == "layer":
        return
    _check(
        sparse,
        f"method={method.name} is dense: method.pattern / method.scope need method={', '.join(sparse_method_names())}",
    )
    _check(values["scope"] in SCOPES, f"method.scope={values['scope']!r}: choose {' or '.join(SCOPES)}")
    if pattern == "units":
        units = values["units"]
        _check(
            bool(units) and set(units) <= set(UNIT_KINDS),
            f"method.units={units} must be a non-empty subset of [{', '.join(UNIT_KINDS)}]",
        )
    else:
        matrix_pattern = parse_pattern(pattern, values["block_shape"])  # raises on an unknown pattern
        if isinstance(matrix_pattern, NM):
            _check(
                abs(method.sparsity - matrix_pattern.final_sparsity) < 1e-9,
                f"method.pattern={pattern} prunes exactly {matrix_pattern.final_sparsity:.0%} of every matrix: "
                f"set method.sparsity={matrix_pattern.final_sparsity:g}",
            )
    low, high = values["matrix_sparsity_min"], values["matrix_sparsity_max"]
    for key, bound in (("matrix_sparsity_min", low), ("matrix_sparsity_max", high)):
        _check(bound is None or 0.0 <= bound <= 1.0, f"method.{key}={bound} must be in [0, 1] or null")
    _check(
        (low is None or low <= method.sparsity) and (high is None or method.sparsity <= high),
        f"method.sparsity={method.sparsity} must lie within method.matrix_sparsity_min={low} and _max={high}",
    )
