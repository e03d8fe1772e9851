"""The protocol's clone and this checkout: bring finished records home, and the clone up to date.

A long protocol runs from a separate clone (``results/README.md``, *Plan*), so that edits here cannot
change it. Two chores recur every working session, run from this checkout:

    python -m pst_bench.protocol.clone home CLONE     # make bring-home CLONE=...: records here, reports rebuilt
    python -m pst_bench.protocol.clone update CLONE   # make clone-update CLONE=...: the clone at this commit

``home`` copies every finished record of the clone's record folders (the spec's ``results_dir`` and its
schedule probe's) that this checkout lacks. A record both hold must be the same bytes: a run id names one
configuration, so two different files under one name mean something went wrong, and it stops, naming
them. The mask files stay in the clone; ``make tables TABLES_ARGS="--masks CLONE/results/runs"`` keeps
their distances here (``report.mask_store``).

``update`` refuses while a protocol runs (drain it first: ``pkill -USR1 -f pst_bench.protocol``). It
deletes the clone's untracked records that this checkout has committed with the same bytes (``git pull``
would refuse to overwrite them), stops on one that differs, then pulls this checkout's branch into the
clone and installs the package there again (``pip install -e . --no-deps``, the clone's own venv).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from ..checkout import git
from .spec import load_spec


class CloneError(Exception):
    """What stops a chore, in one line."""


def record_folders(spec_name: str = "cpu") -> list[str]:
    spec = load_spec(spec_name)
    return [spec.results_dir, spec.schedule.results_dir]


def _finished(path: Path) -> bool:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("status") == "finished"
    except (OSError, UnicodeDecodeError, ValueError):
        return False


def bring_home(clone: Path, here: Path, folders: list[str]) -> list[Path]:
    """Copy the clone's finished records this checkout lacks; the paths copied (relative to ``here``)."""
    copied, differ = [], []
    for folder in folders:
        for source in sorted((clone / folder).glob("*.json")):
            target = here / folder / source.name
            if target.exists():
                if target.read_bytes() != source.read_bytes():
                    differ.append(f"{folder}/{source.name}")
                continue
            if _finished(source):
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
                copied.append(target.relative_to(here))
    if differ:
        raise CloneError(f"records differ between {clone} and {here}: {', '.join(differ)}; compare them by hand")
    return copied


def _untracked(clone: Path, folder: str) -> list[str]:
    out = git("ls-files", "--others", "--exclude-standard", "--", f"{folder}/*.json", cwd=clone)
    return [line for line in out.splitlines() if line]


def protocol_running() -> bool:
    found = subprocess.run(["pgrep", "-f", "pst_bench.protocol --spec"], capture_output=True, text=True)
    return bool(found.stdout.strip())


def update_clone(clone: Path, here: Path, folders: list[str], install: bool = True) -> str:
    """Bring the clone to this checkout's branch head; returns the clone's new commit."""
    if protocol_running():
        raise CloneError("a protocol is running: drain it first (pkill -USR1 -f pst_bench.protocol) and wait for it")
    removed, differ = 0, []
    for folder in folders:
        for name in _untracked(clone, folder):
            mine = here / name
            if not mine.is_file() or git("ls-files", "--", name, cwd=here).strip() != name:
                continue  # not committed here: the pull leaves it alone
            if mine.read_bytes() == (clone / name).read_bytes():
                (clone / name).unlink()
                removed += 1
            else:
                differ.append(name)
    if differ:
        raise CloneError(f"the clone's {', '.join(differ)} differ from the committed ones here; compare them by hand")
    branch = git("rev-parse", "--abbrev-ref", "HEAD", cwd=here).strip()
    git("pull", "-q", "--ff-only", str(here.resolve()), branch, cwd=clone, timeout=300)
    if install:
        pip = clone / ".venv" / "bin" / "pip"
        subprocess.run([str(pip), "install", "-q", "-e", ".", "--no-deps"], cwd=clone, check=True)
    commit = git("rev-parse", "--short", "HEAD", cwd=clone).strip()
    print(f"clone {clone}: at {commit}; {removed} untracked records it had committed here removed")
    return commit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pst_bench.protocol.clone", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["home", "update"])
    parser.add_argument("clone", type=Path, help="the clone the protocol runs from")
    parser.add_argument("--spec", default="cpu", help="the protocol whose record folders to use (default: cpu)")
    args = parser.parse_args(argv)
    here = Path.cwd()
    if args.clone.resolve() == here.resolve() or not (args.clone / ".git").exists():
        print(f"clone: {args.clone} is not a git clone; make one with `git clone {here} {args.clone}`", file=sys.stderr)
        return 2
    try:
        folders = record_folders(args.spec)
        if args.action == "home":
            copied = bring_home(args.clone, here, folders)
            print(f"{len(copied)} finished records brought home from {args.clone}")
            for path in copied:
                print(f"  {path}")
        else:
            update_clone(args.clone, here, folders)
    except (CloneError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", None)
        print(f"clone: {error}{(': ' + detail.strip()) if detail else ''}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
