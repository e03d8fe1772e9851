"""The committed tables are what `make tables` prints from the committed records, and the README quotes them.

A README number that no command produced is a defect (issue 10: "the numbers in the README are the ones
the commands print"): these tests rebuild `results/tables/` from `results/runs/` and hold the README's
evidence section to the rebuilt files.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pst_bench.report.tables import main as make_tables_main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TABLES = ROOT / "results" / "tables"


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tables")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(ROOT)  # the tables name their inputs by the relative paths `make tables` uses
        assert make_tables_main(["--runs", "results/runs", "--bench", "results/bench", "--out", str(out)]) == 0
    return out


def test_committed_tables_are_what_make_tables_prints(rebuilt):
    committed = {p.name for p in TABLES.iterdir()}
    built = {p.name for p in rebuilt.iterdir()}
    assert built == committed, f"results/tables and a rebuild differ in files {built ^ committed}: run `make tables`"
    stale = [name for name in sorted(built) if (rebuilt / name).read_bytes() != (TABLES / name).read_bytes()]
    assert not stale, f"results/tables/{stale} are not what `make tables` prints from results/runs: run `make tables`"


def _evidence_section() -> list[str]:
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Evidence at CPU scale")
    end = text.index("\n## ", start + 1)
    return text[start:end].splitlines()


def _table_after(lines: list[str], marker: str) -> list[list[str]]:
    """The Markdown table at or after the first line containing `marker`, as rows of cells (header first)."""
    start = next(i for i, line in enumerate(lines) if marker in line)
    rows = []
    for line in lines[start:]:
        if line.startswith("|"):
            if not set(line) <= set("|-: "):
                rows.append(_cells(line))
        elif rows:
            break
    return rows


def _cells(line: str) -> list[str]:
    # `\|` is a literal bar inside a cell (claims 3's "|W|")
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def test_readme_claims_table_is_claims_md():
    readme_rows = _table_after(_evidence_section(), "`results/tables/claims.md` as produced for MiniLM-L6")
    claims_lines = (TABLES / "claims.md").read_text(encoding="utf-8").splitlines()
    produced = _table_after(claims_lines, "## minilm-l6")
    assert readme_rows == produced, "README's claims table is not results/tables/claims.md's: copy it from there"


def test_readme_table2_rows_are_table2_md():
    readme_rows = _table_after(_evidence_section(), "Table 2's MiniLM-L6 rows")
    header, body = readme_rows[0], readme_rows[1:]
    table2 = _table_after((TABLES / "table2.md").read_text(encoding="utf-8").splitlines(), "| Model |")
    columns = table2[0]
    produced = {
        (row[columns.index("Method")], row[columns.index("Sparsity")]): row
        for row in table2[1:]
        if row[columns.index("Model")] == "minilm-l6"
    }
    assert body, "README shows no Table 2 rows"
    for row in body:
        key = (row[header.index("Method")], row[header.index("Sparsity")])
        assert key in produced, f"README's Table 2 row {key} is not in results/tables/table2.md"
        for name, cell in zip(header, row):
            assert cell == produced[key][columns.index(name)], f"README Table 2 {key} {name}: {cell!r}"
