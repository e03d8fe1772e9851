"""What differs between task families (GLUE classification, NLG generation) behind one interface.

The training loop in ``pst_bench.train`` is shared; a task runner supplies the
datasets, the collator, the loss, the per-epoch evaluation and any work at the
end of a run (NLG: beam-search decoding and its metrics).
"""

from __future__ import annotations

from .base import TaskRunner


def make_task_runner(cfg) -> TaskRunner:
    kind = cfg.task.get("kind", "glue")
    if kind == "nlg":
        from .nlg import NlgRunner

        return NlgRunner(cfg)
    from .glue import GlueRunner

    return GlueRunner(cfg)


__all__ = ["TaskRunner", "make_task_runner"]
