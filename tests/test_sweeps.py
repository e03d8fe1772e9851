"""Every sweep composes and expands to the paper's grid; every job of it validates."""

from pathlib import Path

import pytest

from helpers import expand_params, expand_sweep, taking_turns

CONF = Path(__file__).resolve().parents[1] / "conf"
SWEEPS = sorted(p.stem for p in (CONF / "sweep").glob("*.yaml"))

EXPECTED_JOBS = {
    "table2_bert": 8 * (1 + 3 * 2),  # the dense row and MaP, MvP, PST at 50% and 90% (conf/row/)
    "table2_bert_search": 6 * 7 * 4 * 2,  # 6 tasks x 7 rows x 4 learning rates x 2 epoch counts
    "table2_bert_search_mnli_qqp": 2 * 7 * 4 * 2,
    "table2_roberta": 2 * 8 * 3,
    "table2_finetune": 3 * 8,
    "table3": 3 * 3,
    "table3_finetune": 3,
    "table4": 2 * 3 * 3,
    "table5": 6 * 7,
    "figure3": 6 * 3 * 5,
    "table2_cpu": 5 * 3 * 2,
    "table2_cpu_finetune": 5,
    "table4_cpu": 2 * 3 * 3,
    "table5_cpu": 5 * 7,
    "figure3_cpu": 2 * 3 * 5,
    "evidence_sst2": 8,
    "evidence_stsb": 8,
    "evidence_mrpc": 8,
    "evidence_sst2_seeds": 3 * 2,
    "evidence_p50": 2 * 3,
    "evidence_sst2_table4": 3 * 3,
    "evidence_sst2_table5": 6,
    "budget_glue": 2,
    "evidence_stsb_seeds": 4 * 2,
    "evidence_mrpc_seeds": 4 * 2,
    "evidence_sst2_seeds_mvp": 2,
    "evidence_stsb_figure3": 3 * 3,
    "evidence_mrpc_figure3": 3 * 3,
    "evidence_stsb_p80_seeds": 3 * 2,
    "structured_cpu": 2 * 4 * 2,
}

# What each point of the evidence grid (conf/hparams/) must run: method, train.lr, method.score_lr.
EVIDENCE_POINTS = {
    "finetune": ("finetune", 1e-4, None),
    "map": ("map", 1e-4, None),
    "mvp_slr1e-3": ("mvp", 1e-4, 1e-3),
    "mvp_slr3e-3": ("mvp", 1e-4, 3e-3),
    "mvp_slr1e-2": ("mvp", 1e-4, 1e-2),
    "pst_lr1e-4": ("pst", 1e-4, None),
    "pst_lr3e-4": ("pst", 3e-4, None),
    "pst_lr1e-3": ("pst", 1e-3, None),
}
EVIDENCE_BUDGET = {"sst2": 2000, "stsb": 2000, "mrpc": None}  # train.max_train_examples; 3 epochs each

# The CPU sweeps as they were when each learning rate had its own file (table2_cpu + table2_cpu_pst,
# figure3_cpu + figure3_cpu_pst, ...): their grids and the train.lr each file set. The sweep that
# replaced them must run the same jobs with the same effective settings.
GLUE_HERE = "sst2,cola,stsb,mrpc,rte"
VARIANTS = "pst_mag,pst_ab,pst_rc,pst_mag_ab,pst_mag_rc,pst_ab_rc,pst_mag_ab_rc"
FIVE_SPARSITIES = "0.5,0.6,0.7,0.8,0.9"
OLD_CPU_SWEEPS = {
    "table2_cpu": [
        ({"task": GLUE_HERE, "method": "map,mvp", "method.sparsity": "0.5,0.9"}, 1e-4),
        ({"task": GLUE_HERE, "method": "pst", "method.sparsity": "0.5,0.9"}, 3e-4),
    ],
    "table2_cpu_finetune": [({"task": GLUE_HERE, "method": "finetune"}, 1e-4)],
    "figure3_cpu": [
        ({"task": "sst2,mrpc", "method": "map,mvp", "method.sparsity": FIVE_SPARSITIES}, 1e-4),
        ({"task": "sst2,mrpc", "method": "pst", "method.sparsity": FIVE_SPARSITIES}, 3e-4),
    ],
    "table4_cpu": [
        (
            {
                "task": "mrpc,sst2",
                "method": "pst",
                "method.sparsity": "0.9",
                "method.r1": "4,8,16",
                "method.r2": "4,8,16",
            },
            3e-4,
        )
    ],
    "table5_cpu": [({"task": GLUE_HERE, "method": VARIANTS, "method.sparsity": "0.9"}, 3e-4)],
}
#: What conf/cpu_scale.yaml set for every job of those files.
OLD_CPU_SCALE = {
    "model.name": "minilm-l6",
    "train.max_train_examples": 1000,
    "train.epochs": 3,
    "train.batch_size": 32,
    "export": False,
}


