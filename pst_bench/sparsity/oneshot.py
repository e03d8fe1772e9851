"""Prune once, before fine-tuning, from calibration batches: the layer and the sequential calibration.

A ``OneShotSparseLinear`` has no mask until it is calibrated. ``calibrate_sequentially`` then goes
through the model's transformer blocks in order: for block b it runs the calibration batches through
the model (blocks before b already pruned, so their outputs, not the dense model's, are block b's
inputs; the forward stops as soon as every sparse layer of block b has run), each layer of block b
gathers its input statistic over the non-padding tokens (``activations``) and prunes itself from it
(``prune_from``: Wanda's score, SparseGPT's OBS updates), then block b + 1 follows. This is the
sequential layer-by-layer procedure of SparseGPT (Frantar & Alistarh, 2023) and Wanda (Sun et al., 2023):
within a block every layer sees the block's unpruned inputs; across blocks the pruned outputs feed on.
A block is the module path up to its layer index (``encoder.layer.3``, ``transformer.h.3``,
``model.layers.3``); it needs no knowledge of any architecture's block signature, at the cost of
re-running the earlier (already pruned) blocks for every block: (B + 1) / 2 forward passes of the
calibration set for B blocks.

After calibration the mask is a buffer (``frozen_mask``) that never changes: fine-tuning trains the
kept weights densely (the pruned ones get no gradient through W ⊙ M), as the papers' recovery
fine-tuning does. A forward before calibration is an error that says how to calibrate.
"""

from __future__ import annotations

import contextlib
import re
import time

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .activations import select_tokens
from .layers import SparseLinear

#: the block of a layer: its module path up to the first layer index ("bert.encoder.layer.3")
_BLOCK = re.compile(r"^(.*?\.\d+)(?:\.|$)")


class NotCalibrated(ConfigError):
    """A one-shot layer ran before its mask was chosen."""


class OneShotSparseLinear(SparseLinear):
    """A mask chosen once from calibration data (``calibrate_sequentially``), then fixed.

    Subclasses say which statistic they gather (``new_statistic``) and how they prune from it
    (``prune_from``, at ``self.sparsity`` and ``self.pattern``; it may update the base weight).
    """

    state_buffer_names = ("frozen_mask", "calibrated")
    collects_inputs = True

    def __init__(self, base_layer: nn.Linear, calibration_samples: int = 128):
        super().__init__(base_layer)
        n, k = self.weight_shape
        device = base_layer.weight.device
        self.calibration_samples = int(calibration_samples)
        self.register_buffer("frozen_mask", torch.ones(n, k, dtype=torch.bool, device=device))
        self.register_buffer("calibrated", torch.zeros((), dtype=torch.bool, device=device))
        self.token_mask = None  # set by get_sparse_model (activations.install_token_mask)
        self._statistic = None  # gathering: this layer's block is being calibrated
        self._passthrough = False  # a later block during calibration: dense
        self._flag_key = None
        self._flag = False

    # -- what subclasses define -------------------------------------------------
    def new_statistic(self):
        raise NotImplementedError

    def prune_from(self, statistic) -> torch.Tensor:
        """The boolean mask (True = kept) chosen from the gathered statistic."""
        raise NotImplementedError

    # -- calibration ------------------------------------------------------------
    @property
    def is_calibrated(self) -> bool:
        key = (id(self.calibrated), self.calibrated._version)  # no device sync once known
        if key != self._flag_key:
            self._flag, self._flag_key = bool(self.calibrated), key
        return self._flag

    def start_gathering(self) -> None:
        self._statistic = self.new_statistic()

    @torch.no_grad()
    def finish_calibration(self, name: str = "") -> int:
        """Prune from the gathered statistic and fix the mask; returns the tokens it saw."""
        statistic, self._statistic = self._statistic, None
        if statistic is None or statistic.tokens == 0:
            raise ConfigError(f"calibration saw no input of sparse layer {name or self!r}: is it used by the model?")
        self.frozen_mask.copy_(self.prune_from(statistic))
        self.calibrated.fill_(True)
        self._mask = self._eval_weight = None
        return statistic.tokens

    # -- the fixed mask ---------------------------------------------------------
    def current_mask(self) -> torch.Tensor:
        if not self.is_calibrated:
            raise NotCalibrated(
                f"{self.method} prunes once from calibration data and has not been calibrated: call "
                "SparseModel.calibrate(batches) before training (the runner does it before the first step)"
            )
        self._mask_key = ("calibrated", self.frozen_mask._version)
        self._mask = self.frozen_mask
        return self.frozen_mask

    def score_inputs(self) -> list[torch.Tensor]:
        return [self.frozen_mask]

    def masked_weight(self, mask: torch.Tensor) -> torch.Tensor:
        return self.base_layer.weight * mask

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if self._statistic is not None:
            self._statistic.add(select_tokens(inputs, self.token_mask))
            return F.linear(inputs, self.base_layer.weight, self.base_layer.bias)
        if self._passthrough:
            return F.linear(inputs, self.base_layer.weight, self.base_layer.bias)
        return super().forward(inputs)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", calibration_samples={self.calibration_samples}"


def block_groups(names) -> list[list[str]]:
    """Layer names grouped by transformer block, blocks in the order their first layer comes."""
    groups: dict[str, list[str]] = {}
    for name in names:
        match = _BLOCK.match(name)
        groups.setdefault(match.group(1) if match else name, []).append(name)
    return list(groups.values())


class _BlockDone(Exception):
    """Raised by a forward hook once every layer of the block being calibrated has run."""


@torch.no_grad()
def calibrate_sequentially(model: nn.Module, layers: dict, batches: list[dict]) -> dict:
    """Calibrate every one-shot layer of ``model`` block by block (see the module docstring).

    ``layers``: {name: OneShotSparseLinear} in model order; ``batches``: model inputs (dicts of tensors on
    the model's device, no labels). Returns what a record keeps: seconds, samples, tokens, blocks."""
    started = time.perf_counter()
    groups = block_groups(layers)
    was_training = model.training
    model.eval()
    for layer in layers.values():
        layer._passthrough = True
    tokens = 0
    try:
        for group in groups:
            members = [layers[name] for name in group]
            fired: set[int] = set()
            size = len(members)

            def stop_after_block(module, args, output, fired=fired, size=size):
                fired.add(id(module))
                if len(fired) == size:
                    raise _BlockDone

            handles = [layer.register_forward_hook(stop_after_block) for layer in members]
            for layer in members:
                layer.start_gathering()
            try:
                for batch in batches:
                    fired.clear()
                    with contextlib.suppress(_BlockDone):
                        model(**batch)
            finally:
                for handle in handles:
                    handle.remove()
            for name, layer in zip(group, members):
                seen = layer.finish_calibration(name)
                layer._passthrough = False
            tokens = tokens or seen
    finally:
        for layer in layers.values():
            layer._passthrough = False
            layer._statistic = None
        model.train(was_training)
    return {
        "seconds": round(time.perf_counter() - started, 3),
        "samples": sum(int(next(iter(batch.values())).shape[0]) for batch in batches),
        "tokens": int(tokens),
        "blocks": len(groups),
    }


def one_shot_layers(layers: dict) -> dict:
    return {name: layer for name, layer in layers.items() if isinstance(layer, OneShotSparseLinear)}
