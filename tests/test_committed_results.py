"""The committed tables are what `make tables` prints from the committed records, and the evidence log quotes them.

A number in the evidence log that no command produced is a defect: these tests rebuild `results/tables/` from
`results/runs/` and hold the findings of `results/README.md` (the evidence log) to the files the reports wrote.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pst_bench.report.tables import main as make_tables_main

ROOT = Path(__file__).resolve().parents[1]
EVIDENCE_LOG = ROOT / "results" / "README.md"
TABLES = ROOT / "results" / "tables"
#: what the reports write: the tables and claims, the schedule probe's curves, the step profile
REPORT_FOLDERS = ("results/tables", "results/schedule", "results/perf")
#: sections of the evidence log that state results (the protocol and plan state intentions)
RESULT_SECTIONS = ("Findings",)
NUMBER = re.compile(r"(?<![\w.])[-+−]?(\d+\.\d+)(?![\w.])")


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


def _section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _report_text() -> str:
    files = [p for folder in REPORT_FOLDERS for p in sorted((ROOT / folder).rglob("*")) if p.suffix in (".md", ".csv")]
    return "\n".join(p.read_text(encoding="utf-8") for p in files)


def numbers_not_in_reports(text: str, reports: str) -> list[str]:
    """Decimal numbers of ``text`` that appear in no report file (signs aside: a difference is quoted as +1.23)."""
    return sorted({m.group(1) for m in NUMBER.finditer(text)} - {m.group(1) for m in NUMBER.finditer(reports)})


def test_every_number_in_the_findings_is_in_a_report_file():
    text = EVIDENCE_LOG.read_text(encoding="utf-8")
    findings = "\n".join(_section(text, title) for title in RESULT_SECTIONS)
    missing = numbers_not_in_reports(findings, _report_text())
    assert not missing, f"results/README.md quotes {missing}, which no file under {REPORT_FOLDERS} holds"


def test_the_number_check_would_catch_an_invented_number():
    reports = "| PST | 75.46 [73.62–76.03] |\nPST − MaP +1.92 [−0.40, +4.24]"
    assert numbers_not_in_reports("PST reaches 75.46, +1.92 above MaP (−0.40 to +4.24)", reports) == []
    assert numbers_not_in_reports("PST reaches 75.47", reports) == ["75.47"]
    assert numbers_not_in_reports("version 2.13.0 and 1e-4 are not decimals to check", reports) == []


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


CLAIMS_MARKER = "`results/tables/claims.md` as produced for MiniLM-L6"


def test_a_quoted_claims_table_is_claims_md():
    lines = EVIDENCE_LOG.read_text(encoding="utf-8").splitlines()
    if not any(CLAIMS_MARKER in line for line in lines):
        pytest.skip("the evidence log quotes no claims table yet")
    claims_lines = (TABLES / "claims.md").read_text(encoding="utf-8").splitlines()
    produced = _table_after(claims_lines, "## minilm-l6")
    assert _table_after(lines, CLAIMS_MARKER) == produced, "the quoted claims table is not claims.md's: copy it"
