"""`make gpu-smoke`: every method trains a few real steps in bf16 on the GPU, checked, in about a minute.

    python -m pst_bench.perf.gpu_smoke [--device cuda|cpu] [--methods finetune,map,mvp,pst] [--steps 4]
                                       [--batch-size 16 --seq-length 128 --sparsity 0.9] [Hydra overrides]

For each method: a BERT-base-shaped model with random weights (``model=bert-base model.random_init=true``;
on ``--device cpu`` tiny-bert's shape unless a ``model=`` override says otherwise) trains ``--steps``
optimizer steps (forward under bf16 autocast, backward, clipping, the runner's AdamW) on one random batch,
and the smoke check asserts

- a finite loss at every step (with the method's own loss term: soft movement pruning's penalty);
- the exact sparsity of every mask (each matrix keeps exactly round((1 - p)·n·k) weights; Wanda: within
  one weight per row; soft movement: reported only, its sparsity is an outcome);
- for the one-shot methods (one-shot Wanda, SparseGPT), a calibration on the smoke batch first, timed;
- for PST, the factor gradients (U, V, A, B, R, C of every layer, together) of a bf16 forward/backward
  within ``MODEL_TOLERANCE`` of a float32 forward/backward of the same model on the same batch and masks
  (dropout off for both), as the relative error ‖g_bf16 - g_fp32‖ / ‖g_fp32‖;

and prints one line per method: the median step time after the first step, the peak memory (CUDA:
``max_memory_allocated``; CPU: live tensor bytes, ``pst_bench.perf.memory``), the last loss, the
achieved sparsity and PST's gradient error. Exit status 1 when a check fails.

Without CUDA (and without ``--device cpu``) it says so in one line and exits 0 with nothing run;
``--device cpu`` runs the same checks under CPU bf16 autocast, which is how the tests run it, so that a
dtype error shows on a laptop before it reaches a GPU job.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass, field

import torch

from ..sparsity.mask import kept_count
from ..sparsity.patterns import UNSTRUCTURED

METHODS = ("finetune", "map", "mvp", "pst", "wanda", "wanda_oneshot", "sparsegpt", "soft_mvp")
#: Methods whose every matrix keeps exactly round((1 - p)·n·k) weights at sparsity p; the others are held to
#: their own rule: Wanda (gradual and one-shot) ranks each output row apart (its rows keep equal counts,
#: within one weight a row of the matrix's count), soft movement pruning's sparsity is an outcome of its
#: penalty (reported, not checked)
EXACT_COUNT = ("map", "mvp", "pst", "sparsegpt")
PER_ROW_COUNT = ("wanda", "wanda_oneshot")
DEFAULT_MODEL = {"cuda": "bert-base", "cpu": "tiny-bert"}
MIB = 2**20
#: bf16 against float32 through a whole model (every layer's activations rounded to bf16, not only PST's
#: product): the relative error of PST's factor gradients, all layers together. A single layer's fused
#: backward is held to the tighter ``pst_bench.sparsity.precision.TOLERANCE`` (tests/test_mixed_precision.py).
MODEL_TOLERANCE = 5e-2


@dataclass
class SmokeResult:
    method: str
    losses: list = field(default_factory=list)
    step_times: list = field(default_factory=list)
    peak_bytes: int | None = None
    sparsity: float | None = None
    grad_error: float | None = None
    calibration_s: float | None = None
    failures: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def line(self) -> str:
        timed = self.step_times[1:] or self.step_times
        parts = [
            f"{self.method:<13}",
            f"step {statistics.median(timed):.4f} s" if timed else "step –",
            f"peak {self.peak_bytes / MIB:,.0f} MiB" if self.peak_bytes is not None else "peak –",
            f"loss {self.losses[-1]:.4f}" if self.losses else "loss –",
            f"sparsity {self.sparsity:.4f}" if self.sparsity is not None else "dense",
        ]
        if self.calibration_s is not None:
            parts.append(f"calibration {self.calibration_s:.2f} s")
        if self.grad_error is not None:
            parts.append(f"grad rel. err. vs fp32 {self.grad_error:.2e} (<= {MODEL_TOLERANCE:.0e})")
        parts.append("ok" if self.ok else "FAILED: " + "; ".join(self.failures))
        return "  ".join(parts)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def compose_config(method: str, overrides: list[str]):
    """The run config of one method with random weights (``model.random_init=true``), value-checked."""
    from hydra import compose, initialize_config_module

    from ..schema.validate import validate_config

    with initialize_config_module(config_module="pst_bench.conf", version_base="1.3"):
        cfg = compose(
            config_name="config", overrides=["task=sst2", *overrides, f"method={method}", "model.random_init=true"]
        )
    validate_config(cfg)
    return cfg


def make_batch(cfg, batch_size: int, seq_length: int, vocab_size: int, device: torch.device) -> dict:
    """Random token ids (no padding) and labels of the task's head (a causal LM predicts its input)."""
    from ..tasks import runner_class, task_kind

    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(0, vocab_size, (batch_size, seq_length), generator=generator)
    if runner_class(task_kind(cfg.task)).architecture == "causal_lm":
        labels = input_ids.clone()
    elif cfg.task.is_regression:
        labels = torch.randn(batch_size, generator=generator)
    else:
        labels = torch.randint(0, int(cfg.task.num_labels), (batch_size,), generator=generator)
    batch = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "labels": labels}
    return {key: value.to(device) for key, value in batch.items()}


