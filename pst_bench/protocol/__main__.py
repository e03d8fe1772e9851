"""``python -m pst_bench.protocol``: plan and run the evidence protocol (see the package docstring)."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

from ..errors import PstBenchError
from ..files import atomic_write_text
from .execute import Ledger, describe, git_dirty, parse_until, run_protocol
from .plan import make_plan
from .spec import load_spec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pst_bench.protocol", description=__doc__)
    parser.add_argument("--spec", default="cpu", help="a protocol of conf/protocol/ (cpu, gpu) or a .yaml path")
    parser.add_argument("--dry-run", action="store_true", help="print where the protocol stands; run nothing")
    parser.add_argument("--write", type=Path, help="also write that markdown to this file (atomically)")
    parser.add_argument("--jobs", type=int, help="runs at once (default: the spec's jobs)")
    parser.add_argument("--max-runs", type=int, help="start at most this many runs, then stop when they end")
    parser.add_argument(
        "--until",
        help="start only runs estimated to end before this clock time (HH:MM) or after this long (90m, 2.5h); "
        "the call ends when no pending run fits",
    )
    parser.add_argument(
        "--allow-dirty",
        action="store_true",
        help="run from a checkout with uncommitted changes (its records are refused by the claims)",
    )
    args = parser.parse_args(argv)
    try:
        spec = load_spec(args.spec)
        if args.dry_run:
            ledger = Ledger(spec)
            text = describe(spec, ledger, make_plan(spec, ledger))
            print(text, end="")
            if args.write:
                atomic_write_text(args.write, text)
            return 0
        if git_dirty() and not args.allow_dirty:
            print(
                "protocol: this checkout has uncommitted changes, so its records could not be traced to code; "
                "commit first, run from a clean clone, or pass --allow-dirty",
                file=sys.stderr,
            )
            return 2
        until = parse_until(args.until, datetime.now().astimezone()) if args.until else None
        return run_protocol(spec, args.jobs or spec.jobs, args.max_runs, until)
    except PstBenchError as error:
        print(f"protocol: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
