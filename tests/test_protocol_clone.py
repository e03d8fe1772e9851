"""The protocol's clone chores (pst_bench.protocol.clone): finished records come home, a differing record
stops it, and the clone is brought to this checkout's commit without losing a record."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from pst_bench.protocol import clone as chores

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
FOLDERS = ["results/runs", "results/schedule"]


def _git(*args: str, cwd: Path) -> str:
    command = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main", *args]
    return subprocess.run(command, cwd=cwd, check=True, capture_output=True, text=True).stdout


def _record(folder: Path, name: str, status: str = "finished", value: float = 0.8) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps({"status": status, "final": {"value": value}}))
    return path


@pytest.fixture
def repos(tmp_path, monkeypatch):
    here = tmp_path / "main"
    here.mkdir()
    _git("init", "-q", cwd=here)
    _record(here / "results/runs", "a.json")
    _git("add", "-A", cwd=here)
    _git("commit", "-qm", "a", cwd=here)
    _git("clone", "-q", str(here), str(tmp_path / "sweep"), cwd=tmp_path)
    monkeypatch.setattr(chores, "protocol_running", lambda: False)
    return here, tmp_path / "sweep"


def test_home_copies_finished_records_only(repos):
    here, sweep = repos
    _record(sweep / "results/runs", "b.json")
    _record(sweep / "results/runs", "c.json", status="running")
    _record(sweep / "results/schedule", "s.json")
    copied = chores.bring_home(sweep, here, FOLDERS)
    assert sorted(map(str, copied)) == ["results/runs/b.json", "results/schedule/s.json"]
    assert (here / "results/runs/b.json").read_bytes() == (sweep / "results/runs/b.json").read_bytes()
    assert not (here / "results/runs/c.json").exists()
    assert chores.bring_home(sweep, here, FOLDERS) == []  # nothing new the second time


def test_home_stops_on_a_record_that_differs(repos):
    here, sweep = repos
    _record(sweep / "results/runs", "a.json", value=0.1)
    with pytest.raises(chores.CloneError, match="results/runs/a.json"):
        chores.bring_home(sweep, here, FOLDERS)


def test_update_removes_the_copies_it_committed_and_pulls(repos):
    here, sweep = repos
    _record(sweep / "results/runs", "b.json")
    chores.bring_home(sweep, here, FOLDERS)
    _git("add", "-A", cwd=here)
    _git("commit", "-qm", "b", cwd=here)
    _record(sweep / "results/runs", "d.json")  # finished in the clone, not yet home: stays
    commit = chores.update_clone(sweep, here, FOLDERS, install=False)
    assert _git("rev-parse", "--short", "HEAD", cwd=here).strip() == commit
    assert _git("ls-files", "results/runs/b.json", cwd=sweep).strip() == "results/runs/b.json"
    assert (sweep / "results/runs/d.json").is_file()


def test_update_stops_on_a_differing_copy_or_a_running_protocol(repos, monkeypatch):
    here, sweep = repos
    _record(here / "results/runs", "b.json")
    _git("add", "-A", cwd=here)
    _git("commit", "-qm", "b", cwd=here)
    _record(sweep / "results/runs", "b.json", value=0.2)
    with pytest.raises(chores.CloneError, match="results/runs/b.json differ"):
        chores.update_clone(sweep, here, FOLDERS, install=False)
    monkeypatch.setattr(chores, "protocol_running", lambda: True)
    with pytest.raises(chores.CloneError, match="drain it first"):
        chores.update_clone(sweep, here, FOLDERS, install=False)


def test_the_command_refuses_a_folder_that_is_no_clone(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert chores.main(["home", str(tmp_path / "nowhere")]) == 2
    assert "is not a git clone" in capsys.readouterr().err