def build(method: str, overrides: list[str], sparsity: float, device: torch.device):
    """The run config, the sparsified model on ``device`` (train mode), its sparse layers and the runner's AdamW."""
    from ..models.loading import load_model
    from ..models.prepare import prepare_model
    from ..run.optim import make_optimizer
    from ..sparsity.inject import set_sparsity

    cfg = compose_config(method, overrides)
    model = load_model(cfg.model, cfg.task, seed=int(cfg.train.seed))
    layers = prepare_model(model, cfg.model, cfg.method)
    set_sparsity(model, sparsity if layers else 0.0)
    model.to(device).train()
    return cfg, model, layers, make_optimizer(model, layers, cfg)


def check_masks(layers: dict, sparsity: float, result: SmokeResult) -> None:
    """Every unstructured per-matrix mask keeps exactly round((1 - p)·n·k) weights (``EXACT_COUNT``; Wanda:
    within one weight of it per output row)."""
    if not layers:
        return
    kept = total = 0
    for name, layer in layers.items():
        mask = layer.current_mask()
        count, numel = int(torch.count_nonzero(mask)), mask.numel()
        kept, total = kept + count, total + numel
        if layer.pattern is not UNSTRUCTURED or layer.mask_group is not None:
            continue
        expected = kept_count(numel, sparsity)
        slack = mask.shape[0] if result.method in PER_ROW_COUNT else 0  # per-row rounding
        if result.method in (*EXACT_COUNT, *PER_ROW_COUNT) and abs(count - expected) > slack:
            result.failures.append(f"{name} keeps {count} of {numel}, not {expected}")
    result.sparsity = 1.0 - kept / total


def pst_gradient_error(model, layers: dict, batch: dict, dtype: torch.dtype) -> float:
    """‖g - g_fp32‖ / ‖g_fp32‖ over every PST factor gradient: one ``dtype``-autocast and one float32
    forward/backward of the same model on the same batch (eval mode: no dropout; the masks are computed
    once, from float32 scores, and shared)."""
    params = [getattr(layer, name) for layer in layers.values() for name in layer.added_param_names]
    device_type = params[0].device.type
    was_training = model.training
    model.eval()
    grads = []
    for autocast in (True, False):
        model.zero_grad(set_to_none=True)
        with torch.enable_grad(), torch.autocast(device_type, dtype=dtype, enabled=autocast):
            loss = model(**batch).loss
        loss.float().backward()
        grads.append(torch.cat([p.grad.detach().float().reshape(-1) for p in params]))
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    low, full = grads
    return float(torch.linalg.vector_norm(low - full) / torch.linalg.vector_norm(full).clamp_min(1e-30))


