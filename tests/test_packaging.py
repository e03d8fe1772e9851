"""The packaging metadata matches the source tree: every package ships, and conf/ ships as pst_bench.conf.

The configs live in the checkout's top-level ``conf/`` and install as the package ``pst_bench.conf``
(``[tool.setuptools.package-dir]``). That mapping needs the package list spelled out in pyproject.toml,
so a new package under pst_bench/ must be added there; this test names the one that is missing.
(tests/test_install.py builds the wheel itself and trains from it.)
"""

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parents[1]


def _setuptools() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_package_of_the_source_tree_is_listed():
    listed = set(_setuptools()["packages"])
    found = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "pst_bench").rglob("__init__.py")}
    found.add("pst_bench.conf")
    assert not found - listed, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(found - listed)}"
    assert not listed - found, f"listed in pyproject.toml but not in the tree: {sorted(listed - found)}"


def test_the_configs_are_the_top_level_conf_folder_installed_as_pst_bench_conf():
    assert _setuptools()["package-dir"] == {"pst_bench.conf": "conf"}
    assert (ROOT / "conf" / "__init__.py").is_file() and (ROOT / "conf" / "config.yaml").is_file()
    assert not (ROOT / "pst_bench" / "conf").exists(), "a pst_bench/conf folder would shadow the top-level conf/"
    data = _setuptools()["package-data"]["pst_bench.conf"]
    shipped = {p.relative_to(ROOT / "conf") for pattern in data for p in (ROOT / "conf").glob(pattern)}
    assert shipped == {p.relative_to(ROOT / "conf") for p in (ROOT / "conf").rglob("*.yaml")}


def test_the_configs_import_as_pst_bench_conf():
    from importlib import resources

    import pst_bench.conf

    assert Path(pst_bench.conf.__file__).parent.name == "conf"
    assert (resources.files("pst_bench.conf") / "method" / "pst.yaml").is_file()
