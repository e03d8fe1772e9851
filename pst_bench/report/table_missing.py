"""The paper's cells no run fills: ``tableN_missing.csv`` (with the command that fills each) and the
"Missing" list of ``tableN.md``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields

import pandas as pd

from .cells import ELSEWHERE_MARK, fmt_paper, fmt_sparsity
from .labels import method_of_label
from .paper import TASK_OF_COLUMN, PaperCell
from .runs import Run
from .table_specs import Observation, PaperIndex, Spec


@dataclass(frozen=True)
class MissingCell:
    """One line of ``tableN_missing.csv``: a paper cell of a model we ran, with no run."""

    table: int
    model: str
    paper_model: str
    method: str
    sparsity: str  # `90%`
    task: str
    r1: object  # Table 4 only, else ""
    r2: object
    column: str
    paper: str  # the paper's number as printed
    published_elsewhere: bool
    command: str  # the pst-bench command that fills it


MISSING_COLUMNS = [f.name for f in fields(MissingCell)]


def missing_scope(
    spec: Spec, runs: list[Run], obs: pd.DataFrame, index: PaperIndex, all_paper_models: set[str]
) -> set[str]:
    """The models whose missing paper cells a table lists.

    Those with a row in the table, plus those with any record of its task family that the
    paper ran in this table or that the paper never ran (stand-ins for its reference model).
    RoBERTa with only Table 2 runs is not asked for the BERT-base-only Tables 4 and 5.
    """
    family = {run.model for run in runs if run.family == spec.family}
    eligible = {m for m in family if m in index.models or m not in all_paper_models}
    return set(obs["model"]) | eligible


def missing_command(spec: Spec, model: str, cell: PaperCell) -> str:
    """The pst-bench command that would fill a missing paper cell."""
    method = method_of_label(cell.label)
    task = TASK_OF_COLUMN.get(cell.task, cell.task)
    parts = ["pst-bench", f"model={model}", f"task={task}", f"method={method}"]
    if method != "finetune":
        parts.append(f"method.sparsity={cell.sparsity / 100:g}")
    if spec.number == 4:
        parts += [f"method.r1={cell.r1}", f"method.r2={cell.r2}"]
    return " ".join(parts)


def find_missing(
    spec: Spec,
    index: PaperIndex,
    obs: pd.DataFrame,
    scope: list[str],
    pending: Iterable[tuple[str, Observation]] = (),
) -> pd.DataFrame:
    """Every paper cell (of a method pst-bench runs, not Avg.) that no run of a scoped model fills.

    Scoped models are those with any record of the table's task family, so a model with
    GLUE runs but no rank runs still lists the whole Table 4 grid. A held-out cell still waiting
    for its held-out seeds (``pending`` (model, observation) pairs) is named in the notes, not here.
    """
    have = {(ob["model"], *(ob[f] for f in spec.match), ob["column"]) for ob in obs.to_dict("records")}
    have |= {(model, *(ob.get(f) for f in spec.match), ob.column) for model, ob in pending}
    lines = []
    for model in scope:
        pm = index.model_for(model)
        for cell in index.cells:
            if cell.model != pm or cell.column == "Avg." or method_of_label(cell.label) is None:
                continue
            if (model, *(getattr(cell, f) for f in spec.match), cell.column) in have:
                continue
            lines.append(
                MissingCell(
                    table=spec.number,
                    model=model,
                    paper_model=pm,
                    method=cell.label,
                    sparsity=fmt_sparsity(cell.sparsity),
                    task=cell.task,
                    r1="" if cell.r1 is None or spec.number != 4 else cell.r1,
                    r2="" if cell.r2 is None or spec.number != 4 else cell.r2,
                    column=cell.column,
                    paper=fmt_paper(cell.value, cell.elsewhere),
                    published_elsewhere=cell.elsewhere,
                    command=missing_command(spec, model, cell),
                )
            )
    return pd.DataFrame([vars(line) for line in lines], columns=MISSING_COLUMNS)


def missing_lines(spec: Spec, scope: list[str], missing: pd.DataFrame) -> list[str]:
    """The Markdown "Missing" list: the missing paper cells grouped by row (the commands are in the CSV)."""
    number = spec.number
    if not scope:
        return [f"No {spec.family.upper()} runs, so no paper cells are listed."]
    if not len(missing):
        return ["None: every paper cell of the models we ran has a run."]
    lines = [
        f"{len(missing)} paper cell{'s' if len(missing) != 1 else ''} of the models we ran have no "
        f"run here; the command for each is in `table{number}_missing.csv`.",
        "",
    ]
    group_fields = (
        ["model", "paper_model", "method", "sparsity", "task", "r2"]
        if number == 4
        else ["model", "paper_model", "method", "sparsity"]
    )
    for key, group in missing.groupby(group_fields, sort=False):
        values = dict(zip(group_fields, key))
        head = f"{values['model']} (paper {values['paper_model']}), {values['method']} {values['sparsity']}"
        if number == 4:
            head += f", {values['task']}, r2={values['r2']}"
        columns = [f"{c}{ELSEWHERE_MARK}" if e else c for c, e in zip(group["column"], group["published_elsewhere"])]
        lines.append(f"- {head}: {', '.join(columns)}")
    if number == 2:
        lines += ["", "The paper's L0-regu row (quoted from prior work, not implemented here) is not listed."]
    return lines
