"""Progress display that suits where the output goes.

In a terminal, rich's live bar. Elsewhere (a CI log, ``| tee``) a bar cannot be
redrawn: rich would print its last frame, bar glyphs and all, once at the end.
:class:`LineProgress` prints a plain line at every tenth of the work instead, so a
log shows how far a long job got and when.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import Progress, ProgressColumn
from rich.text import Text


class LineProgress:
    """The part of :class:`rich.progress.Progress` the CLI uses, as plain log lines.

    A line (``label: done/total (pct%) status, elapsed``) is printed each time another
    tenth of the total is done, and once at the end if the last one was not printed.
    ``status`` fields may hold rich markup written by the CLI itself; only its text is shown.
    """

    def __init__(self, console: Console, label: str, *, steps: int = 10) -> None:
        self.console = console
        self.label = label
        self.steps = steps
        self._tasks: dict[int, dict[str, Any]] = {}
        self._started = time.perf_counter()

    def add_task(self, description: str, total: float | None = None, **fields: Any) -> int:
        task_id = len(self._tasks)
        self._tasks[task_id] = {"total": total, "done": 0.0, "shown": None, "fields": dict(fields)}
        return task_id

    def update(
        self,
        task_id: int,
        *,
        advance: float | None = None,
        completed: float | None = None,
        total: float | None = None,
        **fields: Any,
    ) -> None:
        task = self._tasks[task_id]
        if total is not None:
            task["total"] = total
        if completed is not None:
            task["done"] = completed
        if advance is not None:
            task["done"] += advance
        task["fields"].update(fields)
        if task["total"]:
            tenth = int(self.steps * task["done"] / task["total"])
            shown = task["shown"]
            if shown is None or tenth > int(self.steps * shown / task["total"]):
                self._show(task)

    def start(self) -> None:
        self._started = time.perf_counter()

    def stop(self) -> None:
        for task in self._tasks.values():
            if task["total"] and task["shown"] != task["done"]:
                self._show(task)

    def __enter__(self) -> LineProgress:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _show(self, task: dict[str, Any]) -> None:
        task["shown"] = task["done"]
        done, total = task["done"], task["total"]
        line = f"{self.label}: {done:g}/{total:g} ({100 * done / total:.0f}%)"
        status = task["fields"].get("status")
        if status:
            line += " " + Text.from_markup(str(status)).plain
        line += f", {time.perf_counter() - self._started:.0f} s"
        self.console.print(Text(line), highlight=False)


def progress_display(
    console: Console, label: str, *columns: str | ProgressColumn, disable: bool = False
) -> Progress | LineProgress:
    """A live rich bar with ``columns`` in a terminal; :class:`LineProgress` lines elsewhere."""
    if console.is_terminal or disable:
        return Progress(*columns, console=console, disable=disable, transient=False)
    return LineProgress(console, label)
