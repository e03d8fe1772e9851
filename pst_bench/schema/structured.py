"""The types of every config key: Hydra structured configs that the YAML files in pst_bench/conf extend.

The YAML files own the values (and say what each one means); these dataclasses own the types. Hydra
merges every YAML file into its schema, so `method.sparsity=abc` is refused while the config is
composed (not as a TypeError deep inside a run) and a misspelt key is refused as an unknown field.
Value ranges are checked by ``pst_bench.schema.validate``.

Fields that every file of a group sets are ``MISSING`` here; fields that only some files set (GPT-2's
Conv1D layout, an NLG reader option) have their default here. Families with keys of their own are
subclasses: the top-level ``Config`` types ``method`` as ``MethodConfig`` and a PST file
(``defaults: [base_pst_method, _self_]``) narrows it to ``PstMethodConfig``; tasks likewise.

``register()`` stores the schemas in Hydra's ConfigStore. It runs when ``pst_bench.conf`` is
imported, which every composition does first (the CLI's ``pkg://pst_bench.conf``,
``initialize_config_module("pst_bench.conf")``), so no caller has to remember it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Union

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

#: A method's mask-structure keys and their defaults (the paper's setting: one unstructured top-v per
#: matrix). Records written before these keys existed have none of them: readers fill the defaults in
#: (``structure_of``), and a run's identity leaves out a key that holds its default, so those runs keep
#: their ids and sweeps still resume them (``pst_bench.record.identity_config``).
STRUCTURE_DEFAULTS: Dict[str, Any] = {
    "pattern": "unstructured",
    "block_shape": [4, 4],
    "units": ["ffn", "head"],
    "scope": "layer",
    "matrix_sparsity_min": None,
    "matrix_sparsity_max": None,
}


def structure_of(method_cfg) -> Dict[str, Any]:
    """The structure keys of a method config (a DictConfig or a record's dict), defaults filled in."""
    values = {}
    for key, default in STRUCTURE_DEFAULTS.items():
        value = method_cfg.get(key, default)
        values[key] = list(value) if isinstance(default, list) and value is not None else value
    return values


# --------------------------------------------------------------------------- model/


@dataclass
class UnitsConfig:
    """One regular expression per role over sparse layer names; group 1 is the transformer layer index."""

    ffn_in: str = MISSING
    ffn_out: str = MISSING
    attn_in: str = MISSING  # q, k, v (split) or a fused q/k/v projection
    attn_out: str = MISSING


@dataclass
class ModelConfig:
    name: str = MISSING
    pretrained: Optional[str] = None  # hub id
    local_dir: Optional[str] = None
    package: Optional[str] = None
    tokenizer: Optional[str] = None
    random_init: bool = False
    architecture: str = MISSING  # sequence_classification | causal_lm | ${architecture_of:${task.kind}}
    nominal_params_m: Optional[float] = None
    # regexes over module names; null: the preset of the model's config.model_type (pst_bench.adapter.presets)
    sparse_targets: Optional[List[str]] = None
    head_modules: Optional[List[str]] = None
    # GPT-2 only: transformers' Conv1D projections, turned into nn.Linear before sparsification.
    conv1d_modules: List[str] = field(default_factory=list)
    qkv_modules: List[str] = field(default_factory=list)
    split_qkv: bool = False
    # transformers config kwargs (model_type, sizes, ...): free-form by nature.
    arch: Dict[str, Any] = field(default_factory=dict)
    # Where FFN neurons and attention heads live (method.pattern=units); null: the model has none.
    units: Optional[UnitsConfig] = None


# --------------------------------------------------------------------------- method/


@dataclass
class MethodConfig:
    name: str = MISSING
    kind: str = MISSING  # finetune | map | mvp | pst
    sparsity: float = MISSING
    initial_sparsity: float = 0.0
    warmup_frac: float = MISSING
    cooldown_frac: float = MISSING
    train_bias_and_norm: bool = MISSING
    score_lr: Optional[float] = None
    paper_label: Optional[str] = None
    # The learning rate the method wants at a scale (conf/scale/) where it differs from train.lr.
    lr: Dict[str, float] = field(default_factory=dict)
    # Mask structure (pst_bench.sparsity.structure); the defaults are the paper's setting.
    pattern: str = STRUCTURE_DEFAULTS["pattern"]  # unstructured | N:M (e.g. 2:4) | block | row | column | units
    block_shape: List[int] = field(default_factory=lambda: list(STRUCTURE_DEFAULTS["block_shape"]))  # [b_out, b_in]
    units: List[str] = field(default_factory=lambda: list(STRUCTURE_DEFAULTS["units"]))  # for pattern=units
    scope: str = STRUCTURE_DEFAULTS["scope"]  # layer | global
    matrix_sparsity_min: Optional[float] = None  # per-matrix (per unit set) bounds at the final sparsity
    matrix_sparsity_max: Optional[float] = None


@dataclass
class PstMethodConfig(MethodConfig):
    r1: int = MISSING
    r2: int = MISSING
    alpha1: float = MISSING
    alpha2: float = MISSING
    beta: float = MISSING
    score_terms: List[str] = MISSING


# --------------------------------------------------------------------------- task/


@dataclass
class TaskConfig:
    name: str = MISSING
    kind: str = MISSING  # glue | nlg: the task runner (pst_bench.tasks)
    local_dir: str = MISSING
    metric: str = MISSING
    eval_splits: List[str] = MISSING
    main_split: str = MISSING


@dataclass
class GlueTaskConfig(TaskConfig):
    kind: str = "glue"
    glue_config: str = MISSING
    text_fields: List[str] = MISSING
    num_labels: int = MISSING
    is_regression: bool = False
    max_length: int = MISSING
    regression_head_bias: str = "zero"  # zero | train_mean (regression: start the output at the labels' mean)


@dataclass
class NlgTaskConfig(TaskConfig):
    kind: str = "nlg"
    default_model: Optional[str] = None  # read by the CLI from the task file (pst_bench.cli)
    hub_dataset: Optional[str] = None
    hub_config: Optional[str] = None
    hub_revision: Optional[str] = None
    max_source_length: int = MISSING
    max_target_length: int = MISSING


@dataclass
class E2eTaskConfig(NlgTaskConfig):
    e2e_format: str = "official"


@dataclass
class WebnlgTaskConfig(NlgTaskConfig):
    test_references: str = MISSING
    only_good_lex: bool = False


@dataclass
class DartTaskConfig(NlgTaskConfig):
    test_references: str = MISSING


# --------------------------------------------------------------------------- train/, data/, paths/, nlg/


@dataclass
class TrainConfig:
    lr: float = MISSING
    weight_decay: float = MISSING
    adam_epsilon: float = MISSING
    max_grad_norm: Optional[float] = MISSING
    lr_schedule: str = MISSING
    lr_warmup_frac: float = MISSING
    batch_size: int = MISSING
    eval_batch_size: int = MISSING
    grad_accum_steps: int = MISSING
    epochs: int = MISSING
    max_steps: Optional[int] = None
    max_train_examples: Optional[int] = None
    max_eval_examples: Optional[int] = None
    # batches of similar length (pst_bench.data.sampling): the same examples per epoch, far less padding
    group_by_length: bool = False
    seed: int = MISSING
    device: str = MISSING  # auto | cpu | cuda
    mixed_precision: str = MISSING  # no | fp16 | bf16
    checkpoint_every_steps: Optional[int] = None
    resume: bool = MISSING
    num_workers: int = MISSING
    progress_bar: bool = MISSING
    # tracking (pst_bench.run.tracking): accelerate tracker name(s), or none; diagnostics every N steps (0 = off)
    log_with: Optional[str] = "tensorboard"
    diagnostics_every_steps: int = 50


@dataclass
class DataConfig:
    dir: Optional[str] = None
    hub_dataset: str = MISSING


@dataclass
class PathsConfig:
    results_dir: str = MISSING
    checkpoint_dir: str = MISSING
    export_dir: str = MISSING
    log_dir: str = "logs"  # tracker output, <log_dir>/<run id>/


@dataclass
class NlgConfig:
    prompt_separator: str = MISSING
    label_smoothing: float = MISSING
    num_beams: int = MISSING
    length_penalty: float = MISSING
    no_repeat_ngram_size: int = MISSING
    max_new_tokens: int = MISSING
    decode_batch_size: int = MISSING
    decode_splits: List[str] = MISSING
    max_decode_examples: Optional[int] = None
    metrics: List[str] = MISSING
    lowercase: bool = MISSING


@dataclass
class ArtifactsConfig:
    save_masks: bool = MISSING
    score_sample: int = MISSING
    score_sample_layers: int = MISSING


# --------------------------------------------------------------------------- config.yaml


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    nlg: NlgConfig = field(default_factory=NlgConfig)
    artifacts: ArtifactsConfig = field(default_factory=ArtifactsConfig)
    info: Optional[str] = None
    export: bool = MISSING
    # float16 | bfloat16 | float32, or null / false (off): the names are checked by validate_config.
    export_compressed: Optional[Union[bool, str]] = MISSING
    export_slim: bool = False
    run_name: Optional[str] = None


#: (group, name, schema, package): what register() stores. A package is given where a `_global_`
#: task file names its schema, so that the schema still lands under `task`.
SCHEMAS = (
    (None, "base_config", Config, None),
    ("method", "base_pst_method", PstMethodConfig, None),
    ("task", "base_glue_task", GlueTaskConfig, None),
    ("task", "base_e2e_task", E2eTaskConfig, "task"),
    ("task", "base_webnlg_task", WebnlgTaskConfig, "task"),
    ("task", "base_dart_task", DartTaskConfig, "task"),
)


def task_architecture(kind: str) -> str:
    """The model head a task family needs (``TaskRunner.architecture``): what ``${architecture_of:${task.kind}}``
    resolves to in the configs of models that have both heads (the decoders: GLUE or NLG)."""
    from ..tasks import runner_class  # on first resolution only: the runners pull in data and metrics

    return runner_class(kind).architecture


def register() -> None:
    """Store the schemas in Hydra's ConfigStore and the configs' resolver (idempotent)."""
    OmegaConf.register_new_resolver("architecture_of", task_architecture, replace=True)
    store = ConfigStore.instance()
    for group, name, node, package in SCHEMAS:
        store.store(group=group, name=name, node=node, package=package)
