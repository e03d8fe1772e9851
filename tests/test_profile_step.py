"""make profile's report: every measured quantity reaches profile.md (the numbers themselves are measured)."""

from __future__ import annotations

import json
from pathlib import Path

from pst_bench.perf.profile_step import PHASES, markdown

PROFILE = Path(__file__).resolve().parents[1] / "results" / "perf" / "profile.json"


def test_the_markdown_shows_steps_phases_adamw_and_operators_of_the_committed_profile():
    data = json.loads(PROFILE.read_text())
    results = data["results"]
    for r in results:  # profiles made before the phases had every key still render
        r["grouped"]["phases_s"] = {p: r["grouped"]["phases_s"].get(p, 0.0) for p in PHASES}
    text = markdown(results, "make profile", data["peak_gflops"])
    first = results[0]
    assert f"| {first['task']} | {first['method']} | {first['padding_ratio']['random']:.2f}x |" in text
    adamw = first["adamw"]
    assert f"| {adamw['default_s']:.4f} | {adamw['fused_s']:.4f} | {adamw['speedup']:.2f}x |" in text
    assert text.count("| sst2 |") == 3 * sum(r["task"] == "sst2" for r in results), "steps, phases and AdamW rows"
    assert f"{data['peak_gflops']:.1f} GFLOP/s" in text
