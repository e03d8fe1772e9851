"""Names that a benchmark writes and a report reads, kept apart from both.

The reports (``pst_bench.report``) read the benchmark's files, never its code: what the two must agree
on lives here, in a module that imports nothing.
"""

from __future__ import annotations


def slim_name(share: float) -> str:
    """The inference benchmark's name of the slim model with this share of units removed (``slim-50%``)."""
    return f"slim-{round(100 * share)}%"
