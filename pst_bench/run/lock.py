"""One process per run: a lock file in the run's checkpoint folder.

The same command started twice, or a sweep that lists a run twice, would otherwise train one run id in
two processes that overwrite each other's checkpoints. The lock is created with O_EXCL (atomic on a
local or NFS v3+ file system) and holds the holder's pid, host and start time. A second process exits
at once with one line naming the holder; a lock whose process is gone (same host, pid no longer alive)
is taken over with a warning. On another host a process cannot be checked, so such a lock is held
until it is released or removed by hand (the message says which file).

The holder's details are written to a temporary file first and hard-linked into place, so a lock is
never seen empty. A lock left empty or half-written all the same (by an older version, or a file
system that refuses hard links and falls back to O_EXCL, with the process killed between creating and
writing it) names no holder: once it is older than ``EMPTY_GRACE_S`` it is stale and taken over.
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
#: seconds after which a lock that names no holder (empty, half-written) counts as stale
EMPTY_GRACE_S = 60.0


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
        holder = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _describe(holder: dict) -> str:
    started = holder.get("started")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if started else "an unknown time"
    return f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, started {when}"


def _try_create(path: Path) -> bool:
    """Create the lock with this process's details in it; False when it exists already."""
    payload = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()})
    tmp = path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}")
    try:
        tmp.write_text(payload)
        try:
            os.link(tmp, path)  # atomic, fails if the lock exists: the lock appears already written
            return True
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links
            pass
    finally:
        tmp.unlink(missing_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        handle.write(payload)
    return True


def _age_s(path: Path) -> float | None:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return None


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
        if not isinstance(holder.get("pid"), int):  # empty or half-written: no holder to check
            age = _age_s(path)
            if age is None:
                continue  # removed meanwhile: try again
            if age >= EMPTY_GRACE_S:
                log.warning(
                    "taking over the lock of %s: %s names no holder and is %.0f s old (a process killed while "
                    "creating it)",
                    run_dir.name,
                    path,
                    age,
                )
                path.unlink(missing_ok=True)
                continue
            raise RunLocked(
                f"run {run_dir.name} has a lock that names no holder yet ({path}, {age:.0f} s old): another "
                f"process may be starting it; if none is, it counts as stale after {EMPTY_GRACE_S:.0f} s "
                "(rerun then, or remove the file)"
            )
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
