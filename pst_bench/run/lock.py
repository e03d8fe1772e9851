"""One process per run: a lock file in the run's checkpoint folder.

The same command started twice, or a sweep that lists a run twice, would otherwise train one run id in
two processes that overwrite each other's checkpoints. The lock is created with O_EXCL (atomic on a
local or NFS v3+ file system) and holds the holder's pid, host and start time. A second process exits
at once with one line naming the holder; a lock whose process is gone (same host, pid no longer alive)
is taken over with a warning. On another host a process cannot be checked, so such a lock is held
until it is released or removed by hand (the message says which file).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from ..errors import PstBenchError

log = logging.getLogger(__name__)

LOCK_NAME = "run.lock"


class RunLocked(PstBenchError):
    """Another live process is training this run."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _holder(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _describe(holder: dict) -> str:
    started = holder.get("started")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if started else "an unknown time"
    return f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, started {when}"


def _try_create(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        json.dump({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}, handle)
    return True


def acquire(run_dir: Path) -> Path:
    """Take the run's lock or raise ``RunLocked``; a stale lock (its process gone) is taken over."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_NAME
    for _ in range(3):  # a stale lock removed by two processes at once: one of them creates the new one
        if _try_create(path):
            return path
        holder = _holder(path)
        same_host = holder.get("host") == socket.gethostname()
        if holder.get("pid") == os.getpid() and same_host:
            return path  # this process already holds it (a run started again in-process)
        if same_host and isinstance(holder.get("pid"), int) and not _alive(holder["pid"]):
            log.warning("taking over the lock of %s: that process is gone (%s)", run_dir.name, _describe(holder))
            path.unlink(missing_ok=True)
            continue
        raise RunLocked(
            f"run {run_dir.name} is being trained by another process ({_describe(holder)}); "
            f"wait for it, or remove {path} if that process is gone"
        )
    raise RunLocked(f"could not take the lock {path}: other processes keep taking it")


def release(path: Path) -> None:
    holder = _holder(path)
    if holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[Path]:
    """``with run_lock(checkpoint folder):`` the body runs in the only process training this run."""
    path = acquire(run_dir)
    try:
        yield path
    finally:
        release(path)
