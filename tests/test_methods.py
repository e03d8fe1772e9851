"""The method registry owns every method; the library stands alone; a new method is one module + one YAML file."""

from __future__ import annotations

import dataclasses
import importlib
import subprocess
import sys
import textwrap

import pytest
import torch

from pst_bench.adapter import SparseConfig
from pst_bench.methods import (
    MethodSettings,
    get_method,
    method_names,
    registered_methods,
    sparse_method_names,
    unregister_method,
)
from pst_bench.methods.pst import SCORE_TERMS, PstParams

# A toy method, written the way the docs ("Add a method") say: one module that registers it ...
TOY_MODULE = '''
"""Random pruning: S is a fixed random score per weight (drawn from `seed`), W trains densely."""

from dataclasses import dataclass

import torch

from pst_bench.methods import Method, register_method
from pst_bench.sparsity.layers import SparseLinear


@dataclass
class RandomParams:
    seed: int = 0


class RandomSparseLinear(SparseLinear):
    method = "toy_random"

    def __init__(self, base_layer, seed=0):
        super().__init__(base_layer)
        self.seed = seed
        generator = torch.Generator().manual_seed(seed)
        self.register_buffer("random_scores", torch.rand(base_layer.weight.shape, generator=generator))

    def importance_scores(self):
        return self.random_scores

    def score_inputs(self):
        return [self.random_scores]

    def masked_weight(self, mask):
        return self.base_layer.weight * mask


register_method(Method(name="toy_random", label="Random", layer=RandomSparseLinear, params=RandomParams))
'''

# ... and one YAML file in the method group.
TOY_YAML = """\
defaults:
  - base_toy_random_method   # the schema of the method's own keys, generated from RandomParams
  - _self_
name: toy_random
kind: toy_random
sparsity: 0.5
initial_sparsity: 0.0
warmup_frac: 0.0
cooldown_frac: 0.0
train_bias_and_norm: true
paper_label: Random
seed: 3
lr:
  cpu: 1.0e-4
"""


@pytest.fixture
def toy_method(tmp_path, monkeypatch):
    """The toy module importable from tmp_path and its YAML under tmp_path/conf/method; registered, then
    removed again."""
    (tmp_path / "toy_random_method.py").write_text(TOY_MODULE)
    (tmp_path / "conf" / "method").mkdir(parents=True)
    (tmp_path / "conf" / "method" / "toy_random.yaml").write_text(TOY_YAML)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("toy_random_method")
    yield tmp_path / "conf"
    unregister_method("toy_random")
    sys.modules.pop(module.__name__, None)


def test_the_registry_owns_the_four_methods_of_the_paper_and_the_baselines_beyond_it():
    assert method_names() == ("finetune", "map", "mvp", "pst", "soft_mvp", "sparsegpt", "wanda")
    assert sparse_method_names() == ("map", "mvp", "pst", "soft_mvp", "sparsegpt", "wanda")
    assert {name: m.label for name, m in registered_methods().items()} == {
        "finetune": "Fine-tune",
        "map": "MaP",
        "mvp": "MvP",
        "pst": "PST",
        "soft_mvp": "Soft MvP",
        "sparsegpt": "SparseGPT",
        "wanda": "Wanda",
    }
    assert get_method("pst").trains == "added" and get_method("mvp").trains == "all"
    assert get_method("pst").param_names == ("r1", "r2", "alpha1", "alpha2", "beta", "score_terms")
    assert get_method("sparsegpt").is_one_shot({}) and not get_method("map").is_one_shot({})
    assert get_method("wanda").is_one_shot({"schedule": "oneshot"}) and not get_method("wanda").is_one_shot({})
    assert get_method("soft_mvp").sparsity_control == "penalty" and get_method("mvp").sparsity_control == "schedule"
    with pytest.raises(Exception, match="method.kind='lora' is unknown; choose one of finetune, map, mvp, pst, soft"):
        get_method("lora")


def test_the_runners_method_schema_is_generated_from_the_library_dataclasses():
    """One typed copy: MethodConfig = name, kind + MethodSettings + the runner's keys; PST adds PstParams."""
    from pst_bench.schema.structured import MethodConfig, PstMethodConfig

    runner_only = {"name", "kind", "score_lr", "paper_label", "lr"}
    shared = [f.name for f in dataclasses.fields(MethodSettings)]
    schema = [f.name for f in dataclasses.fields(MethodConfig)]
    assert [key for key in schema if key not in runner_only] == shared
    pst = [f.name for f in dataclasses.fields(PstMethodConfig)]
    assert pst == schema + [f.name for f in dataclasses.fields(PstParams)]
    library = {f.name for f in dataclasses.fields(SparseConfig)}
    assert set(pst) - runner_only <= library
    types = {f.name: f.type for f in dataclasses.fields(PstMethodConfig)}
    for f in dataclasses.fields(SparseConfig):
        if f.name in types:
            assert types[f.name] == f.type, f.name


