"""Sparse wrappers around a linear layer: MaP, MvP and PST.

Each wrapper holds the original layer as ``base_layer`` (like peft's LoRA
layers), names the parameters it adds in ``added_param_names``, and computes
its effective weight ``W' = W ⊙ M`` with ``M = top-v(S)``.

The binary mask is cached and recomputed only when the inputs of the score
change or when the target sparsity changes. A change is detected through the
parameters' in-place version counters and a count of optimizer steps
(``optimizer_steps``): fused optimizer kernels (``AdamW(fused=True)``,
transformers' ``adamw_torch_fused``) update parameters without moving their
version counters, and every ``torch.optim`` step moves the count. So the mask
is computed once per optimizer step, shared by every micro-batch of that step,
and reused by a whole evaluation pass. Under ``torch.no_grad`` the masked
weight itself is cached as well, so evaluation costs a dense linear layer.

PST's hand-written forward and backward (and the plain Eq. 7 they are tested
against) live in ``pst_autograd``. Under autocast (mixed precision) every mask is
chosen from float32 scores and the masked weight is built in the parameters'
dtype; only the product with the activations runs in bf16 / fp16 (``precision``).
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

from ..methods.pst import SCORE_TERMS
from .mask import StraightThroughMask, kept_count
from .patterns import UNSTRUCTURED, MatrixPattern
from .precision import SCORE_DTYPE, autocast_dtype, autocast_off
from .pst_autograd import PSTLinear, PSTMaskedWeight

_optimizer_steps = 0


def _count_optimizer_step(optimizer, args, kwargs) -> None:
    global _optimizer_steps
    _optimizer_steps += 1


# every torch.optim optimizer's step, in this process: a fused kernel's update moves no version counter
register_optimizer_step_post_hook(_count_optimizer_step)


def optimizer_steps() -> int:
    """How many optimizer steps this process has taken (any ``torch.optim`` optimizer): part of every cache
    key of a sparse layer, so a mask and a cached evaluation weight never outlive a step."""
    return _optimizer_steps


class SparseLinear(nn.Module):
    """Base class: a linear layer whose weight is masked by the top-v of a score."""

    method: str = ""
    #: Parameters this wrapper adds next to ``base_layer`` (the only ones PST trains there).
    added_param_names: tuple[str, ...] = ()
    #: The added parameters that only shape the importance score (``method.score_lr`` applies to them).
    score_param_names: tuple[str, ...] = ()
    #: Buffers that hold the method's state (activation statistics, a mask chosen once): checkpoints and
    #: ``SparseModel.save_pretrained`` keep them beside the trained parameters.
    state_buffer_names: tuple[str, ...] = ()

    def __init__(self, base_layer: nn.Linear):
        super().__init__()
        if not isinstance(base_layer, nn.Linear):
            raise TypeError(f"{type(self).__name__} wraps nn.Linear, got {type(base_layer).__name__}")
        self.base_layer = base_layer
        self.sparsity = 0.0
        self.final_sparsity = 0.0  # the method's target (``method.sparsity``), set by ``inject.sparsify``
        #: Which weights go together (``patterns``); ``mask_group`` is set when masks are chosen
        #: across layers (``method.scope=global`` or ``pattern=units``, see ``allocation``).
        self.pattern: MatrixPattern = UNSTRUCTURED
        self.mask_group = None
        self._mask: torch.Tensor | None = None
        self._mask_key: tuple | None = None
        self._eval_weight: torch.Tensor | None = None
        self._eval_key: tuple | None = None
        self.mask_computations = 0  # how often the top-v ran; tests and the benchmark read it
        self.mask_seconds = 0.0  # host time spent computing masks (the benchmark's mask share)

    # -- shapes -----------------------------------------------------------------
    @property
    def weight_shape(self) -> tuple[int, int]:
        return tuple(self.base_layer.weight.shape)

    @property
    def kept(self) -> int:
        """Weights an unstructured mask of this matrix alone keeps at the current sparsity."""
        n, k = self.weight_shape
        return kept_count(n * k, self.sparsity)

    # -- what subclasses define -------------------------------------------------
    def importance_scores(self) -> torch.Tensor:
        """The score S whose top-v is kept (may be computed without grad)."""
        raise NotImplementedError

    @torch.no_grad()
    def scores_for_mask(self) -> torch.Tensor:
        """S as the mask is chosen from it: float32 (``SCORE_DTYPE``), computed with autocast off."""
        with autocast_off(self.base_layer.weight.device.type):
            return self.importance_scores().to(SCORE_DTYPE)

    def score_inputs(self) -> list[torch.Tensor]:
        """Tensors S depends on: a change of any of them invalidates the mask."""
        raise NotImplementedError

    def weight_inputs(self) -> list[torch.Tensor]:
        """Tensors the effective weight depends on besides the mask (by default the base weight alone)."""
        return [self.base_layer.weight]

    def masked_weight(self, mask: torch.Tensor) -> torch.Tensor:
        """W ⊙ M with the autograd path this method trains through."""
        raise NotImplementedError

    @torch.no_grad()
    def dense_weight(self) -> torch.Tensor:
        """The unmasked weight W the mask is applied to (by default the base layer's own)."""
        return self.base_layer.weight.detach()

    # -- mask caching -----------------------------------------------------------
    @staticmethod
    def _versions(tensors: list[torch.Tensor]) -> tuple:
        """What says the tensors may have changed: their version counters, and the optimizer steps taken."""
        return (optimizer_steps(), tuple((id(t), t._version) for t in tensors))

    def current_mask(self) -> torch.Tensor:
        """Boolean mask for the current sparsity, recomputed only when its inputs changed."""
        if self.mask_group is not None:
            self.mask_group.refresh()  # sets this layer's _mask with every other member's
            return self._mask
        key = (self.sparsity, self._versions(self.score_inputs()))
        if self._mask is None or key != self._mask_key:
            started = time.perf_counter()
            self._mask = None  # free the old mask before the new one is built
            with torch.no_grad():
                self._mask = self.select_mask(self.scores_for_mask())
            self._mask_key = key
            self.mask_computations += 1
            self.mask_seconds += time.perf_counter() - started
        return self._mask

    def select_mask(self, scores: torch.Tensor) -> torch.Tensor:
        """The mask of this matrix chosen alone: the pattern's top units at the current sparsity."""
        return self.pattern.mask(scores, self.sparsity)

    def penalty(self) -> torch.Tensor | None:
        """A term the method adds to the training loss (soft movement's L1 on its scores); None for most."""
        return None

    @torch.no_grad()
    def score_term_norms(self) -> dict[str, float]:
        """Frobenius norms of the score's terms, for the diagnostics (``sparsity.diagnostics``): |W| by
        default; a method with other terms names its own."""
        return {"mag": float(torch.linalg.matrix_norm(self.base_layer.weight))}

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        mask = self.current_mask()
        if torch.is_grad_enabled():
            self._eval_weight = None  # parameters are about to change: drop the eval copy
            weight = self.masked_weight(mask)
        else:
            key = (self._mask_key, self._versions(self.weight_inputs()))
            if self._eval_weight is None or key != self._eval_key:
                # in the parameters' dtype whether or not autocast is on: the cache serves both
                with autocast_off(inputs.device.type):
                    self._eval_weight = self.masked_weight(mask).detach()
                self._eval_key = key
            weight = self._eval_weight
        return F.linear(inputs, weight, self.base_layer.bias)  # autocast (if on) casts here

    # -- export -----------------------------------------------------------------
    @torch.no_grad()
    def merged_weight(self) -> torch.Tensor:
        """W* = M ⊙ W, the weight a plain nn.Linear gets at export."""
        return self.dense_weight() * self.current_mask()

    @torch.no_grad()
    def merge(self) -> nn.Linear:
        """A plain nn.Linear carrying the sparse weight W* and the original bias."""
        base = self.base_layer
        linear = nn.Linear(
            base.in_features,
            base.out_features,
            bias=base.bias is not None,
            device=base.weight.device,
            dtype=base.weight.dtype,
        )
        linear.weight.copy_(self.merged_weight())
        if base.bias is not None:
            linear.bias.copy_(base.bias)
        return linear

    @torch.no_grad()
    def achieved_sparsity(self) -> float:
        mask = self.current_mask()
        return 1.0 - float(mask.sum()) / mask.numel()

    def extra_repr(self) -> str:
        n, k = self.weight_shape
        structure = "" if self.pattern is UNSTRUCTURED else f", pattern={self.pattern!r}"
        structure += "" if self.mask_group is None else f", scope={self.mask_group.scope}"
        return f"method={self.method}, shape=({n}, {k}), sparsity={self.sparsity:.4f}{structure}"


class MagnitudeSparseLinear(SparseLinear):
    """MaP: S = |W|, W trained densely; pruned weights get no gradient."""

    method = "map"

    def importance_scores(self) -> torch.Tensor:
        return self.base_layer.weight.abs()

    def score_inputs(self) -> list[torch.Tensor]:
        return [self.base_layer.weight]

    def masked_weight(self, mask: torch.Tensor) -> torch.Tensor:
        return self.base_layer.weight * mask


class MovementSparseLinear(SparseLinear):
    """MvP: one trainable score per weight, initialised to |W| (as the paper's Table 2).

    Through the straight-through estimator dL/dS = dL/dW' ⊙ W, so gradient
    descent accumulates S = |W0| - lr·Σ (dL/dW' ⊙ W), the movement score of Eq. 3.
    """

    method = "mvp"
    added_param_names = ("mask_scores",)
    score_param_names = ("mask_scores",)

    def __init__(self, base_layer: nn.Linear):
        super().__init__(base_layer)
        self.mask_scores = nn.Parameter(base_layer.weight.detach().abs().clone())

    def importance_scores(self) -> torch.Tensor:
        return self.mask_scores

    def score_inputs(self) -> list[torch.Tensor]:
        return [self.mask_scores]

    def masked_weight(self, mask: torch.Tensor) -> torch.Tensor:
        return self.base_layer.weight * StraightThroughMask.apply(self.mask_scores, mask)

    @torch.no_grad()
    def score_term_norms(self) -> dict[str, float]:
        return {"mvp": float(torch.linalg.matrix_norm(self.mask_scores))}  # its one score matrix


class PSTSparseLinear(SparseLinear):
    """PST: frozen W0, trainable low-rank update U·V and importance model A·B, R, C.

    S = [|W0 + β·U·V|] + [α1·A·B] + [α2·(R + C)], each bracketed term optional
    (the paper's Table 5 ablation). U and A are Gaussian, V, B, R, C zero (as
    the authors do), so the first mask is the magnitude mask of W0.
    """

    method = "pst"

    def __init__(
        self,
        base_layer: nn.Linear,
        r1: int = 8,
        r2: int = 8,
        alpha1: float = 1.0,
        alpha2: float = 1.0,
        beta: float = 1.0,
        score_terms=SCORE_TERMS,
    ):
        super().__init__(base_layer)
        unknown = set(score_terms) - set(SCORE_TERMS)
        if unknown or not score_terms:
            terms = ", ".join(SCORE_TERMS)
            raise ValueError(f"score_terms must be a non-empty subset of {terms}; got {list(score_terms)}")
        n, k = self.weight_shape
        weight = base_layer.weight
        factory = {"device": weight.device, "dtype": weight.dtype}
        self.r1, self.r2 = int(r1), int(r2)
        self.alpha1, self.alpha2, self.beta = float(alpha1), float(alpha2), float(beta)
        self.use_magnitude = "mag" in score_terms
        self.U = nn.Parameter(torch.randn(n, self.r2, **factory))
        self.V = nn.Parameter(torch.zeros(self.r2, k, **factory))
        names = ["U", "V"]
        if "ab" in score_terms:
            self.A = nn.Parameter(torch.randn(n, self.r1, **factory))
            self.B = nn.Parameter(torch.zeros(self.r1, k, **factory))
            names += ["A", "B"]
        else:
            self.A = self.B = None
        if "rc" in score_terms:
            self.R = nn.Parameter(torch.zeros(n, **factory))
            self.C = nn.Parameter(torch.zeros(k, **factory))
            names += ["R", "C"]
        else:
            self.R = self.C = None
        self.added_param_names = tuple(names)
        self.score_param_names = tuple(name for name in names if name not in ("U", "V"))
        base_layer.weight.requires_grad_(False)

    @property
    def score_terms(self) -> tuple[str, ...]:
        terms = ("mag",) if self.use_magnitude else ()
        terms += ("ab",) if self.A is not None else ()
        return terms + (("rc",) if self.R is not None else ())

    @torch.no_grad()
    def score_term_norms(self) -> dict[str, float]:
        """‖β·U·V‖ and each present term's norm: ‖|W0 + β·U·V|‖, ‖α1·A·B‖, ‖α2·(R + C)‖."""
        norms = {"uv": float(torch.linalg.matrix_norm(self.beta * (self.U @ self.V)))}
        if self.use_magnitude:
            norms["mag"] = float(torch.linalg.matrix_norm(self.dense_weight()))  # ‖|X|‖ = ‖X‖
        if self.A is not None:
            norms["ab"] = float(torch.linalg.matrix_norm(self.alpha1 * (self.A @ self.B)))
        if self.R is not None:
            norms["rc"] = float(torch.linalg.matrix_norm(self.alpha2 * (self.R.unsqueeze(1) + self.C.unsqueeze(0))))
        return norms

    @torch.no_grad()
    def dense_weight(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """W = W0 + β·U·V in ``dtype`` (default: the parameters'), with autocast off."""
        w0 = self.base_layer.weight
        dtype = dtype or w0.dtype
        with autocast_off(w0.device.type):
            return torch.addmm(w0.to(dtype), self.U.to(dtype), self.V.to(dtype), alpha=self.beta)

    @torch.no_grad()
    def importance_scores(self) -> torch.Tensor:
        """S in float32 (``SCORE_DTYPE``) whatever the parameters' dtype, with autocast off."""
        n, k = self.weight_shape
        w = self.base_layer.weight
        with autocast_off(w.device.type):
            scores = (
                self.dense_weight(SCORE_DTYPE).abs_() if self.use_magnitude else w.new_zeros(n, k, dtype=SCORE_DTYPE)
            )
            if self.A is not None:
                scores.addmm_(self.A.to(SCORE_DTYPE), self.B.to(SCORE_DTYPE), alpha=self.alpha1)
            if self.R is not None:
                rows, cols = self.R.to(SCORE_DTYPE).unsqueeze(1), self.C.to(SCORE_DTYPE).unsqueeze(0)
                scores.add_(rows, alpha=self.alpha2).add_(cols, alpha=self.alpha2)
        return scores

    def score_inputs(self) -> list[torch.Tensor]:
        return [self.base_layer.weight] + [getattr(self, name) for name in self.added_param_names]

    def weight_inputs(self) -> list[torch.Tensor]:
        return [self.base_layer.weight, self.U, self.V]

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if not torch.is_grad_enabled():
            return super().forward(inputs)  # the cached eval weight
        mask = self.current_mask()
        self._eval_weight = None
        # under autocast: W' in the parameters' dtype, its product with x in autocast's (pst_autograd)
        compute_dtype = autocast_dtype(inputs.device.type)
        w0, bias = self.base_layer.weight, self.base_layer.bias
        return PSTLinear.apply(inputs, w0, bias, *self._factor_args(mask), compute_dtype)

    def masked_weight(self, mask: torch.Tensor) -> torch.Tensor:
        return PSTMaskedWeight.apply(self.base_layer.weight, *self._factor_args(mask))

    def _factor_args(self, mask: torch.Tensor) -> tuple:
        """The arguments that follow W0 (and the bias) in every function of pst_autograd."""
        return (
            self.U,
            self.V,
            self.A,
            self.B,
            self.R,
            self.C,
            mask,
            self.beta,
            self.alpha1,
            self.alpha2,
            self.use_magnitude,
        )

    def extra_repr(self) -> str:
        return (
            super().extra_repr() + f", r1={self.r1}, r2={self.r2}, alpha1={self.alpha1}, "
            f"alpha2={self.alpha2}, beta={self.beta}, score_terms={'+'.join(self.score_terms)}"
        )


def num_added_params(layer: SparseLinear) -> int:
    return sum(math.prod(getattr(layer, name).shape) for name in layer.added_param_names)
