"""The benchmark's report (``pst_bench.perf.bench``): ratios to dense training, the targets PST is held to,
the Markdown table."""

from __future__ import annotations

MIB = 2**20

# The targets the benchmark reports: (name, numerator, denominator, quantity, limit)
TARGETS = (
    ("PST step <= 1.05x dense", "pst", "finetune", "step_s", 1.05),
    ("PST step <= 0.85x MvP", "pst", "mvp", "step_s", 0.85),
    ("PST peak memory <= 0.45x MvP", "pst", "mvp", "peak_bytes", 0.45),
    ("PST eval forward <= 1.05x dense", "pst", "finetune", "eval_s", 1.05),
)


def _floor(results: dict, quantity: str, den: str) -> float | None:
    """The lowest PST/den ratio any PST implementation could reach here, from measured parts.

    step: PST needs every matmul of dense training's forward + backward (the weight
    gradient G = gᵀx feeds all factor gradients), so dense forward+backward / den.
    memory: what PST's step adds on top of its resident state is activations and
    their gradients, which every method has; that alone / den's peak.
    """
    dense, pst, other = results.get("finetune"), results.get("pst"), results.get(den)
    if not (pst and other) or den == "finetune":
        return None
    if quantity == "step_s" and dense:
        return round(dense["forward_backward_s"] / other["step_s"], 3)
    if quantity == "peak_bytes" and "peak_bytes" in pst:
        return round((pst["peak_bytes"] - pst["resident_bytes"]) / other["peak_bytes"], 3)
    return None


def ratio(results: dict, num: str, den: str, quantity: str) -> float | None:
    a, b = results.get(num, {}).get(quantity), results.get(den, {}).get(quantity)
    return round(a / b, 3) if a is not None and b else None


def target_checks(results: dict) -> list[dict]:
    checks = []
    for name, num, den, quantity, limit in TARGETS:
        value = ratio(results, num, den, quantity)
        checks.append(
            {
                "target": name,
                "ratio": value,
                "limit": limit,
                "met": None if value is None else value <= limit,
                "floor": _floor(results, quantity, den),
            }
        )
    return checks


def markdown_report(report: dict) -> str:
    results, s = report["methods"], report["settings"]
    base = "finetune" if "finetune" in results else next(iter(results))
    has_memory = all("peak_bytes" in r for r in results.values())

    def cell(value, fmt):
        return "–" if value is None else format(value, fmt)

    lines = [
        f"# Benchmark: {s['model']} shape, batch {s['batch_size']}, sequence {s['seq_length']}, "
        f"{s['device']}, sparsity {s['sparsity']:.0%}",
        "",
        f"Command: `{report['command']}`  ",
        f"Machine: {report['machine']['processor']}, {report['machine']['torch_threads']} torch threads, "
        f"torch {report['versions'].get('torch')}  ",
        f"Median of {s['repeats']} training steps after {s['warmup']} warm-up rounds, methods interleaved; "
        f"ratios are to {base} (dense fine-tuning) measured in the same run.",
        "",
        "| method | trainable params | step (s) | step ×dense | forward+backward (s) | mask share of step | "
        + ("resident (MiB) | peak memory (MiB) | memory ×dense | " if has_memory else "")
        + "eval forward (s) | eval ×dense | calibration (s) |",
        "|---|---:|---:|---:|---:|---:|" + ("---:|---:|---:|" if has_memory else "") + "---:|---:|---:|",
    ]
    for name, r in results.items():
        row = [
            name,
            f"{r['trainable_params']:,}",
            cell(r["step_s"], ".3f"),
            cell(ratio(results, name, base, "step_s"), ".3f"),
            cell(r["forward_backward_s"], ".3f"),
            f"{r['mask_share']:.1%}",
        ]
        if has_memory:
            row += [
                f"{r['resident_bytes'] / MIB:,.0f}",
                f"{r['peak_bytes'] / MIB:,.0f}",
                cell(ratio(results, name, base, "peak_bytes"), ".3f"),
            ]
        calibration = (r.get("calibration") or {}).get("seconds")
        row += [cell(r["eval_s"], ".3f"), cell(ratio(results, name, base, "eval_s"), ".3f"), cell(calibration, ".2f")]
        lines.append("| " + " | ".join(row) + " |")
    calibrated = {name: r["calibration"] for name, r in results.items() if r.get("calibration")}
    if calibrated:
        first = next(iter(calibrated.values()))
        lines += [
            "",
            f"calibration: the one-shot methods ({', '.join(calibrated)}) prune once before training, block by "
            f"block, from {first['samples']} sequences of {s['seq_length']} tokens ({first['tokens']:,} tokens, "
            f"{first['blocks']} blocks); their steps then train with the mask fixed (no mask selection).",
        ]
    lines += ["", "| target | measured | met | floor |", "|---|---:|---|---:|"]
    for check in report["targets"]:
        met = "–" if check["met"] is None else ("yes" if check["met"] else "**no**")
        lines.append(f"| {check['target']} | {cell(check['ratio'], '.3f')} | {met} | {cell(check['floor'], '.3f')} |")
    lines += [
        "",
        "floor: the lowest ratio reachable from parts measured in this run. Step vs MvP: dense "
        "forward+backward / MvP step (PST needs all of dense's matmuls, since the weight gradient "
        "gᵀx feeds every factor gradient). Memory vs MvP: (PST peak − PST resident) / MvP peak "
        "(activations and their gradients, which no sparse parametrisation removes).",
    ]
    export = report.get("compressed_export")
    if export:
        lines += [
            "",
            f"Compressed export of the merged PST model at {s['sparsity']:.0%} "
            f"(dense save_pretrained: {export['float16']['dense_bytes'] / MIB:,.1f} MiB):",
            "",
        ]
        for dtype, sizes in export.items():
            lines.append(
                f"- bitmask + {dtype} values: {sizes['compressed_bytes'] / MIB:,.1f} MiB, "
                f"{sizes['ratio']:.3f}× the dense checkpoint"
            )
    return "\n".join(lines) + "\n"
