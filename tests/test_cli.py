"""The installed `pst-bench` console script and its error messages."""

from pathlib import Path

import pytest

from helpers import compose_cfg, run_cli, write_synthetic_sst2


def test_script_shows_the_composed_job_config(tmp_path):
    out = run_cli("--cfg", "job", "method=mvp", "task=rte", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "kind: mvp" in out.stdout and "name: rte" in out.stdout


def test_info_params_prints_counts_without_weights(tmp_path):
    out = run_cli("info=params", "model=bert-base", "method=pst", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "2,820,096" in out.stdout and "2.82" in out.stdout


@pytest.mark.parametrize(
    "override, expected",
    [
        ("model=bert-huge", "bert-base"),
        ("task=squad", "sst2"),
        ("method=prune", "pst"),
    ],
)
def test_unknown_choices_fail_with_one_line_listing_the_options(tmp_path, override, expected):
    out = run_cli(override, cwd=tmp_path)
    assert out.returncode == 2
    line = out.stderr.strip()
    assert "\n" not in line and line.startswith("pst-bench: error: unknown")
    assert override.split("=")[1] in line and expected in line


def test_unknown_choice_inside_a_multirun_list_is_caught():
    from pst_bench.cli import unknown_choice_message

    assert unknown_choice_message(["-m", "method=map,pst"]) is None
    assert "'pts'" in unknown_choice_message(["-m", "method=map,pts"])
    assert unknown_choice_message(["method.sparsity=0.5", "train.lr=1e-4"]) is None


IMPOSSIBLE = [
    ("method.sparsity=1.0", "method.sparsity=1.0 must be in [0, 1)"),
    ("method.sparsity=-0.1", "must be in [0, 1)"),
    ("method.r1=0", "method.r1=0 must be an integer >= 1"),
    ("method.r2=0", "method.r2=0 must be an integer >= 1"),
    ("export_compressed=int8", "export_compressed='int8': choose float16, bfloat16, float32 or null"),
]


@pytest.mark.parametrize("override, message", IMPOSSIBLE)
def test_impossible_settings_are_refused_by_validation(override, message):
    """The message the script prints for each (below), in process: the script prints `pst-bench: error: <it>`."""
    from pst_bench.errors import ConfigError
    from pst_bench.schema.validate import validate_config

    with pytest.raises(ConfigError) as refused:
        validate_config(compose_cfg(["model=tiny-bert", override]))
    assert message in str(refused.value)


# Each start of the script imports torch and transformers (seconds): the quick run sends one impossible
# setting through it, the slow run every one.
@pytest.mark.parametrize(
    "override, message", [IMPOSSIBLE[0], *(pytest.param(*case, marks=pytest.mark.slow) for case in IMPOSSIBLE[1:])]
)
def test_impossible_settings_fail_with_one_line(tmp_path, override, message):
    out = run_cli("model=tiny-bert", override, cwd=tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert lines[-1].startswith("pst-bench: error:") and message in lines[-1], out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["method.sparsity=abc"], "method.sparsity=abc: Value 'abc' of type 'str' could not be converted to"),
        (["method.sparsityy=0.5"], "Could not override 'method.sparsityy': Key 'sparsityy' not in 'PstMethod"),
        (["-m", "method.sparsity=0.5,abc"], "method.sparsity=abc: Value 'abc'"),  # before any job runs
    ],
)
def test_an_override_hydra_refuses_fails_with_one_line(tmp_path, args, message):
    out = run_cli(*args, "model=tiny-bert", cwd=tmp_path)
    assert out.returncode == 2
    line = out.stderr.strip()
    assert "\n" not in line and line.startswith("pst-bench: error:") and message in line, out.stderr
    assert not (tmp_path / "results").exists()


def test_composition_errors_are_one_line_and_only_for_what_hydra_refuses():
    from pst_bench.schema.precheck import _trials, composition_error

    assert composition_error([]) is None
    assert (
        composition_error(
            ["-m", "method=map,pst", "method.sparsity=0.5,0.9", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
        )
        is None
    )
    assert composition_error(["--cfg", "job", "task=e2e", "model=gpt2", "nlg.num_beams=4"]) is None
    assert "Key 'r1' not in 'MethodConfig'" in composition_error(["method=map", "method.r1=4"])
    assert "+method.r1" not in composition_error(["method=map", "method.r1=4"])  # typed: no new key
    missing = composition_error(["sweep=nope"])
    first = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "conf" / "sweep").glob("*.yaml"))
    assert f"Could not find 'sweep/nope'; Available options in 'sweep': {', '.join(first[:2])}," in missing
    assert composition_error(["method.sparsity=0.5,0.9"]).startswith("Ambiguous value")  # a sweep without -m
    # under -m every value of every axis is composed once: as many trials as the longest axis has values
    assert _trials(["a=1,2,3", "b=x,y"], True) == [["a=1", "b=x"], ["a=2", "b=y"], ["a=3", "b=x"]]
    assert _trials(["a=1,2,3"], False) == [["a=1,2,3"]]


def test_missing_data_offline_says_where_it_looked(tmp_path):
    out = run_cli("model=tiny-bert", "task=rte", cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "PST_DATA_DIR" in out.stderr and "data.dir" in out.stderr


def test_malformed_data_line_names_file_and_line(tmp_path):
    data = write_synthetic_sst2(tmp_path / "data")
    dev = data / "SST-2" / "dev.tsv"
    lines = dev.read_text().splitlines()
    lines[5] = "a line without its label"
    dev.write_text("\n".join(lines) + "\n")
    out = run_cli("model=tiny-bert", f"data.dir={data}", cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "dev.tsv" in out.stderr and "line 6" in out.stderr


def test_end_to_end_through_the_script(tmp_path):
    data = write_synthetic_sst2(tmp_path / "data")
    out = run_cli(
        "model=tiny-bert",
        f"data.dir={data}",
        "train.epochs=1",
        "method.sparsity=0.5",
        "train.progress_bar=false",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "validation accuracy" in out.stdout
    records = list((tmp_path / "results" / "runs").glob("*.json"))
    assert len(records) == 1


def test_a_failing_multirun_job_does_not_stop_the_others(tmp_path):
    data = write_synthetic_sst2(tmp_path / "data")
    out = run_cli(
        "-m",
        "model=tiny-bert",
        f"data.dir={data}",
        "train.epochs=1",
        "train.progress_bar=false",
        "method.sparsity=1.0,0.5",
        cwd=tmp_path,
    )
    assert out.returncode != 0
    assert "method.sparsity=1.0 must be in [0, 1)" in out.stderr
    records = list((tmp_path / "results" / "runs").glob("*.json"))
    assert [r.name.split("_")[3] for r in records] == ["p50"]


def test_nlg_tasks_default_to_gpt2_medium_unless_a_model_is_given():
    from pst_bench.cli import with_task_default_model

    assert with_task_default_model(["task=e2e", "method=pst"]) == ["task=e2e", "method=pst", "model=gpt2-medium"]
    assert with_task_default_model(["-m", "task=e2e,dart"])[-1] == "model=gpt2-medium"
    assert with_task_default_model(["task=e2e", "model=gpt2"]) == ["task=e2e", "model=gpt2"]
    assert with_task_default_model(["task=sst2"]) == ["task=sst2"]
    assert with_task_default_model(["-m", "task=sst2,e2e"]) == ["-m", "task=sst2,e2e"]
