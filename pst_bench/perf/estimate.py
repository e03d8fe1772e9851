"""What a sweep costs before it runs: training FLOPs per job and GPU-hours at a throughput you give.

    python -m pst_bench.perf.estimate sweep=table2_bert --throughput 50000 [more overrides]

Every job of the sweep (Hydra's basic sweeper expands its grid, the overrides given here apply to each)
trains ``6 × N × T`` FLOPs: N the model's parameters (the dense model; a method's added matrices are not
counted) and T its training tokens, ``examples × mean tokenized length × epochs`` (or ``max_steps ×
batch`` when that is shorter). The examples are the training set (or ``train.max_train_examples`` of
it); the mean length is measured on up to ``SAMPLE`` training examples with the model's tokenizer when
the data is local and the tokenizer loads offline, else the stated default of ``DEFAULT_TRAIN`` (GLUE's
training-set sizes; lengths under bert-base-uncased), clipped at ``task.max_length``.

``--throughput`` is training tokens per second measured (or assumed) on ``--throughput-model``
(default: bert-base); it becomes FLOP/s as ``6 × N_ref × tokens/s``, so a sweep over several model sizes
is estimated with one number (``--flops`` gives FLOP/s directly). The result is an estimate: it leaves
out evaluation, padding (the batch's longest example sets its width unless ``train.group_by_length``)
and the masks' top-k selection of the sparse methods, so a real run takes longer; measure the
throughput on your GPU with a short run (``train.max_steps``) and rerun the estimate with it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass

log = logging.getLogger(__name__)

#: task -> (training examples, mean tokens per example) when the data is not local: the training-set
#: sizes of nyu-mll/glue; the lengths are bert-base-uncased token counts with [CLS]/[SEP], rounded.
DEFAULT_TRAIN = {
    "mnli": (392_702, 40),
    "qqp": (363_846, 30),
    "qnli": (104_743, 50),
    "sst2": (67_349, 13),
    "cola": (8_551, 11),
    "stsb": (5_749, 31),
    "mrpc": (3_668, 53),
    "rte": (2_490, 70),
}
SAMPLE = 2000  # training examples tokenized to measure the mean length


@dataclass
class JobEstimate:
    overrides: list[str]
    run: str  # task / model / method / sparsity
    params: int
    examples: int
    mean_tokens: float
    length_source: str  # "measured" | "default"
    epochs: float
    tokens: float
    flops: float
    hours: float


def sweep_jobs(sweep: str, extra: list[str]) -> list[list[str]]:
    """The override lists Hydra's basic sweeper makes of ``-m sweep=<sweep> <extra>``."""
    from hydra import compose, initialize_config_module
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    with initialize_config_module(config_module="pst_bench.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"sweep={sweep}"], return_hydra_config=True)
    grid = {str(k): str(v) for k, v in (cfg.hydra.sweeper.params or {}).items()}
    for item in extra:  # a comma list given here is one more axis, as on the pst-bench command line
        key, _, value = item.partition("=")
        grid[key] = value
    parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in grid.items()])
    return BasicSweeper.split_arguments(parsed, None)[0]


def compose_jobs(sweep: str | None, jobs: list[list[str]]) -> list:
    from hydra import compose, initialize_config_module

    head = [f"sweep={sweep}"] if sweep else []
    with initialize_config_module(config_module="pst_bench.conf", version_base="1.3"):
        return [compose(config_name="config", overrides=head + list(job)) for job in jobs]


def model_params(cfg) -> int:
    """Parameters of the dense model (from its ``arch`` on the meta device: nothing is downloaded)."""
    from ..models.loading import meta_model

    return sum(p.numel() for p in meta_model(cfg.model, cfg.task).parameters())


