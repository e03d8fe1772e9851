"""The types of every config key: Hydra structured configs that the YAML files in conf/ extend.

The YAML files own the values (and say what each one means); these dataclasses own the types. Hydra
merges every YAML file into its schema, so `method.sparsity=abc` is refused while the config is
composed (not as a TypeError deep inside a run) and a misspelt key is refused as an unknown field.
Value ranges are checked by ``pst_bench.schema.validate``.

Fields that every file of a group sets are ``MISSING`` here; fields that only some files set (GPT-2's
Conv1D layout, an NLG reader option) have their default here. Families with keys of their own are
subclasses: the top-level ``Config`` types ``method`` as ``MethodConfig`` and a PST file
(``defaults: [base_pst_method, _self_]``) narrows it to ``PstMethodConfig``; tasks likewise. The method
schemas are generated from the library's dataclasses (``pst_bench.methods``: ``MethodSettings`` and
each registered method's ``params``), so the keys of a method are typed once.

``register()`` stores the schemas in Hydra's ConfigStore. It runs when ``pst_bench.conf`` is
imported, which every composition does first (the CLI's ``pkg://pst_bench.conf``,
``initialize_config_module("pst_bench.conf")``), so no caller has to remember it.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, List, Optional, Union

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from ..methods import Method, MethodSettings, get_method, on_register, registered_methods

#: ``export_compressed``'s value dtypes by name (``pst_bench.export`` maps them to torch dtypes; a test
#: holds the two lists together). The schema names them so that checking a config imports no exporter.
EXPORT_VALUE_DTYPES = ("float16", "bfloat16", "float32")


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

#: Keys every method file sets (MISSING in the schema); the other shared keys default to the library's.
_REQUIRED_METHOD_KEYS = ("sparsity", "warmup_frac", "cooldown_frac", "train_bias_and_norm")


def _field_spec(f, required: bool):
    if required:
        return (f.name, f.type, MISSING)
    if f.default_factory is not dataclasses.MISSING:
        return (f.name, f.type, field(default_factory=f.default_factory))
    return (f.name, f.type, f.default)


def _here(cls: type) -> type:
    cls.__module__ = __name__  # a generated class pickles (and prints) as this module's
    return cls


def _method_schema() -> type:
    """``MethodConfig``: name and kind, the shared keys of ``MethodSettings`` (the library's own
    dataclass), and the runner's keys (score_lr, paper_label, lr per scale)."""
    specs = [("name", str, MISSING), ("kind", str, MISSING)]  # kind: a registered method (pst_bench.methods)
    for f in dataclasses.fields(MethodSettings):
        specs.append(_field_spec(f, f.name in _REQUIRED_METHOD_KEYS))
        if f.name == "train_bias_and_norm":
            specs += [
                ("score_lr", Optional[float], None),
                ("paper_label", Optional[str], None),
                # The learning rate the method wants at a scale (conf/scale/) where it differs from train.lr.
                ("lr", Dict[str, float], field(default_factory=dict)),
            ]
    return _here(dataclasses.make_dataclass("MethodConfig", specs))


MethodConfig = _method_schema()


def method_schema(name: str) -> type:
    """The schema of a method with keys of its own (``Method.params``): ``MethodConfig`` plus those keys,
    each MISSING (its YAML file sets them). Stored as ``base_<name>_method``; PST's is ``PstMethodConfig``."""
    return _params_schema(name, get_method(name).params)


@functools.cache
def _params_schema(name: str, params: type) -> type:
    specs = [(f.name, f.type, MISSING) for f in dataclasses.fields(params)]
    camel = "".join(part.capitalize() for part in name.split("_"))  # pst -> PstMethodConfig
    return _here(dataclasses.make_dataclass(f"{camel}MethodConfig", specs, bases=(MethodConfig,)))


PstMethodConfig = method_schema("pst")


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
    glue_config: Optional[str] = None  # the nyu-mll/glue config name (null for a dataset of your own)
    text_fields: List[str] = MISSING
    num_labels: int = MISSING
    is_regression: bool = False
    max_length: int = MISSING
    regression_head_bias: str = "zero"  # zero | train_mean (regression: start the output at the labels' mean)
    # A dataset of your own (docs/data.md, "Your own dataset"); null: the classic glue_data layout of the
    # eight GLUE tasks. tsv | csv | jsonl (files under <data.dir>/<local_dir>) | hub (a hub dataset).
    data_format: Optional[str] = None
    data_files: Dict[str, str] = field(default_factory=dict)  # split -> file (tsv/csv/jsonl)
    label_column: str = "label"  # text_fields name the text columns
    label_values: Optional[List[str]] = None  # class i is the i-th value as written; null: 0..num_labels-1
    data_hub: Optional[str] = None  # data_format=hub: the dataset id
    data_hub_config: Optional[str] = None


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


class StrChoice(str, Enum):
    """A closed set of string values, typed as an Enum so that Hydra refuses any other value while
    composing. Each member's name is its value and a member is a ``str``: ``cfg.train.device == "cpu"``
    holds, ``str()`` and f-strings give the plain value, and ``OmegaConf.to_container(cfg,
    enum_to_str=True)`` (what records and run ids read, ``pst_bench.record``) gives the same string
    the untyped field held, so config hashes do not change."""

    def __str__(self) -> str:
        return str(self.value)


class Device(StrChoice):
    """``train.device``: auto (a GPU when one is visible, else the CPU), cpu or cuda."""

    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class MixedPrecision(StrChoice):
    """``train.mixed_precision``: accelerate's autocast setting (no = float32 throughout)."""

    no = "no"
    fp16 = "fp16"
    bf16 = "bf16"


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
    device: Device = MISSING  # auto | cpu | cuda
    mixed_precision: MixedPrecision = MISSING  # no | fp16 | bf16
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
    # a method with keys of its own gets base_<name>_method, also one registered later (a user's module)
    for method in registered_methods().values():
        _store_method_schema(method)
    on_register(_store_method_schema)


def _store_method_schema(method: Method) -> None:
    if method.params is not None:
        node = _params_schema(method.name, method.params)
        ConfigStore.instance().store(group="method", name=f"base_{method.name}_method", node=node)
