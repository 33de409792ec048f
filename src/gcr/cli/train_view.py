"""Rendering shared by the ``gcr train`` commands: progress bars, key/value tables, problem lists, JSON."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from gcr.cli.console import console, err_console, plain


@contextmanager
def progress_bar(label: str, show: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A ``(done, total)`` callback that drives a transient bar on stderr; None when not ``show``."""
    if not show:
        yield None
        return
    columns = (
        TextColumn("{task.description}", style="bold", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def print_json(data: Any) -> None:
    console.out(json.dumps(data, indent=2, default=str), highlight=False)


def kv_table(title: str, rows: Iterable[tuple[str, Any]]) -> Table:
    """A two-column table; floats are shown as percentages. The title is plain text (it may hold paths)."""
    table = Table(title=Text(title), show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, f"{value:.1%}" if isinstance(value, float) else str(value))
    return table


def print_problems(problems: list[str], limit: int = 20) -> None:
    """The first ``limit`` problems, one a line, and how many more there are."""
    for line in problems[:limit]:
        console.print(plain("  ", ("✗", "red"), f" {line}"), highlight=False)
    if len(problems) > limit:
        console.print(f"  … and {len(problems) - limit} more (use --json for all)")