def test_the_score_terms_have_one_owner():
    from pst_bench.record import run_record
    from pst_bench.sparsity import diagnostics, layers

    assert run_record.SCORE_TERMS is SCORE_TERMS and diagnostics.TERMS is SCORE_TERMS
    assert layers.PSTSparseLinear(torch.nn.Linear(4, 4)).score_terms == SCORE_TERMS


def test_export_compressed_dtypes_named_by_the_schema_are_the_exporters():
    from pst_bench.schema.structured import EXPORT_VALUE_DTYPES

    try:
        compressed = importlib.import_module("pst_bench.export.compressed")
    except ImportError:  # before the export package
        compressed = importlib.import_module("pst_bench.run.compressed")
    assert tuple(compressed.VALUE_DTYPES) == EXPORT_VALUE_DTYPES


def test_the_library_imports_no_runner_module(tmp_path):
    """`import pst_bench.adapter` and a SparseConfig load torch and transformers, nothing of the runner."""
    code = textwrap.dedent(
        """
        import sys
        import pst_bench.adapter
        from pst_bench.adapter import SparseConfig
        SparseConfig(method="map", sparsity=0.5, pattern="2:4")
        SparseConfig()
        runner = ("hydra", "omegaconf", "pst_bench.run", "pst_bench.tasks", "pst_bench.record",
                  "pst_bench.report", "pst_bench.schema", "pst_bench.export")
        loaded = sorted(m for m in sys.modules if m.startswith(runner) and (m in runner or m.startswith(
            tuple(r + "." for r in runner))))
        print(loaded)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_toy_method_in_one_module_trains_through_the_library(toy_method):
    from transformers import BertConfig, BertForSequenceClassification

    from pst_bench.adapter import get_sparse_model

    assert "toy_random" in sparse_method_names()
    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    options = {"seed": 1}
    sparse = get_sparse_model(
        BertForSequenceClassification(config), SparseConfig(method="toy_random", sparsity=0.5, method_options=options)
    )
    layers = sparse.sparse_layers
    assert len(layers) == 6 and all(layer.method == "toy_random" and layer.seed == 1 for layer in layers.values())
    assert SparseConfig(method="toy_random").method_view()["seed"] == 0  # the params' default
    with pytest.raises(Exception, match=r"method_options \['sed'\] are not keys of method=toy_random"):
        SparseConfig(method="toy_random", method_options={"sed": 1})
    schedule = sparse.schedule(1)
    sparse.set_sparsity(schedule(1))  # the final sparsity: one step is the whole run
    optimizer = torch.optim.SGD([p for p in sparse.parameters() if p.requires_grad], lr=0.1)
    ids = torch.randint(0, 50, (2, 5), generator=torch.Generator().manual_seed(0))
    loss = sparse(input_ids=ids, labels=torch.tensor([0, 1])).loss
    loss.backward()
    optimizer.step()
    assert sparse.achieved_sparsity() == pytest.approx(0.5, abs=1e-3)
    with pytest.raises(Exception, match="method.sparsity=1.5 must be in"):
        SparseConfig(method="toy_random", sparsity=1.5)


def test_a_toy_method_in_one_module_and_one_yaml_file_trains_through_the_runner(toy_method, tmp_path, synthetic_data):
    """The runner composes the toy's YAML (a config dir on Hydra's search path), checks it, trains one step,
    and the report names it by its registered label."""
    from omegaconf import OmegaConf

    from helpers import compose_cfg, tiny_run_overrides
    from pst_bench.record import as_record
    from pst_bench.report.labels import label_of, method_of_label
    from pst_bench.run.experiment import run_experiment

    overrides = tiny_run_overrides(synthetic_data, "toy_random", "train.max_steps=1", "train.epochs=1")
    cfg = compose_cfg([*overrides, f"hydra.searchpath=[file://{toy_method}]"], tmp_path / "out")
    assert cfg.method.kind == "toy_random" and cfg.method.sparsity == 0.5 and cfg.method.seed == 3
    assert OmegaConf.get_type(cfg.method).__name__ == "ToyRandomMethodConfig"  # generated from RandomParams
    with pytest.raises(Exception, match="Error merging override method.seed=abc"):
        compose_cfg([*overrides, f"hydra.searchpath=[file://{toy_method}]", "method.seed=abc"])
    record = run_experiment(cfg)
    assert record["status"] == "finished" and record["steps"]["total"] == 1
    assert record["config"]["method"]["seed"] == 3
    assert all(abs(s - 0.5) < 1e-3 for s in record["sparsity_achieved"]["per_matrix"].values())
    assert label_of(as_record(record)) == "Random" and method_of_label("Random") == "toy_random"
