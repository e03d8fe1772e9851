"""Compose a command line's overrides before Hydra's app starts, to report a refused one in one line.

Hydra refuses a value of the wrong type (`method.sparsity=abc`), an unknown key (`method.sparsityy=0.5`)
or a missing config with a report of several lines and exit status 1. ``composition_error`` composes
the same config through Hydra's compose API first and returns that report as one line, which the CLI
prints as `pst-bench: error: ...` with status 2 like every other config error.

Under `-m`, each value of each swept key is tried: composition i takes value i of every axis (cycling
the shorter ones), so the longest axis sets the count, capped at ``MAX_TRIALS`` (values past it are
left to Hydra's own checks when their job is composed). Keys under `hydra` (launcher settings) are not
composed here: Hydra checks them itself.

With `--cfg` (`-c`: print the config and exit, Hydra's own flag) the composed config's values are checked
too (``validate.validate_config``: ranges and combinations), so `--cfg job method.sparsity=1.5` is refused
like a run would be. `info=check` (``pst_bench.schema.check``) checks the environment as well.
"""

from __future__ import annotations

from dataclasses import is_dataclass

MAX_TRIALS = 16
_HINT = "Set the environment variable HYDRA_FULL_ERROR"
_APPEND_HINT = "To append to your config use"


def composition_error(
    args: list[str], config_module: str = "pst_bench.conf", config_name: str = "config"
) -> str | None:
    """One line saying why Hydra would refuse to compose `pst-bench <args>`, or None."""
    from hydra import compose, initialize_config_module
    from hydra._internal.utils import get_args_parser
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    parsed = get_args_parser().parse_args(args)
    if (
        parsed.help
        or parsed.hydra_help
        or parsed.shell_completion
        or parsed.config_path
        or parsed.config_name
        or parsed.config_dir
        or parsed.experimental_rerun
    ):
        return None  # not a plain composition of our config: leave it to Hydra
    from ..errors import ConfigError

    try:
        trials = _trials(parsed.overrides, parsed.multirun)
        with initialize_config_module(config_module=config_module, version_base="1.3"):
            for overrides in trials:
                cfg = compose(config_name=config_name, overrides=overrides)
                if parsed.cfg:
                    from .validate import validate_config

                    validate_config(cfg)
    except (HydraException, OmegaConfBaseException) as err:
        return one_line(err)
    except ConfigError as err:
        return str(err)
    return None


def _trials(args: list[str], multirun: bool) -> list[list[str]]:
    """The override lists to compose: one, or under -m one per value of the longest swept axis."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    axes = []
    for override in OverridesParser.create().parse_overrides(args):
        if override.is_hydra_override():
            continue
        if multirun and override.is_discrete_sweep():
            key = override.get_key_element()
            axes.append([f"{key}={value}" for value in override.sweep_string_iterator()])
        else:  # a sweep without -m stays one override: Hydra's "Ambiguous value" is the answer
            axes.append([override.input_line])
    count = min(MAX_TRIALS, max((len(axis) for axis in axes), default=1))
    return [[axis[i % len(axis)] for axis in axes] for i in range(count)]


def one_line(err: BaseException) -> str:
    """Hydra's message with OmegaConf's reason after its first line (the reason's own first line: the
    rest names internal types)."""
    parts = _lines(str(err))
    cause = err.__cause__
    if cause is not None and type(cause).__module__.startswith("omegaconf"):
        reason = getattr(cause, "msg", None) or str(cause)
        parts[0] = f"{parts[0].rstrip('.')}: {reason.splitlines()[0]}"
        if is_dataclass(getattr(cause, "object_type", None)):  # a typed node takes no new key: no `+key`
            parts = [part for part in parts if not part.startswith(_APPEND_HINT)]
    return "; ".join(parts)


def _lines(text: str) -> list[str]:
    """Hydra's lines, without its HYDRA_FULL_ERROR hint. It lists options one per indented line under a
    line that ends in a colon ("Available options in 'sweep':"): those join that line, comma-separated.
    Other indented lines (OmegaConf's full_key, object_type) name internals and are left out."""
    parts: list[str] = []
    listing = False
    for line in text.splitlines():
        if not line.strip() or line.startswith(_HINT):
            continue
        if not line[:1].isspace():
            parts.append(line.strip())
            listing = line.rstrip().endswith(":")
        elif listing:
            separator = " " if parts[-1].endswith(":") else ", "
            parts[-1] += separator + line.strip()
    return parts or [text.strip()]
