"""The `pst-bench` command (a Hydra app).

    pst-bench method=pst task=sst2 model=bert-base
    pst-bench info=params model=roberta-large method=mvp
    pst-bench -m method=map,mvp,pst task=mrpc,rte        # Hydra multirun
"""

from __future__ import annotations

import logging
import sys

import hydra
from omegaconf import DictConfig

from .errors import PstBenchError

log = logging.getLogger("pst_bench")


def _quiet_libraries() -> None:
    import datasets
    import transformers

    transformers.logging.set_verbosity_error()
    datasets.logging.set_verbosity_error()
    datasets.disable_progress_bars()


@hydra.main(version_base="1.3", config_path="pkg://pst_bench.conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    try:
        if cfg.info == "params":
            from .params import format_report, parameter_report_for_config
            from .prepare import validate_config

            validate_config(cfg)
            print(format_report(cfg, parameter_report_for_config(cfg)))
            return None
        if cfg.info is not None:
            raise PstBenchError(f"info={cfg.info!r} is unknown; the choice is info=params")
        _quiet_libraries()
        from .train import run_experiment

        record = run_experiment(cfg)
        final = record["final"]
        print(f"{record['run_id']}: {record['main_split']} {record['metric']} = {final['main']:.4f} "
              f"(epoch {final['epoch']}), sparsity {record['sparsity_achieved']['overall']:.4f}, "
              f"{record['params']['trainable_total']:,} trainable parameters")
        return float(final["main"])
    except PstBenchError as err:
        print(f"pst-bench: error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
