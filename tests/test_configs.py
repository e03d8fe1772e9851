"""Hydra configs: every model × task × method composes and passes validation; param counts."""

import itertools
from pathlib import Path

import pytest

from helpers import ROOT, compose_cfg, expand_sweep

CONF = Path(__file__).resolve().parents[1] / "conf"
MODELS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))
TASKS = sorted(p.stem for p in (CONF / "task").glob("*.yaml"))
METHODS = sorted(p.stem for p in (CONF / "method").glob("*.yaml"))
NLG_TASKS = ("e2e", "webnlg", "dart")


def test_the_config_groups_hold_what_the_paper_needs():
    assert {"bert-base", "roberta-base", "roberta-large", "minilm-l6", "tiny-bert"} <= set(MODELS)
    assert set(TASKS) == {"mnli", "qqp", "qnli", "sst2", "cola", "stsb", "mrpc", "rte", "e2e", "webnlg", "dart"}
    assert {"gpt2", "gpt2-medium", "tiny-gpt2"} <= set(MODELS)
    variants = {f"pst_{v}" for v in ("mag", "ab", "rc", "mag_ab", "mag_rc", "ab_rc", "mag_ab_rc")}
    assert {"finetune", "map", "mvp", "pst"} | variants <= set(METHODS)


def _pairs_taking_turns() -> list[tuple[str, str]]:
    """Each model with one GLUE and one NLG task, the tasks taking turns over the models (each task meets
    at least one model): both the valid and the mismatched pairing of every model."""
    glue = [t for t in TASKS if t not in NLG_TASKS]
    nlg = [t for t in TASKS if t in NLG_TASKS]
    pairs = [(model, group[index % len(group)]) for index, model in enumerate(MODELS) for group in (glue, nlg)]
    assert {task for _, task in pairs} == set(TASKS)
    return pairs


@pytest.mark.parametrize("every_pair", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["turns", "every-pair"])
def test_every_model_task_pair_composes_and_validates_with_every_method_in_turn(every_pair):
    """Encoders pair with GLUE, GPT-2 with the NLG tasks; a mismatched pair fails validation. The decoders
    (Llama, Qwen2, GPT-2) take the head each task needs. Methods take turns over the pairs, so each one
    meets many pairs without composing the whole product with every method (which cost minutes). The quick
    run composes each model with a GLUE and an NLG task; every model × task pair runs under the slow mark."""
    from hydra import compose, initialize_config_module

    from pst_bench.errors import ConfigError
    from pst_bench.schema.validate import validate_config

    pairs = list(itertools.product(MODELS, TASKS)) if every_pair else _pairs_taking_turns()
    with initialize_config_module(config_module="pst_bench.conf", version_base="1.3"):
        for index, (model, task) in enumerate(pairs):
            method = METHODS[index % len(METHODS)]
            cfg = compose(config_name="config", overrides=[f"model={model}", f"task={task}", f"method={method}"])
            assert (cfg.model.name, cfg.task.name, cfg.method.name) == (model, task, method)
            generative = cfg.task.get("kind", "glue") == "nlg"
            if generative == (cfg.model.architecture == "causal_lm"):
                validate_config(cfg)
            else:
                with pytest.raises(ConfigError, match="needs a"):
                    validate_config(cfg)


def test_defaults_follow_the_paper():
    cfg = compose_cfg()
    assert (cfg.model.name, cfg.method.name) == ("bert-base", "pst")
    m = cfg.method
    assert (m.beta, m.alpha1, m.alpha2, m.r1, m.r2) == (1.0, 1.0, 1.0, 8, 8)
    assert (m.warmup_frac, m.cooldown_frac, m.initial_sparsity) == (0.1, 0.3, 0.0)
    assert list(m.score_terms) == ["mag", "ab", "rc"]
    assert list(compose_cfg(["method=pst_ab_rc"]).method.score_terms) == ["ab", "rc"]
    metrics = {t: compose_cfg([f"task={t}"]).task.metric for t in TASKS}
    assert metrics == {
        "cola": "matthews",
        "stsb": "pearson",
        "mrpc": "f1",
        "qqp": "f1",
        "mnli": "accuracy",
        "qnli": "accuracy",
        "sst2": "accuracy",
        "rte": "accuracy",
        "e2e": "bleu",
        "webnlg": "bleu",
        "dart": "bleu",
    }
    e2e = compose_cfg(["task=e2e", "model=gpt2-medium"])
    assert (e2e.train.lr, e2e.train.batch_size, e2e.train.epochs) == (1e-4, 8, 5)  # section 4.1
    assert (e2e.nlg.num_beams, e2e.nlg.length_penalty, e2e.nlg.no_repeat_ngram_size) == (10, 0.8, 4)
    assert e2e.nlg.label_smoothing == 0.1 and e2e.nlg.max_new_tokens == 64
    assert compose_cfg(["task=e2e", "model=gpt2-medium", "train.lr=3e-4"]).train.lr == 3e-4
    assert list(compose_cfg(["task=mnli"]).task.eval_splits) == ["validation_matched", "validation_mismatched"]
    assert compose_cfg(["task=stsb"]).task.is_regression