def smoke_method(method: str, args, device: torch.device) -> SmokeResult:
    from ..sparsity.inject import method_penalty
    from ..sparsity.oneshot import calibrate_sequentially, one_shot_layers
    from .memory import PeakTensorMemory

    result = SmokeResult(method)
    cfg, model, layers, optimizer = build(method, args.overrides, args.sparsity, device)
    batch = make_batch(cfg, args.batch_size, args.seq_length, int(model.config.vocab_size), device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    max_norm = float(cfg.train.max_grad_norm) if cfg.train.max_grad_norm else None
    dtype = torch.bfloat16

    def step() -> None:
        with torch.autocast(device.type, dtype=dtype):
            loss = model(**batch).loss
            penalty = method_penalty(model)  # soft movement pruning's λ·R(S); None for the others
            loss = loss if penalty is None else loss + penalty
        value = float(loss.detach())
        result.losses.append(value)
        if value != value or abs(value) == float("inf"):
            raise FloatingPointError(f"loss is {value} at step {len(result.losses)}")
        loss.backward()
        if max_norm:
            torch.nn.utils.clip_grad_norm_(trainable, max_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    try:
        calibrated = one_shot_layers(layers)
        if calibrated:  # prune once from the smoke batch, as the runner does from its calibration sequences
            _sync(device)
            started = time.perf_counter()
            inputs = {key: value for key, value in batch.items() if key != "labels"}
            calibrate_sequentially(model, calibrated, [inputs])
            _sync(device)
            result.calibration_s = time.perf_counter() - started
            model.train()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        for _ in range(args.steps):
            _sync(device)
            started = time.perf_counter()
            step()
            _sync(device)
            result.step_times.append(time.perf_counter() - started)
        if device.type == "cuda":
            result.peak_bytes = torch.cuda.max_memory_allocated(device)
        else:  # one more step, counted by tensor storages (slower: not timed)
            tracker = PeakTensorMemory()
            tracker.register(model, optimizer, *batch.values())
            with tracker:
                step()
            result.peak_bytes = tracker.peak_bytes
        check_masks(layers, args.sparsity, result)
        if str(cfg.method.kind) == "pst":
            result.grad_error = pst_gradient_error(model, layers, batch, dtype)
            if not result.grad_error <= MODEL_TOLERANCE:
                result.failures.append(f"PST gradients {result.grad_error:.2e} from fp32 (> {MODEL_TOLERANCE:.0e})")
    except (RuntimeError, FloatingPointError) as err:  # a dtype error, a NaN: this method fails, the others run
        result.failures.append(f"{type(err).__name__}: {str(err).splitlines()[0]}")
    return result


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m pst_bench.perf.gpu_smoke", description=__doc__.split("\n")[0])
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. model=roberta-base method.r1=16")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated subset of {METHODS}")
    parser.add_argument("--steps", type=int, default=4, help="training steps per method (the first is not timed)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: 16 on cuda, 4 on cpu")
    parser.add_argument("--seq-length", type=int, default=None, help="default: 128 on cuda, 32 on cpu")
    parser.add_argument("--sparsity", type=float, default=0.9)
    args = parser.parse_args(argv)
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(args.methods) - set(METHODS))
    if unknown or not args.methods:
        parser.error(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
    if not 0.0 <= args.sparsity < 1.0:
        parser.error(f"--sparsity={args.sparsity} must be in [0, 1)")
    if args.steps < 1:
        parser.error("--steps must be >= 1")
    if not any(o.startswith("model=") for o in args.overrides):
        args.overrides = [f"model={DEFAULT_MODEL[args.device]}", *args.overrides]
    args.batch_size = args.batch_size or (16 if args.device == "cuda" else 4)
    args.seq_length = args.seq_length or (128 if args.device == "cuda" else 32)
    return args


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu-smoke: no CUDA device visible; nothing run (--device cpu runs the checks under CPU bf16 autocast)")
        return 0
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        print(f"gpu-smoke: {torch.cuda.get_device_name()} has no bf16; nothing run")
        return 0
    where = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    model = next(o for o in args.overrides if o.startswith("model=")).split("=", 1)[1]
    print(
        f"gpu-smoke: {where}, bf16 autocast, {model} shape (random weights), batch {args.batch_size} x "
        f"{args.seq_length}, {args.steps} steps, sparsity {args.sparsity}"
    )
    results = []
    for method in args.methods:
        result = smoke_method(method, args, device)
        print(result.line(), flush=True)
        results.append(result)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    failed = [r.method for r in results if not r.ok]
    print(f"gpu-smoke: {'FAILED: ' + ', '.join(failed) if failed else 'all methods passed'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
