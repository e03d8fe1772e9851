"""Value checks of a composed config: ranges, choices and combinations, each a one-line ConfigError.

Types are not checked here: the structured configs (``pst_bench.schema.structured``) refuse a value
of the wrong type, or an unknown key, while Hydra composes.
"""

from __future__ import annotations

from omegaconf import DictConfig
from omegaconf.errors import InterpolationResolutionError

from ..errors import ConfigError
from ..record import SCORE_TERMS
from ..run.compressed import VALUE_DTYPES
from ..schema.structured import structure_of
from ..sparsity.inject import METHOD_KINDS, SPARSE_KINDS
from ..sparsity.patterns import NM, parse_pattern
from ..sparsity.structure import SCOPES
from ..sparsity.units import UNIT_KINDS
from ..tasks import runner_class, task_kind


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def validate_config(cfg: DictConfig) -> None:
    """Reject impossible settings with one line that says which key and why."""
    check_method(cfg.method)
    _check_train(cfg.train)
    compressed = cfg.export_compressed
    _check(
        compressed in (None, False, *VALUE_DTYPES),
        f"export_compressed={compressed!r}: choose {', '.join(VALUE_DTYPES)} or null (off)",
    )
    _check(
        not cfg.get("export_slim") or (cfg.export and structure_of(cfg.method)["pattern"] == "units"),
        "export_slim=true needs export=true and method.pattern=units: other masks remove no whole FFN neuron or head",
    )
    _check_model_fits_task(cfg)


def check_method(method: DictConfig) -> None:
    _check(
        method.kind in METHOD_KINDS, f"method.kind={method.kind!r} is unknown; choose one of {', '.join(METHOD_KINDS)}"
    )
    _check(0.0 <= method.sparsity < 1.0, f"method.sparsity={method.sparsity} must be in [0, 1)")
    _check(0.0 <= method.initial_sparsity < 1.0, f"method.initial_sparsity={method.initial_sparsity} must be in [0, 1)")
    _check(
        method.initial_sparsity <= method.sparsity or method.kind == "finetune",
        f"method.initial_sparsity={method.initial_sparsity} exceeds method.sparsity={method.sparsity}",
    )
    _check(
        method.kind != "finetune" or method.sparsity == 0.0,
        "method=finetune is dense: use method=map, mvp or pst for a sparsity above 0",
    )
    fractions = (method.warmup_frac, method.cooldown_frac)
    _check(
        all(0.0 <= f <= 1.0 for f in fractions) and sum(fractions) <= 1.0,
        f"method.warmup_frac + method.cooldown_frac = {sum(fractions)} must be within [0, 1]",
    )
    if method.kind == "pst":
        _check_pst(method)
    _check_structure(method)


def _check_structure(method: DictConfig) -> None:
    """Pattern, scope and bounds (shapes are checked when the layers exist: ``patterns.check``)."""
    values = structure_of(method)
    pattern = values["pattern"]
    if pattern == "unstructured" and values["scope"] == "layer":
        return
    _check(
        method.kind in SPARSE_KINDS,
        f"method={method.name} is dense: method.pattern / method.scope need method=map, mvp or pst",
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


def _check_pst(method: DictConfig) -> None:
    for key in ("r1", "r2"):
        _check(method[key] >= 1, f"method.{key}={method[key]} must be an integer >= 1")
    terms = list(method.score_terms)
    _check(
        bool(terms) and set(terms) <= set(SCORE_TERMS) and len(set(terms)) == len(terms),
        f"method.score_terms={terms} must be a non-empty subset of [{', '.join(SCORE_TERMS)}]",
    )


def _check_train(train: DictConfig) -> None:
    for key in ("batch_size", "eval_batch_size", "grad_accum_steps", "epochs"):
        _check(train[key] >= 1, f"train.{key}={train[key]} must be >= 1")
    lr = _learning_rate(train)
    _check(lr > 0, f"train.lr={lr} must be > 0")
    for key in ("max_steps", "max_train_examples", "max_eval_examples"):
        _check(train[key] is None or train[key] >= 1, f"train.{key}={train[key]} must be >= 1 or null")


def _learning_rate(train: DictConfig) -> float:
    """train.lr, which a scale may point at the method's own (``${method.lr.cpu}``): a method that names
    none for that scale is a config error here, not an interpolation traceback later."""
    try:
        return train.lr
    except InterpolationResolutionError as err:
        raw = train._get_node("lr")._value()  # the interpolation as written
        reason = str(err).splitlines()[0]
        raise ConfigError(
            f"train.lr={raw} cannot be resolved ({reason}): give the method a learning rate "
            f"for this scale in its method file (method.lr.<scale>) or set train.lr"
        ) from None


def _check_model_fits_task(cfg: DictConfig) -> None:
    runner = runner_class(task_kind(cfg.task))
    _check(
        cfg.model.architecture == runner.architecture,
        f"model={cfg.model.name} is a {cfg.model.architecture} model but task={cfg.task.name} needs a "
        f"{runner.architecture} model ({runner.example_models})",
    )
    if runner.architecture == "sequence_classification":
        _check(cfg.task.num_labels >= 1, f"task.num_labels={cfg.task.num_labels} must be >= 1")
        bias = cfg.task.regression_head_bias
        _check(bias in ("zero", "train_mean"), f"task.regression_head_bias={bias!r}: choose zero or train_mean")
        _check(
            bias == "zero" or cfg.task.is_regression,
            f"task.regression_head_bias=train_mean needs a regression task; task={cfg.task.name} is a classification",
        )
