"""Layer-wise reconstruction error of one-shot pruning on real MiniLM-L6 layers: magnitude, Wanda, SparseGPT.

    python -m pst_bench.perf.reconstruction [--samples 128] [--sparsities 0.5 0.9] [Hydra overrides]

Every sparsified matrix W of the bundled pretrained MiniLM-L6 (model=minilm-l6, 36 matrices) is pruned on
its own from the dense model's inputs to it, gathered over the non-padding tokens of ``--samples`` training
sentences of the task (the runner's seeded calibration sample, ``run.experiment.calibration_indices``),
by

- magnitude: the top-v of |W| per matrix (MaP's mask, one shot);
- Wanda: |W_ij|·‖X_j‖₂, each output row keeping its best (the paper), and per matrix;
- SparseGPT: ``sparsity.sparsegpt.sparsegpt_prune`` (percdamp 0.01, blocks of 128), kept weights updated;

and 2:4 (at 50%) for the three. The error is the relative ‖W·X − W'·X‖_F / ‖W·X‖_F on **another**
``--samples`` sentences (held out from the calibration ones, so SparseGPT's fit to its calibration tokens
is not rewarded), per matrix, then averaged over the six blocks per matrix role. Nothing trains: this
measures the one-shot step alone (the runner then fine-tunes with the mask fixed). Writes
``results/perf/reconstruction.md`` and ``.json`` with the command that made them.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Subset

from ..adapter import SparseConfig
from ..adapter.model import resolve_targets
from ..files import atomic_write_text
from ..models.loading import fit_tokenizer_to_model, load_model, load_tokenizer
from ..record import library_versions
from ..run.experiment import calibration_indices
from ..sparsity.mask import kept_count, topv_mask
from ..sparsity.modules import matching_module_names
from ..sparsity.patterns import NM
from ..sparsity.sparsegpt import sparsegpt_prune
from ..sparsity.wanda import per_output_mask
from ..tasks import make_task_runner

NM24 = NM(2, 4)


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    with initialize_config_module(config_module="pst_bench.conf", version_base="1.3"):
        return hydra_compose(config_name="config", overrides=["model=minilm-l6", "task=sst2", *overrides])


@torch.no_grad()
def layer_inputs(model, names: list[str], batches: list[dict]) -> dict[str, torch.Tensor]:
    """{layer: (T, k) float64 inputs over every batch's non-padding tokens} from a dense forward."""
    gathered: dict[str, list] = {name: [] for name in names}
    current = {}

    def grab(name):
        def hook(module, args):
            gathered[name].append(args[0][current["mask"]].double())

        return hook

    handles = [model.get_submodule(name).register_forward_pre_hook(grab(name)) for name in names]
    try:
        for batch in batches:
            current["mask"] = batch["attention_mask"].bool()
            model(**{k: v for k, v in batch.items() if k not in ("labels", "label")})
    finally:
        for handle in handles:
            handle.remove()
    return {name: torch.cat(rows) for name, rows in gathered.items()}


def pruned_weights(W: torch.Tensor, X: torch.Tensor, sparsity: float) -> dict[str, torch.Tensor]:
    """Each method's pruned weight of W (n × k) from calibration inputs X (T × k), all float64."""
    H = 2.0 * X.T @ X / X.shape[0]
    norms = X.square().mean(dim=0).sqrt()
    wanda = W.abs() * norms
    keep = kept_count(W.numel(), sparsity)
    out = {
        "magnitude": W * topv_mask(W.abs(), keep),
        "wanda (per output)": W * per_output_mask(wanda, sparsity),
        "wanda (per matrix)": W * topv_mask(wanda, keep),
        "sparsegpt": sparsegpt_prune(W, H, sparsity)[0],
    }
    if sparsity == NM24.final_sparsity:
        out["magnitude 2:4"] = W * NM24.mask(W.abs(), sparsity)
        out["wanda 2:4"] = W * NM24.mask(wanda, sparsity)
        out["sparsegpt 2:4"] = sparsegpt_prune(W, H, sparsity, NM24)[0]
    return out


def role_of(name: str) -> str:
    """q, k, v, attn out, ffn in, ffn out: the matrix's place in its block."""
    for pattern, role in (
        (r"\.query$", "query"),
        (r"\.key$", "key"),
        (r"\.value$", "value"),
        (r"attention\.output\.dense$", "attention output"),
        (r"intermediate\.dense$", "FFN in"),
        (r"\.output\.dense$", "FFN out"),
    ):
        if re.search(pattern, name):
            return role
    return name


def measure(args) -> dict:
    torch.manual_seed(0)
    cfg = compose(args.overrides)
    tokenizer = load_tokenizer(cfg.model)
    model = load_model(cfg.model, cfg.task, int(cfg.train.seed)).eval()
    fit_tokenizer_to_model(tokenizer, model)
    runner = make_task_runner(cfg)
    train_set, _ = runner.build_datasets(tokenizer)
    both = calibration_indices(len(train_set), 2 * args.samples, int(cfg.train.seed))
    generator = torch.Generator().manual_seed(int(cfg.train.seed))
    both = [both[i] for i in torch.randperm(len(both), generator=generator).tolist()]
    collator = runner.collator(tokenizer)

    def batches(indices):
        return list(DataLoader(Subset(train_set, sorted(indices)), batch_size=32, collate_fn=collator))

    where = resolve_targets(model, SparseConfig.from_run_config(cfg.model, cfg.method))
    names = matching_module_names(model, where["targets"], leaves_only=True)
    calibration = layer_inputs(model, names, batches(both[: args.samples]))
    held_out = layer_inputs(model, names, batches(both[args.samples :]))
    per_matrix: dict = {}
    started = time.perf_counter()
    for name in names:
        W = model.get_submodule(name).weight.detach().double()
        X_eval = held_out[name]
        reference = torch.linalg.matrix_norm(X_eval @ W.T)
        for sparsity in args.sparsities:
            for method, pruned in pruned_weights(W, calibration[name], sparsity).items():
                error = float(torch.linalg.matrix_norm(X_eval @ (W - pruned).T) / reference)
                per_matrix.setdefault(f"{sparsity:g}", {}).setdefault(method, {})[name] = round(error, 6)
    seconds = time.perf_counter() - started
    summary = {}
    for sparsity, methods in per_matrix.items():
        for method, errors in methods.items():
            roles: dict[str, list] = {}
            for name, error in errors.items():
                roles.setdefault(role_of(name), []).append(error)
            means = {role: round(sum(v) / len(v), 4) for role, v in roles.items()}
            means[f"all {len(errors)}"] = round(sum(errors.values()) / len(errors), 4)
            summary.setdefault(sparsity, {})[method] = means
    return {
        "command": ("python -m pst_bench.perf.reconstruction " + shlex.join(args.argv)).rstrip(),
        "data_dir": cfg.data.dir,
        "model": cfg.model.name,
        "task": cfg.task.name,
        "calibration_sentences": args.samples,
        "calibration_tokens": int(next(iter(calibration.values())).shape[0]),
        "held_out_tokens": int(next(iter(held_out.values())).shape[0]),
        "matrices": len(names),
        "prune_seconds": round(seconds, 1),
        "summary": summary,
        "per_matrix": per_matrix,
        "versions": library_versions(),
    }


def markdown(report: dict) -> str:
    lines = [
        f"# Layer-wise reconstruction error of one-shot pruning: {report['model']}, {report['task']}",
        "",
        f"Command: `{report['command']}` (data: `{report['data_dir']}`, i.e. `PST_DATA_DIR`)  ",
        f"Each of the {report['matrices']} sparsified matrices pruned alone from the dense model's inputs over "
        f"{report['calibration_tokens']:,} non-padding tokens of {report['calibration_sentences']} training "
        f"sentences; error ‖W·X − W'·X‖_F / ‖W·X‖_F on {report['held_out_tokens']:,} tokens of "
        f"{report['calibration_sentences']} other training sentences, averaged over the 6 blocks per role "
        "(lower is better). No training.",
        "",
    ]
    for sparsity, methods in report["summary"].items():
        roles = list(next(iter(methods.values())))
        lines += [f"## Sparsity {float(sparsity):.0%}", "", "| method | " + " | ".join(roles) + " |"]
        lines.append("|---|" + "---:|" * len(roles))
        for method, means in methods.items():
            lines.append(f"| {method} | " + " | ".join(f"{means[role]:.4f}" for role in roles) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m pst_bench.perf.reconstruction", description=__doc__.split("\n")[0])
    parser.add_argument("overrides", nargs="*", help="Hydra overrides (default model=minilm-l6 task=sst2)")
    parser.add_argument("--samples", type=int, default=128, help="calibration sentences (and as many held out)")
    parser.add_argument("--sparsities", type=float, nargs="+", default=[0.5, 0.9])
    parser.add_argument("--out", type=Path, default=Path("results/perf"))
    parser.add_argument("--name", default="reconstruction")
    args = parser.parse_args(argv)
    args.argv = argv
    report = measure(args)
    atomic_write_text(args.out / f"{args.name}.json", json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    atomic_write_text(args.out / f"{args.name}.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
