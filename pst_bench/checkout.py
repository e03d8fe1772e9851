"""The git checkout code runs from: its commit, and whether its tracked files have uncommitted changes.

Records name both (``record.write``), the protocol refuses to start from a changed checkout
(``protocol.__main__``) and the device bundle from one (``install.device``): one place asks git. Untracked
files are left out on purpose: results, outputs and checkpoints are never code.
"""

from __future__ import annotations

import subprocess
from pathlib import Path


def git(*args: str, cwd: Path | str | None = None, timeout: float = 30) -> str:
    """``git args`` in ``cwd``; raises ``OSError`` (no git) or ``subprocess.SubprocessError`` (not a checkout)."""
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=True).stdout


def head_commit(cwd: Path | str | None = None) -> str:
    return git("rev-parse", "HEAD", cwd=cwd).strip()


def has_uncommitted_changes(cwd: Path | str | None = None) -> bool:
    """Whether a tracked file differs from the commit (staged or not); raises as ``git`` where no checkout."""
    return bool(git("status", "--porcelain", "--untracked-files=no", cwd=cwd).strip())
