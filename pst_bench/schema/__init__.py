"""The config schema: types (``structured``) and value checks (``validate``).

Importing this package registers the structured configs with Hydra's ConfigStore; ``pst_bench.conf``
imports it, so every composition of the configs finds them. ``validate`` is imported on its own
(``from pst_bench.schema.validate import validate_config``): it pulls in the task runners.
"""

from .structured import register

register()

__all__ = ["register"]
