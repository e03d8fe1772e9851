"""Config checks and turning a loaded model into the method's trainable model."""

from __future__ import annotations

from omegaconf import DictConfig

from ..run.compressed import VALUE_DTYPES
from ..errors import ConfigError
from ..sparsity.conv1d import linearize_conv1d
from ..sparsity.inject import METHOD_KINDS, SPARSE_KINDS, configure_trainable, sparsify
from ..sparsity.layers import SparseLinear
from ..tasks import runner_class, task_kind


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def validate_config(cfg: DictConfig) -> None:
    """Reject impossible settings with one line that says which key and why."""
    method, train = cfg.method, cfg.train
    _check(method.kind in METHOD_KINDS,
           f"method.kind={method.kind!r} is unknown; choose one of {', '.join(METHOD_KINDS)}")
    _check(0.0 <= method.sparsity < 1.0, f"method.sparsity={method.sparsity} must be in [0, 1)")
    _check(0.0 <= method.initial_sparsity < 1.0,
           f"method.initial_sparsity={method.initial_sparsity} must be in [0, 1)")
    _check(method.initial_sparsity <= method.sparsity or method.kind == "finetune",
           f"method.initial_sparsity={method.initial_sparsity} exceeds method.sparsity={method.sparsity}")
    _check(method.kind != "finetune" or method.sparsity == 0.0,
           "method=finetune is dense: use method=map, mvp or pst for a sparsity above 0")
    fractions = (method.warmup_frac, method.cooldown_frac)
    _check(all(0.0 <= f <= 1.0 for f in fractions) and sum(fractions) <= 1.0,
           f"method.warmup_frac + method.cooldown_frac = {sum(fractions)} must be within [0, 1]")
    if method.kind == "pst":
        for key in ("r1", "r2"):
            _check(int(method[key]) >= 1, f"method.{key}={method[key]} must be an integer >= 1")
        terms = list(method.score_terms)
        _check(bool(terms) and set(terms) <= {"mag", "ab", "rc"} and len(set(terms)) == len(terms),
               f"method.score_terms={terms} must be a non-empty subset of [mag, ab, rc]")
    for key in ("batch_size", "eval_batch_size", "grad_accum_steps", "epochs"):
        _check(int(train[key]) >= 1, f"train.{key}={train[key]} must be >= 1")
    _check(train.lr > 0, f"train.lr={train.lr} must be > 0")
    _check(train.max_steps is None or int(train.max_steps) >= 1,
           f"train.max_steps={train.max_steps} must be >= 1 or null")
    for key in ("max_train_examples", "max_eval_examples"):
        _check(train[key] is None or int(train[key]) >= 1, f"train.{key}={train[key]} must be >= 1 or null")
    compressed = cfg.get("export_compressed")
    _check(compressed in (None, False, *VALUE_DTYPES),
           f"export_compressed={compressed!r}: choose {', '.join(VALUE_DTYPES)} or null (off)")
    runner = runner_class(task_kind(cfg.task))
    _check(cfg.model.architecture == runner.architecture,
           f"model={cfg.model.name} is a {cfg.model.architecture} model but task={cfg.task.name} needs a "
           f"{runner.architecture} model ({runner.example_models})")
    if runner.architecture == "sequence_classification":
        _check(cfg.task.num_labels >= 1, f"task.num_labels={cfg.task.num_labels} must be >= 1")


def prepare_model(model, model_cfg, method_cfg) -> dict[str, SparseLinear]:
    """Insert the method's sparse layers and set what trains; returns the sparse layers by name.

    GPT-2's Conv1D projections first become nn.Linear (q, k, v split when ``split_qkv``).
    """
    if model_cfg.get("conv1d_modules"):
        qkv = model_cfg.qkv_modules if model_cfg.split_qkv else []
        linearize_conv1d(model, model_cfg.conv1d_modules, qkv)
    layers = {}
    if method_cfg.kind in SPARSE_KINDS:
        layers = sparsify(model, model_cfg.sparse_targets, method_cfg)
    configure_trainable(model, method_cfg, model_cfg.head_modules)
    return layers
