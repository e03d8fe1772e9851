"""The precision rule of the sparse layers under mixed precision (autocast).

- **Masks** are chosen from float32 scores computed with autocast off (``SCORE_DTYPE``), whatever the
  autocast dtype and the dtype the parameters are stored in: a top-v over bf16 scores (8 bits of
  mantissa) ties far more often, and which weights tie would then depend on the precision.
- **The masked weight** W' = (W0 + β·U·V) ⊙ M is built in the parameters' dtype (float32 for a
  float32 model), also with autocast off; only the matrix product with the activations runs in the
  autocast dtype, as autocast runs ``nn.Linear``.
- **PST's factor gradients** (U, V, A, B, R, C) are computed in the parameters' dtype from the
  weight gradient G = dL/dW', which the autocast-dtype product gives (as it does for ``nn.Linear``).

``tests/test_mixed_precision.py`` holds the fused backward under bf16 and fp16 autocast to the
float32 reference within ``TOLERANCE`` (relative error in the Frobenius norm).
"""

from __future__ import annotations

import contextlib

import torch

#: The dtype every importance score is computed in before its top-v is taken.
SCORE_DTYPE = torch.float32

#: Largest relative error (‖x - x_ref‖ / ‖x_ref‖) of PST's output and gradients under autocast
#: against the float32 reference on the same batch and mask: a few units of the dtype's rounding
#: (bf16: 2^-8 ≈ 3.9e-3, fp16: 2^-11 ≈ 4.9e-4), summed over products of a few hundred terms.
TOLERANCE = {torch.bfloat16: 2e-2, torch.float16: 4e-3}


def autocast_dtype(device_type: str) -> torch.dtype | None:
    """The dtype autocast computes matrix products in on this device type, or None when it is off."""
    if torch.amp.is_autocast_available(device_type) and torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return None


def autocast_off(device_type: str):
    """A context where autocast is off for this device type (a no-op where autocast does not exist)."""
    if torch.amp.is_autocast_available(device_type):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()


def relative_error(value: torch.Tensor, reference: torch.Tensor) -> float:
    """‖value - reference‖ / ‖reference‖ in float64 (0 when both are zero)."""
    value, reference = value.detach().double(), reference.detach().double()
    scale = float(torch.linalg.vector_norm(reference))
    error = float(torch.linalg.vector_norm(value - reference))
    return error / scale if scale else error