def test_every_sweep_has_an_expected_size():
    assert set(SWEEPS) == set(EXPECTED_JOBS)


_JOB_CONFIGS: dict[tuple[str, ...], object] = {}


def _job_config(sweep: str, job: list[str]):
    """The config of one job of a sweep, composed once per session (several tests compose the same jobs; no
    test changes a config). Call it inside ``initialize_config_module``."""
    from hydra import compose

    key = (sweep, *job)
    if key not in _JOB_CONFIGS:
        _JOB_CONFIGS[key] = compose(config_name="config", overrides=[f"sweep={sweep}", *job])
    return _JOB_CONFIGS[key]


#: The quick run composes each grid's jobs taking turns over its values (every value of every axis at least
#: once, helpers.taking_turns); the whole product (about a thousand jobs, minutes) runs under the slow mark.
EVERY_JOB = pytest.mark.parametrize(
    "every_job", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["turns", "every-job"]
)


@EVERY_JOB
@pytest.mark.parametrize("sweep", SWEEPS)
def test_sweep_expands_to_the_expected_jobs_and_each_validates(sweep, every_job):
    from hydra import initialize_config_module

    from pst_bench.record import run_id
    from pst_bench.schema.validate import validate_config

    grid = expand_sweep(sweep)
    assert len(grid) == EXPECTED_JOBS[sweep]
    jobs = grid if every_job else taking_turns(grid)
    ids = set()
    with initialize_config_module(config_module="pst_bench.conf", version_base="1.3"):
        for job in jobs:
            cfg = _job_config(sweep, job)
            validate_config(cfg)
            ids.add(run_id(cfg))
            if sweep.startswith("evidence_"):
                _check_evidence_job(sweep, job, cfg)
            elif sweep == "structured_cpu":
                hparams = dict(o.split("=", 1) for o in job)["hparams"]
                expected = {"map_units": ("map", 1e-4), "pst_units_lr1e-4": ("pst", 1e-4)}
                expected.update({"pst_units_lr3e-4": ("pst", 3e-4), "pst_lr1e-4": ("pst", 1e-4)})
                assert (cfg.method.kind, cfg.train.lr) == expected[hparams]
                assert cfg.method.pattern == ("units" if "units" in hparams else "unstructured")
                assert (cfg.train.max_train_examples, cfg.train.epochs) == (2000, 3)
            elif sweep == "budget_glue":
                assert (cfg.method.name, cfg.train.max_train_examples, cfg.train.epochs) == ("finetune", None, 3)
                assert cfg.paths.results_dir == "results/budget"
            elif sweep.endswith(("_cpu", "_cpu_finetune")):
                assert cfg.model.name == "minilm-l6" and cfg.train.max_train_examples == 1000
    assert len(ids) == len(jobs), "two jobs of one sweep would share a run id (and a results record)"


