"""The dry run (`pst-bench info=check`, and `--cfg job`'s value checks) and the typed train.device /
train.mixed_precision: each mistake caught in one line, before anything trains."""

from __future__ import annotations

import json

import pytest
import torch
from omegaconf import OmegaConf

from helpers import compose_cfg
from pst_bench.schema.check import check_config
from pst_bench.schema.precheck import composition_error

TINY = ["model=tiny-bert", "task=sst2"]


def _problems(overrides) -> list[str]:
    report = check_config(compose_cfg(overrides))
    assert all("\n" not in line for line in report.problems)
    return report.problems


def _only(problems: list[str], *fragments: str) -> str:
    assert len(problems) == 1, problems
    assert all(fragment in problems[0] for fragment in fragments), problems[0]
    return problems[0]


def test_a_config_without_mistakes_passes_and_says_what_it_checked(synthetic_data):
    report = check_config(compose_cfg([*TINY, f"data.dir={synthetic_data}", "train.mixed_precision=bf16"]))
    assert report.ok, report.problems
    assert [note.split(":")[0] for note in report.notes] == [
        "config",
        "device",
        "data",
        "model",
        "tokenizer of tiny-bert",
    ]


def test_a_sparsity_out_of_range_is_one_line(synthetic_data):
    _only(_problems([*TINY, f"data.dir={synthetic_data}", "method.sparsity=1.5"]), "method.sparsity=1.5", "[0, 1)")


@pytest.mark.parametrize(
    "override, choices",
    [("train.device=gpu", "[auto, cpu, cuda]"), ("train.mixed_precision=bf17", "[no, fp16, bf16]")],
)
def test_a_device_or_precision_outside_its_choices_is_refused_while_composing(override, choices):
    for args in (["info=check", *TINY, override], ["info=params", override], ["--cfg", "job", override]):
        message = composition_error(args)
        assert message is not None and "\n" not in message
        assert override.split("=")[1] in message and choices in message


def test_cfg_job_checks_value_ranges_too():
    message = composition_error(["--cfg", "job", *TINY, "method.sparsity=1.5"])
    assert message == "method.sparsity=1.5 must be in [0, 1)"
    assert composition_error(["--cfg", "job", *TINY]) is None


def test_mnli_without_local_data_and_an_offline_hub_is_one_line(offline_hub_with_empty_cache, synthetic_data):
    _only(_problems([*TINY, "task=mnli"]), "task=mnli", "nyu-mll/glue", "HF_HUB_OFFLINE=1", "data.dir")
    # a data folder without the task's folder, then one without its dev files
    _only(_problems([*TINY, "task=mnli", f"data.dir={synthetic_data}"]), "no MNLI folder", "MNLI/dev_matched.tsv")
    (synthetic_data / "MNLI").mkdir()
    (synthetic_data / "MNLI" / "train.tsv").write_text("")
    _only(
        _problems([*TINY, "task=mnli", f"data.dir={synthetic_data}"]),
        "lacks dev_matched.tsv, dev_mismatched.tsv",
    )


def test_a_model_folder_that_does_not_exist_is_one_line(tmp_path, synthetic_data):
    missing = tmp_path / "no-such-model"
    _only(_problems(["task=sst2", f"data.dir={synthetic_data}", f"model.local_dir={missing}"]), str(missing))
    missing.mkdir()
    (missing / "config.json").write_text("{}")  # a config but no weights
    _only(_problems(["task=sst2", f"data.dir={synthetic_data}", f"model.local_dir={missing}"]), "no weights file")


def test_a_hub_model_missing_from_the_offline_cache_is_one_line(offline_hub_with_empty_cache, synthetic_data):
    _only(_problems(["model=bert-base", f"data.dir={synthetic_data}"]), "bert-base-uncased", "HF_HUB_OFFLINE=1")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_cuda_without_a_gpu_and_fp16_on_the_cpu_are_problems(synthetic_data):
    base = [*TINY, f"data.dir={synthetic_data}"]
    _only(_problems([*base, "train.device=cuda"]), "train.device=cuda", "no CUDA device")
    _only(_problems([*base, "train.mixed_precision=fp16"]), "fp16 on the CPU", "float32")


def test_several_mistakes_give_one_line_each_through_the_script(tmp_path):
    from helpers import run_cli

    out = run_cli(
        "info=check", "task=mnli", f"data.dir={tmp_path}", f"model.local_dir={tmp_path / 'nope'}",
        "method.sparsity=1.5", cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 2, out.stdout
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("pst-bench: error: ") for line in lines), lines
    assert "method.sparsity=1.5" in lines[0] and "no MNLI folder" in lines[1] and "model.local_dir" in lines[2]


# -- the typed choices keep the strings that records and run ids hold -----------------------------------
def test_typed_choices_resolve_to_the_same_strings_and_hashes():
    from pst_bench.record import config_hash, identity_config
    from pst_bench.schema.structured import Device, MixedPrecision

    cfg = compose_cfg([*TINY, "train.mixed_precision=bf16", "train.device=cpu"])
    assert cfg.train.device is Device.cpu and cfg.train.mixed_precision is MixedPrecision.bf16
    assert cfg.train.device == "cpu" and str(cfg.train.mixed_precision) == "bf16" and f"{cfg.train.device}" == "cpu"
    plain = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    assert type(plain["train"]["device"]) is str and type(plain["train"]["mixed_precision"]) is str
    identity = identity_config(cfg)
    assert type(identity["train"]["mixed_precision"]) is str
    # a record's stored config (JSON) hashes as the live config: resumed runs and committed ids agree
    stored = json.loads(json.dumps(plain))
    assert config_hash(stored) == config_hash(cfg)
    default = compose_cfg(TINY)
    assert OmegaConf.to_container(default, resolve=True, enum_to_str=True)["train"]["mixed_precision"] == "no"
