"""User-facing errors.

Anything the user can fix (a bad override, a missing data folder, a malformed
line) raises a ``PstBenchError``; the CLI prints its message as one line and
exits with status 2 instead of dumping a traceback.
"""


class PstBenchError(Exception):
    """An error caused by the user's input or environment, with a fix in its message."""


class ConfigError(PstBenchError):
    """An impossible or unknown configuration value."""


class DataError(PstBenchError):
    """Data that cannot be found or parsed."""


class ModelLoadError(PstBenchError):
    """Model weights or tokenizer that cannot be found."""


class TrainingDiverged(PstBenchError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""