def _check_evidence_job(sweep: str, job: list[str], cfg) -> None:
    """A grid point runs its method at its learning rates; every job at its task's budget."""
    point = next((o.split("=", 1)[1] for o in job if o.startswith("hparams=")), None)
    if point is not None:
        method, lr, score_lr = EVIDENCE_POINTS[point]
        assert (cfg.method.name, cfg.train.lr, cfg.method.get("score_lr")) == (method, lr, score_lr)
        figure3 = (0.6, 0.7, 0.8)
        expected = {
            "evidence_p50": (0.5,),
            "evidence_stsb_figure3": figure3,
            "evidence_mrpc_figure3": figure3,
            "evidence_stsb_p80_seeds": (0.8,),
        }
        expected = expected.get(sweep, (0.9,))
        assert cfg.method.sparsity in ((0.0,) if method == "finetune" else expected)
    else:  # Tables 4 and 5: PST's stage-1 winner on SST-2
        assert cfg.method.kind == "pst" and cfg.train.lr == 1e-4 and cfg.method.sparsity == 0.9
    assert cfg.train.max_train_examples == EVIDENCE_BUDGET[cfg.task.name] and cfg.train.epochs == 3
    assert cfg.model.name == "minilm-l6"


@EVERY_JOB
@pytest.mark.parametrize("sweep", sorted(OLD_CPU_SWEEPS))
def test_a_cpu_sweep_runs_what_its_old_pair_of_files_ran(sweep, every_job):
    """One file per artefact now that each method names its CPU-scale learning rate (method.lr.cpu):
    the same jobs as the files it replaced, each with the same train.lr, epochs, subset, batch, export."""
    from hydra import initialize_config_module
    from omegaconf import OmegaConf

    old_lr = {}
    for grid, lr in OLD_CPU_SWEEPS[sweep]:
        for job in expand_params({"model": "minilm-l6", **grid}):
            old_lr[frozenset(job)] = lr
    jobs = expand_sweep(sweep)
    assert {frozenset(job) for job in jobs} == set(old_lr)
    with initialize_config_module(config_module="pst_bench.conf", version_base="1.3"):
        for job in jobs if every_job else taking_turns(jobs):
            cfg = _job_config(sweep, job)
            settings = {key: OmegaConf.select(cfg, key) for key in OLD_CPU_SCALE}
            assert (cfg.train.lr, settings) == (old_lr[frozenset(job)], OLD_CPU_SCALE), job


def test_a_train_lr_given_with_a_cpu_sweep_replaces_every_methods_own():
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="pst_bench.conf", version_base="1.3"):
        for method in ("map", "pst"):
            overrides = ["sweep=table2_cpu", f"method={method}", "train.lr=5e-4"]
            assert compose(config_name="config", overrides=overrides).train.lr == 5e-4


def test_a_sweep_file_runs_through_the_cli_with_seeds_as_an_extra_axis(tmp_path):
    """`pst-bench -m sweep=table4_cpu train.seed=1,2 ...`: the file's grid times the seeds, for real
    (shrunk to the tiny model: command-line values replace the file's for the same key)."""
    import json

    from helpers import run_cli, write_synthetic_sst2

    data = write_synthetic_sst2(tmp_path / "data", n_train=32, n_dev=16)
    out = run_cli(
        "-m",
        "sweep=table4_cpu",
        "model=tiny-bert",
        "task=sst2",
        f"data.dir={data}",
        "method.r1=4",
        "train.seed=1,2",
        "train.epochs=1",
        "train.max_train_examples=32",
        "train.progress_bar=false",
        cwd=tmp_path,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    records = [json.loads(p.read_text()) for p in (tmp_path / "results" / "runs").glob("*.json")]
    grid = sorted((r["config"]["method"]["r2"], r["seed"]) for r in records)
    assert grid == [(4, 1), (4, 2), (8, 1), (8, 2), (16, 1), (16, 2)]
    assert all(r["config"]["method"]["r1"] == 4 and r["sparsity"] == 0.9 for r in records)
    assert {r["config"]["train"]["lr"] for r in records} == {3e-4}  # PST's CPU-scale lr, resolved


def test_structured_sweep_reuses_the_evidence_runs_it_compares_with():
    """PST unstructured at 50% is evidence_p50's run: the same run id, so it is not trained twice."""
    from hydra import initialize_config_module

    from pst_bench.record import run_id

    def ids(sweep: str) -> set[str]:
        jobs = expand_sweep(sweep)
        with initialize_config_module(config_module="pst_bench.conf", version_base="1.3"):
            return {run_id(_job_config(sweep, job)) for job in jobs}

    shared = ids("structured_cpu") & ids("evidence_p50")
    assert len(shared) == 2 and all("_pst_p50_s42_" in rid for rid in shared)