def _counts(*overrides):
    from pst_bench.models.params import parameter_report_for_config

    return parameter_report_for_config(compose_cfg(list(overrides)))


def test_pst_small_matrices_of_bert_base():
    report = _counts("model=bert-base", "method=pst")
    assert report["sparsified_matrices"] == 72
    assert report["trainable_sparse_added"] == 2_820_096
    assert report["paper_rule_m"] == pytest.approx(2.82)
    # PST also trains the task head (768·2 + 2), nothing else
    assert report["trainable_total"] == 2_820_096 + 768 * 2 + 2


def test_mvp_scores_and_the_papers_rule():
    bert = _counts("model=bert-base", "method=mvp")
    assert bert["trainable_sparse_added"] == 84_934_656
    assert bert["paper_rule_m"] == pytest.approx(194.93)
    large = _counts("model=roberta-large", "method=mvp")
    assert large["trainable_sparse_added"] == 301_989_888
    assert large["paper_rule_m"] == pytest.approx(656.99)  # the paper prints 682.36: no known rule
    assert _counts("model=roberta-large", "method=pst")["trainable_sparse_added"] == 7_520_256


def test_dense_methods_train_the_whole_model():
    report = _counts("model=bert-base", "method=map")
    assert report["trainable_total"] == report["model_params"] == 109_483_778
    assert report["paper_rule_m"] == pytest.approx(110.0)


# --------------------------------------------------------------------------- the schema


def test_each_group_is_typed_by_its_schema():
    from omegaconf import OmegaConf

    from pst_bench.schema import structured as schema

    types = {
        "": schema.Config,
        "method": schema.PstMethodConfig,
        "task": schema.GlueTaskConfig,
        "model": schema.ModelConfig,
        "train": schema.TrainConfig,
        "nlg": schema.NlgConfig,
    }
    cfg = compose_cfg()
    assert {key: OmegaConf.get_type(OmegaConf.select(cfg, key) if key else cfg) for key in types} == types
    assert OmegaConf.get_type(compose_cfg(["method=map"]).method) is schema.MethodConfig
    assert OmegaConf.get_type(compose_cfg(["method=pst_ab"]).method) is schema.PstMethodConfig
    nlg = {
        task: OmegaConf.get_type(compose_cfg([f"task={task}", "model=gpt2"]).task) for task in ("e2e", "webnlg", "dart")
    }
    assert nlg == {"e2e": schema.E2eTaskConfig, "webnlg": schema.WebnlgTaskConfig, "dart": schema.DartTaskConfig}
    gpt2, bert = compose_cfg(["model=gpt2", "task=e2e"]).model, compose_cfg().model
    assert gpt2.split_qkv and gpt2.conv1d_modules and not bert.split_qkv and list(bert.conv1d_modules) == []


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["method.sparsity=abc"], "Value 'abc' of type 'str' could not be converted to Float"),
        (["train.batch_size=1.5"], "could not be converted to Integer"),
        (["method.lr.cpu=fast"], "could not be converted to Float"),
        (["method.sparsityy=0.5"], "Key 'sparsityy' not in 'PstMethodConfig'"),
        (["method=map", "method.r1=4"], "Key 'r1' not in 'MethodConfig'"),  # PST's keys are PST's
        (["task=webnlg", "model=gpt2", "task.e2e_format=lora"], "Key 'e2e_format' not in"),  # E2E's are E2E's
    ],
)
def test_a_wrong_type_or_an_unknown_key_is_refused_while_composing(overrides, message):
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException) as caught:
        compose_cfg(overrides)
    assert message in str(caught.value.__cause__)


