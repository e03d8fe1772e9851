"""`make install`'s torch step: a torch the venv has is kept, TORCH= wins, the CPU wheel only where none.

The install runs for real against a fake venv whose python and pip only log what they are asked;
nothing is downloaded or installed.
"""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")

FAKE_PYTHON = """#!/bin/sh
echo "python $*" >> "{log}"
case "$*" in
  *"import torch"*) [ -f "{has_torch}" ] && {{ echo 2.9.1+cu128; exit 0; }}; exit 1 ;;
esac
exit 0
"""
FAKE_PIP = """#!/bin/sh
echo "pip $*" >> "{log}"
"""


def _script(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _install(tmp_path: Path, *, has_torch: bool, torch: str | None = None) -> tuple[list[str], str]:
    venv, log = tmp_path / "venv", tmp_path / "calls.log"
    (venv / "bin").mkdir(parents=True)
    marker = tmp_path / "has-torch"
    if has_torch:
        marker.touch()
    _script(venv / "bin" / "python", FAKE_PYTHON.format(log=log, has_torch=marker))
    _script(venv / "bin" / "pip", FAKE_PIP.format(log=log))
    _script(tmp_path / "python3", FAKE_PYTHON.format(log=log, has_torch=marker))  # `python3 -m venv`: a no-op
    command = ["make", "--no-print-directory", "-C", str(ROOT), "install", f"VENV={venv}"]
    command += [f"PYTHON={tmp_path / 'python3'}", "WORDNET_STEPS="]  # no apt-get, no WordNet step
    if torch is not None:
        command.append(f"TORCH={torch}")
    env = {"PATH": "/usr/bin:/bin"}  # no TORCH from the caller's environment
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (venv / ".install.stamp").is_file()
    return log.read_text().splitlines(), done.stdout


def _torch_installs(calls: list[str]) -> list[str]:
    return [c for c in calls if c.startswith("pip install") and " torch" in f" {c.split('install', 1)[1]}"]


def test_no_torch_in_the_venv_gets_the_pinned_cpu_wheel(tmp_path):
    calls, out = _install(tmp_path, has_torch=False)
    assert _torch_installs(calls) == ["pip install --quiet torch==2.13.0"]
    assert "installing the CPU wheel torch==2.13.0" in out
    # torch before the package, so the package's torch>=2.1 is met by it
    order = [c for c in calls if c.startswith("pip install")]
    assert order.index("pip install --quiet torch==2.13.0") < order.index("pip install --quiet -e .[test,docs]")


def test_a_torch_the_venv_has_is_kept(tmp_path):
    calls, out = _install(tmp_path, has_torch=True)
    assert _torch_installs(calls) == [], calls
    assert "keeping the torch this venv has: 2.9.1+cu128" in out
    assert "pip install --quiet -e .[test,docs]" in calls


@pytest.mark.parametrize("has_torch", [False, True])
def test_torch_given_explicitly_is_installed_either_way(tmp_path, has_torch):
    wanted = "torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
    calls, out = _install(tmp_path, has_torch=has_torch, torch=wanted)
    assert _torch_installs(calls) == [f"pip install --quiet {wanted}"]
    assert f"installing torch as TORCH says: {wanted}" in out


FAKE_PROTOCOL = """#!/bin/sh
trap 'echo drained >> "{log}"; exit 0' USR1
echo started >> "{log}"
i=0
while [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
exit 3
"""


def test_draining_make_protocol_signals_the_protocol_alone(tmp_path):
    """docs/evidence.md drains a sweep with `pkill -USR1 -f pst_bench.protocol`: under `make protocol` that
    pattern must match the protocol only (the recipe execs it), not a shell between make and it that would
    die of the signal and fail make."""
    import os
    import signal
    import time

    venv, log = tmp_path / "venv", tmp_path / "calls.log"
    (venv / "bin").mkdir(parents=True)
    _script(venv / "bin" / "python", FAKE_PROTOCOL.format(log=log))
    (venv / ".install.stamp").touch()
    spec = str(tmp_path / "spec.yaml")  # in the command line: only this test's processes match below
    make = subprocess.Popen(
        ["make", "--no-print-directory", "-C", str(ROOT), "protocol", f"VENV={venv}", f"SPEC={spec}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 20
    while not (log.exists() and "started" in log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    matched = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = (Path("/proc") / pid / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "pst_bench.protocol" in cmdline and spec in cmdline and int(pid) != os.getpid():
            matched.append(int(pid))
    for pid in matched:  # what pkill -f does
        os.kill(pid, signal.SIGUSR1)
    out, _ = make.communicate(timeout=30)
    assert matched, "the protocol process was found"
    assert make.returncode == 0, out
    assert log.read_text().split() == ["started", "drained"]
