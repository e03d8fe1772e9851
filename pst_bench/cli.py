"""The `pst-bench` command (a Hydra app).

pst-bench method=pst task=sst2 model=bert-base
pst-bench info=params model=roberta-large method=mvp
pst-bench info=check method=pst task=mnli train.mixed_precision=bf16   # everything a run would refuse, no training
pst-bench -m method=map,mvp,pst task=mrpc,rte        # Hydra multirun
"""

from __future__ import annotations

import logging
import os
import re
import sys
from importlib import resources

import hydra
from omegaconf import DictConfig

from .errors import PstBenchError
from .run.preempt import Preempted

log = logging.getLogger("pst_bench")


def _quiet_libraries() -> None:
    import datasets
    import transformers

    transformers.logging.set_verbosity_error()
    datasets.logging.set_verbosity_error()
    datasets.disable_progress_bars()


CHECKED_GROUPS = ("model", "task", "method", "scale", "experiment", "sweep")
_GROUP_OVERRIDE = re.compile(r"^(?P<group>[a-z_]+)=(?P<value>[\w.,-]+)$")


def available_choices(group: str) -> list[str]:
    folder = resources.files("pst_bench.conf") / group
    return sorted(entry.name[: -len(".yaml")] for entry in folder.iterdir() if entry.name.endswith(".yaml"))


def unknown_choice_message(args: list[str]) -> str | None:
    """One line for the first `group=name` override naming no config (comma lists: multirun)."""
    for arg in args:
        match = _GROUP_OVERRIDE.match(arg)
        if not match or match["group"] not in CHECKED_GROUPS:
            continue
        choices = available_choices(match["group"])
        for value in match["value"].split(","):
            if value not in choices:
                return f"unknown {match['group']} {value!r}; choose one of: {', '.join(choices)}"
    return None


def task_default_model(task: str) -> str | None:
    """The model a task file names as its default (`task.default_model`), e.g. gpt2-medium for NLG."""
    from omegaconf import OmegaConf

    node = OmegaConf.create((resources.files("pst_bench.conf") / "task" / f"{task}.yaml").read_text())
    node = node.get("task", node)  # NLG task files are `# @package _global_` with a `task:` block
    return node.get("default_model")


def with_task_default_model(args: list[str]) -> list[str]:
    """Add `model=<default>` when the task(s) chosen name one and no model was given.

    Hydra cannot choose a config group from inside another group's file, so the
    NLG tasks' default model (GPT-2 medium, as in the paper) is applied here.
    """
    if any(_GROUP_OVERRIDE.match(a) and a.startswith("model=") for a in args):
        return args
    tasks = [a.split("=", 1)[1].split(",") for a in args if a.startswith("task=") and _GROUP_OVERRIDE.match(a)]
    defaults = {task_default_model(t) for group in tasks for t in group}
    if len(defaults) == 1 and None not in defaults:
        return [*args, f"model={defaults.pop()}"]
    return args


def main() -> None:
    """Console entry point: refuse unknown config names and overrides Hydra would refuse, in one line,
    before Hydra's app starts (it would print a report of several lines)."""
    from .schema.precheck import composition_error

    message = unknown_choice_message(sys.argv[1:])
    if message is None:
        sys.argv[1:] = with_task_default_model(sys.argv[1:])
        message = composition_error(sys.argv[1:])
    if message:
        print(f"pst-bench: error: {message}", file=sys.stderr)
        sys.exit(2)
    hydra_main()


@hydra.main(version_base="1.3", config_path="pkg://pst_bench.conf", config_name="config")
def hydra_main(cfg: DictConfig) -> float | None:
    try:
        if cfg.info == "params":
            from .models.params import format_report, parameter_report_for_config
            from .schema.validate import validate_config

            validate_config(cfg)
            print(format_report(cfg, parameter_report_for_config(cfg)))
            return None
        if cfg.info == "check":
            return _check(cfg)
        if cfg.info is not None:
            raise PstBenchError(f"info={cfg.info!r} is unknown; choose info=params or info=check")
        _quiet_libraries()
        from .run.experiment import run_experiment

        record = run_experiment(cfg)
        final = record["final"]
        if int(os.environ.get("RANK", "0")) == 0:  # one summary line per run, not one per process
            print(
                f"{record['run_id']}: {record['main_split']} {record['metric']} = {final['main']:.4f} "
                f"(epoch {final['epoch']}), sparsity {record['sparsity_achieved']['overall']:.4f}, "
                f"{record['params']['trainable_total']:,} trainable parameters"
            )
        return float(final["main"])
    except Preempted as err:  # checkpointed; a requeued job (or a rerun) resumes from it
        print(f"pst-bench: {err}", file=sys.stderr)
        if _in_multirun():
            raise
        sys.exit(err.exit_status)
    except PstBenchError as err:
        print(f"pst-bench: error: {err}", file=sys.stderr)
        if _in_multirun():
            # Let Hydra record this job as failed and go on with the others; the sweep still
            # exits non-zero at the end. Exiting here would drop every job after this one.
            raise
        sys.exit(2)


def _check(cfg: DictConfig) -> None:
    """info=check: one line per problem on stderr (exit status 2), or what was checked (status 0)."""
    from .schema.check import check_config

    report = check_config(cfg)
    if report.ok:
        for note in report.notes:
            print(f"ok  {note}")
        print("pst-bench: check passed (nothing trained)")
        return None
    for problem in report.problems:
        print(f"pst-bench: error: {problem}", file=sys.stderr)
    if _in_multirun():
        raise PstBenchError(f"check found {len(report.problems)} problem(s)")
    sys.exit(2)


def _in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


if __name__ == "__main__":
    main()