def test_every_way_of_composing_finds_the_schema_without_registering_it(tmp_path):
    """Hydra reads the configs through the package pst_bench.conf, which registers the schema: a fresh
    process that only composes (as tests/helpers.py and pst_bench.perf.bench do) gets typed configs."""
    import subprocess
    import sys

    code = (
        "import sys\nfrom hydra import compose, initialize_config_module\n"
        "from omegaconf import OmegaConf\n"
        "assert 'pst_bench.schema' not in sys.modules\n"
        "with initialize_config_module(config_module='pst_bench.conf', version_base='1.3'):\n"
        "    cfg = compose(config_name='config', overrides=['method=mvp'])\n"
        "print(OmegaConf.get_type(cfg).__name__, OmegaConf.get_type(cfg.method).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["Config", "MethodConfig"]


# --------------------------------------------------------------------------- learning rate per scale


def test_each_method_names_its_learning_rate_per_scale():
    """Paper scale: the method's method.lr.paper (3e-5, the authors' GLUE recipe; the NLG tasks' 1e-4).
    CPU scale: the method's method.lr.cpu."""
    from omegaconf import OmegaConf

    for method in METHODS:
        paper, cpu = compose_cfg([f"method={method}"]), compose_cfg([f"method={method}", "scale=cpu"])
        assert paper.train.lr == paper.method.lr.paper == 3e-5, method
        assert compose_cfg([f"method={method}", "scale=paper"]).train.lr == 3e-5
        assert cpu.train.lr == cpu.method.lr.cpu == (3e-4 if cpu.method.kind == "pst" else 1e-4), method
        assert (cpu.train.epochs, cpu.train.max_train_examples, cpu.export) == (3, 1000, False)
    assert compose_cfg(["task=e2e", "model=gpt2", "method=map"]).train.lr == 1e-4
    assert compose_cfg(["scale=cpu", "train.lr=2e-4"]).train.lr == 2e-4  # the command line wins
    assert compose_cfg(["experiment=demo"]).train.lr == 3e-4  # as the demo's file says
    # what a record stores (the resolved config) holds the effective learning rate
    resolved = OmegaConf.to_container(compose_cfg(["scale=cpu", "method=mvp"]), resolve=True)
    assert resolved["train"]["lr"] == 1e-4


def test_a_method_file_without_a_paper_learning_rate_trains_at_the_old_default():
    from omegaconf import open_dict

    cfg = compose_cfg([])
    with open_dict(cfg):  # e.g. a method added before method.lr.paper existed
        del cfg.method.lr["paper"]
    assert cfg.train.lr == 5e-5


def test_paper_learning_rates_keep_the_run_ids_of_committed_records():
    """method.lr.paper only feeds train.lr: it is not part of a run's identity, so the committed CPU-scale
    records of a sweep recomposed today keep their ids (and the sweep skips them)."""
    from pst_bench.record import identity_config, run_id

    committed = {p.stem for p in (ROOT / "results").rglob("*.json")}
    ids = [run_id(compose_cfg(["sweep=evidence_sst2", *job])) for job in expand_sweep("evidence_sst2")]
    assert ids and set(ids) <= committed
    assert "paper" not in identity_config(compose_cfg(["scale=cpu"]))["method"]["lr"]


def test_a_method_without_a_learning_rate_for_the_scale_is_one_config_error():
    from omegaconf import open_dict

    from pst_bench.errors import ConfigError
    from pst_bench.schema.validate import validate_config

    cfg = compose_cfg(["scale=cpu"])
    with open_dict(cfg):  # a method file that names no CPU-scale learning rate
        del cfg.method.lr["cpu"]
    with pytest.raises(ConfigError, match=r"train.lr=\$\{method.lr.cpu\} cannot be .*method.lr.<scale>"):
        validate_config(cfg)


def test_several_trackers_are_one_quoted_value_on_the_command_line():
    """README's `'train.log_with="wandb,mlflow"'`: quoted, one string the run splits; unquoted, Hydra reads
    a comma list as a sweep and refuses it outside --multirun."""
    from hydra.errors import ConfigCompositionException

    from pst_bench.run.tracking import tracker_names

    cfg = compose_cfg(['train.log_with="wandb,mlflow"'])
    assert cfg.train.log_with == "wandb,mlflow"
    assert tracker_names(cfg.train.log_with) == ["wandb", "mlflow"]
    with pytest.raises(ConfigCompositionException, match="Ambiguous value"):
        compose_cfg(["train.log_with=wandb,mlflow"])
