"""``SparsityCallback``: the cubic schedule inside a stock ``transformers.Trainer``.

The Trainer owns the loop; the callback sets the scheduled sparsity before every optimizer step (all
micro-batches of a step share its mask), after every step (so an evaluation sees the sparsity of the step
reached) and at the end of training,
exactly where pst-bench's own loop (``pst_bench.run.loop``) sets it.
"""

from __future__ import annotations

from transformers import TrainerCallback

from .model import SparseModel


class SparsityCallback(TrainerCallback):
    """Drive ``sparse_model``'s sparsity from the Trainer's step: ``Trainer(..., callbacks=[SparsityCallback(m)])``.

    ``total_steps`` defaults to the Trainer's ``max_steps`` (known once training begins).
    """

    def __init__(self, sparse_model: SparseModel, total_steps: int | None = None):
        self.sparse_model = sparse_model
        self.total_steps = total_steps
        self.schedule = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.schedule = self.sparse_model.schedule(int(self.total_steps or state.max_steps))
        self._apply(state.global_step)

    def on_step_begin(self, args, state, control, **kwargs):
        self._apply(state.global_step)

    def on_step_end(self, args, state, control, **kwargs):
        # global_step already counts this step: an evaluation that follows sees the next step's sparsity,
        # as it does in pst-bench's loop
        self._apply(state.global_step)

    def on_train_end(self, args, state, control, **kwargs):
        self._apply(state.global_step)

    def _apply(self, step: int) -> None:
        if self.schedule is not None:
            self.sparse_model.set_sparsity(self.schedule(step))
