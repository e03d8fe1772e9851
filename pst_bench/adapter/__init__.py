"""PST (and MaP, MvP) as a library for any transformers model, in the shape of huggingface/peft.

    from pst_bench.adapter import SparseConfig, SparsityCallback, get_sparse_model, load_sparse_model

``SparseConfig`` says how (method, sparsity, schedule, ranks, patterns, target modules),
``get_sparse_model`` sparsifies a model in place and returns its ``SparseModel`` handle,
``SparsityCallback`` drives the schedule in a ``transformers.Trainer``, ``load_sparse_model``
reattaches a saved adapter. Documentation: ``docs/library.md`` ("PST as a library") and ``docs/api.md``.
"""

from .callback import SparsityCallback
from .config import SparseConfig
from .model import SparseModel, get_sparse_model, load_sparse_model
from .presets import PRESETS

__all__ = ["PRESETS", "SparseConfig", "SparseModel", "SparsityCallback", "get_sparse_model", "load_sparse_model"]
