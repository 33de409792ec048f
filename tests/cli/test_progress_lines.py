"""Progress off a terminal: a plain line at each tenth of the work, none drawn."""

from __future__ import annotations

import io

from gcr.cli.console import CliConsole
from gcr.cli.progress import LineProgress, progress_display


def test_lines_at_each_tenth_and_one_at_the_end() -> None:
    out = io.StringIO()
    console = CliConsole(file=out, markup=False)
    progress = progress_display(console, "judging", "{task.description}")
    assert isinstance(progress, LineProgress)
    with progress:
        task = progress.add_task("judging", total=None, status="")
        progress.update(task, total=25)
        for i in range(24):
            progress.update(task, advance=1, status=f"[green]{i + 1} ok[/]")
    lines = out.getvalue().splitlines()
    # The total is shown as soon as it is known; 3/25 is the first step past a tenth (12%); the
    # last update (24/25, 96%) crosses none, so the end prints it.
    assert [line.split(",")[0] for line in lines] == [
        "judging: 0/25 (0%)",
        "judging: 3/25 (12%) 3 ok",
        "judging: 5/25 (20%) 5 ok",
        "judging: 8/25 (32%) 8 ok",
        "judging: 10/25 (40%) 10 ok",
        "judging: 13/25 (52%) 13 ok",
        "judging: 15/25 (60%) 15 ok",
        "judging: 18/25 (72%) 18 ok",
        "judging: 20/25 (80%) 20 ok",
        "judging: 23/25 (92%) 23 ok",
        "judging: 24/25 (96%) 24 ok",
    ]
    assert all(line.endswith(" s") for line in lines)


def test_disabled_or_untotalled_progress_prints_nothing() -> None:
    out = io.StringIO()
    console = CliConsole(file=out, markup=False)
    with progress_display(console, "judging", "{task.description}", disable=True) as progress:
        task = progress.add_task("judging", total=3)
        progress.update(task, advance=3)
    with progress_display(console, "denoising", "{task.description}") as progress:
        progress.add_task("1 image(s)", total=None)
    assert out.getvalue() == ""
