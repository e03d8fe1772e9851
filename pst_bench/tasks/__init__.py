"""What differs between task families (GLUE classification, NLG generation) behind one interface.

The training loop in ``pst_bench.run`` is shared; a task runner supplies the
datasets, the collator, the loss, the per-epoch evaluation and any work at the
end of a run (NLG: beam-search decoding and its metrics). Each runner class also
says which model architecture its task family needs (``TaskRunner.architecture``),
so nothing else tests task kinds.
"""

from __future__ import annotations

import importlib

from ..errors import ConfigError
from .base import TaskRunner

#: task.kind -> "module:class" of its runner (imported on first use: NLG pulls in the metrics).
RUNNERS = {"glue": "pst_bench.tasks.glue:GlueRunner", "nlg": "pst_bench.tasks.nlg:NlgRunner"}


def task_kind(task_cfg) -> str:
    return str(task_cfg.get("kind", "glue"))


def runner_class(kind: str) -> type[TaskRunner]:
    """The runner class of a task family; ConfigError for an unknown ``task.kind``."""
    if kind not in RUNNERS:
        raise ConfigError(f"task.kind={kind!r} is unknown; choose one of {', '.join(RUNNERS)}")
    module, _, name = RUNNERS[kind].partition(":")
    return getattr(importlib.import_module(module), name)


def make_task_runner(cfg) -> TaskRunner:
    return runner_class(task_kind(cfg.task))(cfg)


__all__ = ["RUNNERS", "TaskRunner", "make_task_runner", "runner_class", "task_kind"]
