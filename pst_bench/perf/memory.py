"""Peak tensor memory of a piece of code, on any device, the CPU included.

PyTorch reports peak memory only for CUDA (``torch.cuda.max_memory_allocated``).
The benchmark needs the same figure on CPU for several models in one process,
so this counts tensor storages directly: a ``TorchDispatchMode`` sees every
tensor an operator creates, and a weak-reference finalizer sees each storage
freed. Tensors that exist before tracking starts (parameters, optimizer state,
cached masks) are registered explicitly with :meth:`PeakTensorMemory.register`.

What is counted is the bytes of live tensor storages, the quantity
``max_memory_allocated`` reports on CUDA; allocator caching and fragmentation
are not part of it. The dispatch mode costs Python time per operator, so
measure memory in a separate pass from timing.
"""

from __future__ import annotations

import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class PeakTensorMemory(TorchDispatchMode):
    """``with PeakTensorMemory() as mem: ...`` then ``mem.peak_bytes`` (and ``mem.live_bytes``)."""

    def __init__(self):
        super().__init__()
        self.live_bytes = 0
        self.peak_bytes = 0
        self._tracked: dict[int, weakref.ref] = {}  # id(storage) -> weak reference to it

    # -- bookkeeping ------------------------------------------------------------
    def _track_storage(self, storage: torch.UntypedStorage) -> None:
        key = id(storage)
        ref = self._tracked.get(key)
        if ref is not None and ref() is storage:
            return  # a view or an in-place result of a storage already counted
        nbytes = storage.nbytes()
        self._tracked[key] = weakref.ref(storage)
        weakref.finalize(storage, self._release, key, nbytes)
        self.live_bytes += nbytes
        self.peak_bytes = max(self.peak_bytes, self.live_bytes)

    def _release(self, key: int, nbytes: int) -> None:
        self._tracked.pop(key, None)
        self.live_bytes -= nbytes

    def _track(self, tensor) -> None:
        # a sparse tensor has no storage of its own: its index and value tensors are counted instead
        if isinstance(tensor, torch.Tensor) and tensor.device.type != "meta" and tensor.layout == torch.strided:
            self._track_storage(tensor.untyped_storage())

    def register(self, *objects) -> None:
        """Count tensors that already exist: tensors, modules (parameters, gradients, buffers and
        tensor attributes such as cached masks) and optimizers (their state)."""
        for obj in objects:
            if isinstance(obj, torch.Tensor):
                self._track(obj)
            elif isinstance(obj, torch.nn.Module):
                for module in obj.modules():
                    for tensor in (*module._parameters.values(), *module._buffers.values()):
                        if tensor is not None:
                            self._track(tensor)
                            self._track(tensor.grad)
                    for value in vars(module).values():
                        self._track(value)
            elif isinstance(obj, torch.optim.Optimizer):
                for state in obj.state.values():
                    for value in state.values():
                        self._track(value)
            else:
                raise TypeError(f"cannot register {type(obj).__name__}")

    def reset_peak(self) -> None:
        self.peak_bytes = self.live_bytes

    # -- the dispatch hook --------------------------------------------------------
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in tree_flatten(out)[0]:
            self._track(tensor)
        return out
