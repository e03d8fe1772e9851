"""The interface the training loop uses for a task family."""

from __future__ import annotations

from pathlib import Path


class TaskRunner:
    """Data, loss and evaluation for one task family; ``cfg`` is the whole run config."""

    #: whether a larger per-epoch ``main`` value is better (accuracy) or worse (loss)
    higher_is_better: bool = True
    #: the ``model.architecture`` this task family needs (a transformers head)
    architecture: str = ""
    #: models of that architecture that ship with pst-bench, for error messages
    example_models: str = ""

    def __init__(self, cfg):
        self.cfg = cfg

    @property
    def main_name(self) -> str:
        """Name of the per-epoch ``main`` value (the paper's metric for GLUE, dev loss for NLG)."""
        return str(self.cfg.task.metric)

    def build_datasets(self, tokenizer):
        """(train dataset, {eval split: dataset}) ready for ``collator``."""
        raise NotImplementedError

    def collator(self, tokenizer):
        raise NotImplementedError

    def init_head(self, model, train_set) -> None:
        """Adjust the fresh task head from the training data before training (default: nothing)."""

    def loss(self, model, batch):
        raise NotImplementedError

    def evaluate(self, model, loaders: dict, accelerator) -> dict:
        """{split: {metric: value, ..., "main": value}} for the per-epoch record."""
        raise NotImplementedError

    def finish(self, model, tokenizer, accelerator, outputs_prefix: Path) -> dict:
        """Work after training (decoding, test metrics); its result goes into the record."""
        return {}
