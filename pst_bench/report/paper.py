"""The paper's tables: their columns and the numbers it printed (``pst_bench/paper/paper_results.csv``).

The columns are the vocabulary every table, the claims and the runs' values share: a GLUE record's
value goes to its task's column (``GLUE``), a generation record's test metrics to ``E2E BLEU``, ...
(``TABLE3_CELLS``). The paper's cells are :class:`PaperCell` objects keyed like our runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

# GLUE config name -> (the paper's column, the metric of that column), in the paper's column order.
GLUE = {
    "mnli": ("MNLI", "accuracy"),
    "qqp": ("QQP", "f1"),
    "qnli": ("QNLI", "accuracy"),
    "sst2": ("SST-2", "accuracy"),
    "cola": ("CoLA", "matthews"),
    "stsb": ("STS-B", "pearson"),
    "mrpc": ("MRPC", "f1"),
    "rte": ("RTE", "accuracy"),
}
GLUE_COLUMNS = tuple(column for column, _ in GLUE.values())
TASK_OF_COLUMN = {column: task for task, (column, _) in GLUE.items()}
TABLE5_COLUMNS = ("QNLI", "SST-2", "CoLA", "STS-B", "MRPC", "RTE")
TABLE4_TASKS = ("mrpc", "sst2")

# NLG: the paper's column names and order (Table 3 prints E2E as BLEU, MET, NIST).
NLG_TASKS = {"e2e": "E2E", "dart": "DART", "webnlg": "WebNLG"}
NLG_METRIC_NAMES = {"bleu": "BLEU", "meteor": "MET", "nist": "NIST", "ter": "TER"}
TABLE3_CELLS = (
    ("e2e", "bleu"),
    ("e2e", "meteor"),
    ("e2e", "nist"),
    ("dart", "bleu"),
    ("dart", "meteor"),
    ("dart", "ter"),
    ("webnlg", "bleu"),
    ("webnlg", "meteor"),
    ("webnlg", "ter"),
)

# The paper's Table 2/3 PST rows use r1 = r2 = 8 (the CSV's r1, r2 columns, selection.PAPER_RANKS);
# its Table 5 PST[mag+ab+rc] row repeats those numbers, and Table 4's (8, 8) cell too.


def nlg_column(task: str, metric: str) -> str:
    """Table 3's column of a generation task's metric: ``E2E BLEU``, ``DART MET``, ..."""
    return f"{NLG_TASKS[task]} {NLG_METRIC_NAMES[metric]}"


def task_column(task: str) -> str:
    """The column a task is named by in the notes: ``SST-2`` for GLUE, ``E2E`` for generation."""
    return GLUE[task][0] if task in GLUE else NLG_TASKS.get(task, task)


@dataclass(frozen=True)
class PaperCell:
    """One number the paper printed, keyed like our runs (model, label, sparsity, ranks, column)."""

    table: int
    model: str
    label: str  # the paper's method label (Fine-tune, MaP, PST[ab], L0-regu, ...)
    elsewhere: bool  # the paper quotes it from prior work (printed with *)
    sparsity: float  # percent
    params: float | None  # the paper's printed trainable parameters (M)
    r1: int | None
    r2: int | None
    value: float
    task: str  # the CSV's task (a GLUE column such as SST-2, or a generation task)
    column: str  # the table's column: the task, Table 3's `E2E BLEU`, Table 4's `r1=8`


def default_paper_csv() -> Path:
    """The paper's numbers shipped inside the package."""
    return Path(str(resources.files("pst_bench.paper").joinpath("paper_results.csv")))


def _rank(value) -> int | None:
    """An r1/r2 cell of the paper CSV (float or NaN) as int or None."""
    return None if value is None or pd.isna(value) else int(value)


def load_paper(path: Path) -> list[PaperCell]:
    """The paper CSV as cells with the same field names and key types as our runs."""
    frame = pd.read_csv(path)
    cells = []
    for row in frame.to_dict("records"):
        table, task, metric = int(row["table"]), str(row["task"]), str(row["metric"])
        r1, r2 = _rank(row["r1"]), _rank(row["r2"])
        if table == 3:
            column = nlg_column(task, metric)
        elif table == 4:
            column = f"r1={r1}"
        else:
            column = task
        cells.append(
            PaperCell(
                table=table,
                model=str(row["model"]),
                label=str(row["method"]),
                elsewhere=bool(row["published_elsewhere"]),
                sparsity=float(row["sparsity"]),
                params=None if pd.isna(row["trainable_params_m"]) else float(row["trainable_params_m"]),
                r1=r1,
                r2=r2,
                value=float(row["value"]),
                task=task,
                column=column,
            )
        )
    return cells
