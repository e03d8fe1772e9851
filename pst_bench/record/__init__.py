"""The results record: the one owner of what a finished run writes and what reports read from it
(``format``: the schema and its check; ``identity``: the run id; ``write``: ``build_record``;
``run_record``: ``RunRecord`` and the loaders).

A run writes one JSON record at its end (``build_record``, then
``files.write_json_atomic``). Reports never parse the JSON themselves: they call
``load_records`` (or ``load_record``), which validates each file and hands back a
``RunRecord``, and they read values only through its properties:

- identity: ``task``, ``model``, ``method`` (the config name), ``seed``, ``sparsity``;
- what the method computes, whatever its name (``computation``: ``pst`` and
  ``pst_mag_ab_rc`` are one), and its ranks;
- ``setting``: every other setting that can change the result (learning rate,
  epochs, data subset, ...), so that a report can tell a hyperparameter grid from
  repeated seeds (see ``pst_bench.report.selection``);
- the values: ``dev_value`` (the task's main dev metric at the best epoch of the final
  30% window, else the final epoch: the authors' selection rule), ``dev_metric`` for a
  named metric, ``test_metrics`` for the generation tasks.

Files that are not a usable record are skipped with a ``RecordSkipped`` warning that
names the file and says why (missing keys by name, a status other than finished, ...).
"""

from .format import FINISHED, READABLE_SCHEMAS, REQUIRED_KEYS, SCHEMA_VERSION, RecordError, RecordSkipped, validate
from .identity import config_hash, identity_config, run_id
from .run_record import (
    ACHIEVED_SPARSITY_TOLERANCE,
    BUDGET_KEYS,
    CONSTANT_CLASS_SHARE,
    CONSTANT_STD_RATIO,
    SUBSET_KEYS,
    RunRecord,
    as_record,
    iter_record_files,
    load_record,
    load_records,
)
from .write import build_record, git_state, library_versions, read_record

__all__ = [
    "ACHIEVED_SPARSITY_TOLERANCE",
    "BUDGET_KEYS",
    "CONSTANT_CLASS_SHARE",
    "CONSTANT_STD_RATIO",
    "FINISHED",
    "READABLE_SCHEMAS",
    "REQUIRED_KEYS",
    "SCHEMA_VERSION",
    "SUBSET_KEYS",
    "RecordError",
    "RecordSkipped",
    "RunRecord",
    "as_record",
    "build_record",
    "config_hash",
    "git_state",
    "identity_config",
    "iter_record_files",
    "library_versions",
    "load_record",
    "load_records",
    "read_record",
    "run_id",
    "validate",
]
