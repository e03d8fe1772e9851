"""Value checks of a composed config: ranges, choices and combinations, each a one-line ConfigError.

Types are not checked here: the structured configs (``pst_bench.schema.structured``) refuse a value
of the wrong type, or an unknown key, while Hydra composes. The method's keys are checked by
``pst_bench.methods.checks`` (shared with the library's ``SparseConfig``).
"""

from __future__ import annotations

from omegaconf import DictConfig
from omegaconf.errors import InterpolationResolutionError

from ..errors import ConfigError
from ..methods import structure_of
from ..methods.checks import check_method
from ..tasks import runner_class, task_kind
from .structured import EXPORT_VALUE_DTYPES


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def validate_config(cfg: DictConfig) -> None:
    """Reject impossible settings with one line that says which key and why."""
    check_method(cfg.method)
    _check_train(cfg.train)
    compressed = cfg.export_compressed
    _check(
        compressed in (None, False, *EXPORT_VALUE_DTYPES),
        f"export_compressed={compressed!r}: choose {', '.join(EXPORT_VALUE_DTYPES)} or null (off)",
    )
    _check(
        not cfg.get("export_slim") or (cfg.export and structure_of(cfg.method)["pattern"] == "units"),
        "export_slim=true needs export=true and method.pattern=units: other masks remove no whole FFN neuron or head",
    )
    _check_model_fits_task(cfg)


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
