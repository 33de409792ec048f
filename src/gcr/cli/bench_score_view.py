"""Tables for ``gcr bench score``: the benchmark's own breakdown per set, and the published figures."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text


def _num(value: Any, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _gedit_table(name: str, report: dict[str, Any]) -> list[Table]:
    tables = []
    for language, block in report.items():
        table = Table(title=f"GEdit-Bench-{language.upper()} · {name}", title_justify="left")
        for column in ("task type", "SC", "PQ", "O", "n"):
            table.add_column(column, justify="left" if column == "task type" else "right")
        for task_type, g in block["groups"].items():
            table.add_row(
                Text(task_type), _num(g["semantics"]), _num(g["quality"]), _num(g["overall"]), str(g["n"])
            )
        average = block.get("average") or {}
        table.add_row(
            Text("average", style="bold"),
            _num(average.get("semantics")),
            _num(average.get("quality")),
            _num(average.get("overall")),
            str(block["items"]),
        )
        tables.append(table)
    return tables


def _imgedit_table(name: str, report: dict[str, Any]) -> list[Table]:
    table = Table(title=f"ImgEdit-Bench · {name}", title_justify="left")
    table.add_column("edit type")
    table.add_column("score", justify="right")
    table.add_column("n", justify="right")
    for edit_type, t in report["types"].items():
        table.add_row(Text(edit_type), _num(t["score"], 2), str(t["n"]))
    table.add_row(Text("overall", style="bold"), _num(report.get("overall"), 2), str(report["items"]))
    return [table]


def _show(console: Console, table: Table) -> None:
    # Piped output is never wrapped or cut: give the table all the width it asks for.
    for column in table.columns:
        column.no_wrap = True
    console.print(table, width=None if console.is_terminal else 10_000)


def render_scores(console: Console, summary: dict[str, Any]) -> None:
    """Print each set's breakdown, then ours beside the paper's Fig. 1 figures."""
    for name, block in summary["sets"].items():
        maker = _gedit_table if summary["benchmark"] == "gedit" else _imgedit_table
        for table in maker(name, block["report"]):
            _show(console, table)
    published = summary.get("published") or {}
    paper = published.get("published")
    table = Table(title=f"Headline figure · judge {summary['judge']}", title_justify="left")
    for column in ("", "round 0", "final", "baseline"):
        table.add_column(column, justify="right" if column else "left")
    ours = published.get("ours") or {}
    table.add_row(
        "gcr (this run)", _num(ours.get("round0")), _num(ours.get("final")), _num(ours.get("baseline"))
    )
    if paper:
        table.add_row(Text(f"paper ({paper['judge']}, {paper['generator']})"),
                      _num(paper["round0"], 2), _num(paper["final"], 2), "—")  # fmt: skip
    _show(console, table)
