"""The Hydra configs (YAML), shipped as a package and composed through ``pkg://pst_bench.conf``.

The folder is the checkout's top-level ``conf/``; pyproject.toml maps the package ``pst_bench.conf`` to it
(``[tool.setuptools.package-dir]``), so a regular install and an editable one both find it there.

Every composition imports this package first (Hydra reads the files through it), so importing the
schema here registers the structured configs the YAML files extend before any defaults list is read.
"""

from .. import schema  # noqa: F401  (registers pst_bench.schema.structured in Hydra's ConfigStore)
