"""PST's fused autograd functions against the plain reference of Eq. 7 (ordinary autograd ops).

Every score-term subset, with and without a bias, in float64 so that the two computations (which
round differently) agree to assert_close's float64 tolerance. The mask is piecewise constant in the
scores, so torch.autograd.gradcheck's finite differences cannot see the straight-through gradient:
the reference's autograd is the oracle instead.
"""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from pst_bench.sparsity.mask import kept_count, topv_mask
from pst_bench.sparsity.pst_autograd import (
    PSTLinear,
    PSTMaskedWeight,
    reference_pst_linear,
    reference_pst_scores,
    reference_pst_weight,
)

TERMS = ("mag", "ab", "rc")
TERM_SUBSETS = [subset for size in (1, 2, 3) for subset in itertools.combinations(TERMS, size)]
FACTOR_NAMES = ("U", "V", "A", "B", "R", "C")
BETA, ALPHA1, ALPHA2 = 0.9, 0.7, 1.3
ROWS, COLS, R1, R2 = 6, 5, 2, 3


def _tensors(terms, with_bias: bool, seed: int = 0) -> dict:
    """W0 (frozen), the input x, the bias and the factors of the score terms in use; the rest None.

    Every factor is Gaussian (not the zero init), so every gradient is non-trivial.
    """
    generator = torch.Generator().manual_seed(seed)
    normal = lambda *shape: torch.randn(*shape, generator=generator, dtype=torch.float64)  # noqa: E731
    tensors = dict.fromkeys(FACTOR_NAMES)
    tensors.update(
        w0=normal(ROWS, COLS),
        x=normal(2, 4, COLS),
        U=normal(ROWS, R2),
        V=normal(R2, COLS),
        bias=normal(ROWS) if with_bias else None,
    )
    if "ab" in terms:
        tensors.update(A=normal(ROWS, R1), B=normal(R1, COLS))
    if "rc" in terms:
        tensors.update(R=normal(ROWS), C=normal(COLS))
    return tensors


def _trainable_copy(tensors: dict) -> dict:
    """Fresh leaves, so the fused and the reference computations accumulate separate gradients."""
    return {
        name: None if tensor is None else tensor.clone().requires_grad_(name != "w0")
        for name, tensor in tensors.items()
    }


def _factor_args(leaves: dict, mask_or_keep, terms) -> tuple:
    """The arguments after W0 (and the bias), in pst_autograd's order."""
    return (*(leaves[name] for name in FACTOR_NAMES), mask_or_keep, BETA, ALPHA1, ALPHA2, "mag" in terms)


def _mask(tensors: dict, terms, keep: int) -> torch.Tensor:
    """The top-v mask of the scores, as the layer computes it before calling the fused functions."""
    weight = tensors["w0"] + BETA * tensors["U"] @ tensors["V"]
    scores = reference_pst_scores(
        weight, tensors["A"], tensors["B"], tensors["R"], tensors["C"], ALPHA1, ALPHA2, "mag" in terms
    )
    return topv_mask(scores, keep)


def _fused_output(function: str, leaves: dict, mask: torch.Tensor, terms) -> torch.Tensor:
    if function == "PSTLinear":
        return PSTLinear.apply(leaves["x"], leaves["w0"], leaves["bias"], *_factor_args(leaves, mask, terms))
    masked = PSTMaskedWeight.apply(leaves["w0"], *_factor_args(leaves, mask, terms))
    return F.linear(leaves["x"], masked, leaves["bias"])


def _gradients(output: torch.Tensor, leaves: dict, upstream: torch.Tensor) -> dict:
    names = [name for name, t in leaves.items() if t is not None and t.requires_grad]
    grads = torch.autograd.grad(output, [leaves[name] for name in names], upstream)
    return dict(zip(names, grads))


@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("terms", TERM_SUBSETS, ids="+".join)
@pytest.mark.parametrize("function", ["PSTLinear", "PSTMaskedWeight"])
def test_fused_function_equals_the_reference_in_value_and_every_gradient(function, terms, with_bias):
    tensors = _tensors(terms, with_bias)
    keep = kept_count(ROWS * COLS, 0.5)
    fused, reference = _trainable_copy(tensors), _trainable_copy(tensors)
    fused_out = _fused_output(function, fused, _mask(tensors, terms, keep), terms)
    reference_out = reference_pst_linear(
        reference["x"], reference["w0"], reference["bias"], *_factor_args(reference, keep, terms)
    )
    torch.testing.assert_close(fused_out, reference_out)

    upstream = torch.randn(fused_out.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    fused_grads = _gradients(fused_out, fused, upstream)
    reference_grads = _gradients(reference_out, reference, upstream)
    expected_names = {"x", "U", "V"} | ({"bias"} if with_bias else set())
    expected_names |= {"A", "B"} if "ab" in terms else set()
    expected_names |= {"R", "C"} if "rc" in terms else set()
    assert set(fused_grads) == set(reference_grads) == expected_names
    for name, grad in fused_grads.items():
        torch.testing.assert_close(grad, reference_grads[name], msg=lambda m, name=name: f"{name}: {m}")


def test_pst_linear_factor_gradients_without_an_input_gradient():
    """The first sparsified layer of a frozen model gets an input that needs no gradient: the backward
    skips dL/dx and the factor gradients are unchanged."""
    terms = TERMS
    tensors = _tensors(terms, with_bias=True)
    keep = kept_count(ROWS * COLS, 0.7)
    fused, reference = _trainable_copy(tensors), _trainable_copy(tensors)
    for leaves in (fused, reference):
        leaves["x"].requires_grad_(False)
    fused_out = _fused_output("PSTLinear", fused, _mask(tensors, terms, keep), terms)
    reference_out = reference_pst_linear(
        reference["x"], reference["w0"], reference["bias"], *_factor_args(reference, keep, terms)
    )
    upstream = torch.ones_like(fused_out)
    fused_grads = _gradients(fused_out, fused, upstream)
    reference_grads = _gradients(reference_out, reference, upstream)
    assert "x" not in fused_grads and set(fused_grads) == set(reference_grads)
    for name, grad in fused_grads.items():
        torch.testing.assert_close(grad, reference_grads[name], msg=lambda m, name=name: f"{name}: {m}")


def test_reference_masked_weight_keeps_the_top_v_entries_of_w():
    tensors = _tensors(TERMS, with_bias=False)
    keep = kept_count(ROWS * COLS, 0.6)
    masked = reference_pst_weight(tensors["w0"], *_factor_args(tensors, keep, TERMS))
    weight = tensors["w0"] + BETA * tensors["U"] @ tensors["V"]
    mask = _mask(tensors, TERMS, keep)
    assert int(mask.sum()) == keep
    assert torch.equal(masked != 0, mask)
    torch.testing.assert_close(masked, weight * mask)