def _measured_length(cfg) -> tuple[int, float] | None:
    """(training examples, mean tokens) from local data and an offline tokenizer, else None."""
    from ..data.source import configured_dir

    if cfg.task.get("kind", "glue") != "glue" or configured_dir(cfg.data) is None:
        return None
    try:
        from ..data.glue import load_glue_splits
        from ..models.loading import load_tokenizer

        train = load_glue_splits(cfg.task, cfg.data, ["train"])["train"]
        tokenizer = load_tokenizer(cfg.model)
    except Exception as err:  # no local files for this task, no tokenizer offline: the default it is
        log.info("%s: mean length not measured (%s)", cfg.task.name, str(err).splitlines()[0] if str(err) else err)
        return None
    step = max(1, len(train) // SAMPLE)
    sample = train.select(range(0, len(train), step))
    fields = [str(f) for f in cfg.task.text_fields]
    texts = [sample[f] for f in fields]
    encoded = tokenizer(*texts, truncation=True, max_length=int(cfg.task.max_length))["input_ids"]
    return len(train), sum(len(ids) for ids in encoded) / max(1, len(encoded))


def training_tokens(cfg, measure: bool = True) -> tuple[int, float, str, float, float]:
    """(examples, mean tokens, "measured" | "default", epochs, training tokens) of one config."""
    measured = _measured_length(cfg) if measure else None
    if measured is not None:
        examples, mean, source = measured[0], measured[1], "measured"
    else:
        name = str(cfg.task.name)
        if name not in DEFAULT_TRAIN:
            raise SystemExit(
                f"estimate: no local data for task {name} and no default size for it; give data.dir "
                f"(or add it to pst_bench.perf.estimate.DEFAULT_TRAIN)"
            )
        examples, mean = DEFAULT_TRAIN[name]
        source = "default"
    mean = min(float(mean), float(cfg.task.get("max_length") or mean))
    if cfg.train.max_train_examples:
        examples = min(examples, int(cfg.train.max_train_examples))
    seen = examples * float(cfg.train.epochs)
    if cfg.train.max_steps:  # the steps stop it first when they hold fewer examples
        seen = min(seen, int(cfg.train.max_steps) * int(cfg.train.batch_size) * int(cfg.train.grad_accum_steps))
    return examples, mean, source, seen / examples, seen * mean


def estimate(sweep: str | None, extra: list[str], flops_per_s: float, measure: bool = True) -> list[JobEstimate]:
    """One ``JobEstimate`` per job of ``sweep`` (or the single run ``extra`` describes)."""
    jobs = sweep_jobs(sweep, extra) if sweep else [list(extra)]
    params_of: dict[tuple, int] = {}
    tokens_of: dict[tuple, tuple] = {}
    out = []
    for job, cfg in zip(jobs, compose_jobs(sweep, jobs)):
        model = str(cfg.model.name)
        head = (model, int(cfg.task.get("num_labels") or 0))  # the task head is part of the model
        if head not in params_of:
            params_of[head] = model_params(cfg)
        key = (model, str(cfg.task.name), cfg.train.max_train_examples, cfg.train.epochs, cfg.train.max_steps)
        key += (cfg.train.batch_size, cfg.train.grad_accum_steps)
        if key not in tokens_of:
            tokens_of[key] = training_tokens(cfg, measure)
        examples, mean, source, epochs, tokens = tokens_of[key]
        flops = 6.0 * params_of[head] * tokens
        run = f"{cfg.task.name} {model} {cfg.method.name} p{round(float(cfg.method.sparsity) * 100)}"
        out.append(
            JobEstimate(
                job, run, params_of[head], examples, mean, source, epochs, tokens, flops, flops / flops_per_s / 3600
            )
        )
    return out


def reference_flops_per_s(tokens_per_s: float, model: str) -> float:
    """FLOP/s of a GPU that trains ``model`` at ``tokens_per_s`` (6 × N × tokens/s)."""
    (cfg,) = compose_jobs(None, [[f"model={model}"]])
    return 6.0 * model_params(cfg) * tokens_per_s


def format_table(jobs: list[JobEstimate], flops_per_s: float, note: str) -> str:
    lines = [
        f"# Estimate ({note}; {flops_per_s:.3g} FLOP/s): 6 x params x training tokens, training only",
        "| job | params | train examples | mean tokens | epochs | training tokens | PFLOP | GPU-hours |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for j in jobs:
        length = f"{j.mean_tokens:.1f}" + ("" if j.length_source == "measured" else " (default)")
        lines.append(
            f"| {j.run} | {j.params / 1e6:.1f}M | {j.examples:,} | {length} | {j.epochs:g} | {j.tokens:.3g} "
            f"| {j.flops / 1e15:,.1f} | {j.hours:.2f} |"
        )
    total = sum(j.hours for j in jobs)
    longest = max((j.hours for j in jobs), default=0.0)
    lines.append(
        f"\n{len(jobs)} jobs: {sum(j.flops for j in jobs) / 1e18:.2f} EFLOP, {total:.1f} GPU-hours in total, "
        f"the longest job {longest:.2f} h"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pst_bench.perf.estimate",
        description="GPU-hours of a sweep (or one run) from 6 x params x training tokens and a throughput.",
    )
    parser.add_argument("overrides", nargs="*", help="sweep=<name> and any Hydra overrides (comma lists: axes)")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--throughput", type=float, help="training tokens/s on --throughput-model")
    group.add_argument("--flops", type=float, help="sustained training FLOP/s of the GPU")
    parser.add_argument("--throughput-model", default="bert-base", help="the model --throughput was measured on")
    parser.add_argument("--no-measure", action="store_true", help="use the default lengths even with local data")
    args = parser.parse_args(argv)
    sweep = next((o.split("=", 1)[1] for o in args.overrides if o.startswith("sweep=")), None)
    extra = [o for o in args.overrides if not o.startswith("sweep=")]
    if args.flops is not None:
        flops_per_s, note = args.flops, "FLOP/s given"
    else:
        flops_per_s = reference_flops_per_s(args.throughput, args.throughput_model)
        note = f"{args.throughput:,.0f} training tokens/s on {args.throughput_model}"
    jobs = estimate(sweep, extra, flops_per_s, measure=not args.no_measure)
    print(format_table(jobs, flops_per_s, note))
    return 0


if __name__ == "__main__":
    sys.exit(main())
