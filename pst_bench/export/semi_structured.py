"""N:M models on sparse tensor cores: merged 2:4 weights as PyTorch's semi-structured sparse tensors.

``torch.sparse.to_sparse_semi_structured`` stores a 2:4 weight as its kept half plus metadata and runs
the matmul on the sparse tensor cores of NVIDIA GPUs of compute capability 8.0 and newer (A100, H100,
...), in float16 or bfloat16. Elsewhere (any CPU, older GPUs) there is no such kernel:
``semi_structured_support`` says why, and ``to_semi_structured`` refuses with that reason.

Only the linear layers whose weight is exactly 2:4 along the input dimension are converted; the
others (embeddings, the task head, layers outside the sparse targets) stay dense.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import PstBenchError


def semi_structured_support(device) -> tuple[bool, str]:
    """(available, reason) for 2:4 semi-structured kernels on ``device``."""
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return False, f"2:4 semi-structured kernels need a CUDA GPU of compute capability >= 8.0; this is {device}"
    major, minor = torch.cuda.get_device_capability(device)
    if major < 8:
        return False, f"2:4 semi-structured kernels need compute capability >= 8.0; this GPU has {major}.{minor}"
    return True, f"compute capability {major}.{minor}"


def is_two_four(weight: torch.Tensor) -> bool:
    """Every run of 4 consecutive weights along the input dimension has at most 2 non-zeros."""
    if weight.dim() != 2 or weight.shape[1] % 4:
        return False
    return bool(((weight.reshape(weight.shape[0], -1, 4) != 0).sum(dim=-1) <= 2).all())


@torch.no_grad()
def to_semi_structured(model: nn.Module, device="cuda", dtype=torch.float16) -> list[str]:
    """Move ``model`` to ``device`` in ``dtype`` and give every 2:4 linear weight the semi-structured
    layout (in place); returns the converted layer names. Refuses where no kernel exists."""
    available, reason = semi_structured_support(device)
    if not available:
        raise PstBenchError(reason)
    from torch.sparse import to_sparse_semi_structured

    model.to(device=device, dtype=dtype)
    converted = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and is_two_four(module.weight):
            module.weight = nn.Parameter(to_sparse_semi_structured(module.weight.detach()), requires_grad=False)
            converted.append(name)
    return converted
