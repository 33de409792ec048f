"""Terminal rendering of ``gcr bench``: a progress bar with ETA while it runs, tables when it is done."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from gcr.cli.console import plain

_SHORT = {
    "text_faithfulness": "text faithfulness",
    "image_faithfulness": "image faithfulness",
    "physical_quality": "physical & visual quality",
    "text_rendering": "text rendering",
}


class BenchProgress:
    """One bar over the runs to do (refine runs, plus baselines), with live image and critique counts.

    When the console is not a terminal there is no bar (it cannot redraw): each finished
    run is printed as one plain line instead.
    """

    def __init__(self, console: Console, *, disable: bool = False) -> None:
        self.lines = not disable and not console.is_terminal
        self.progress = Progress(
            TextColumn("[bold]bench"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[status]}"),
            console=console,
            disable=disable or self.lines,
            transient=False,
        )
        self.task = self.progress.add_task("bench", total=None, status="loading models ...")
        self.tally = {"ok": 0, "failed": 0, "images": 0, "critiques": 0}
        self.runs = 0

    @property
    def console(self) -> Console:
        return self.progress.console

    def __enter__(self) -> BenchProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def on_start(self, runs: int, reused: int) -> None:
        self.runs = runs
        self.progress.update(self.task, total=runs, status="models loaded" if runs else "")
        if reused:
            self.console.print(f"resuming: {reused} prompt(s) already finished, {runs} run(s) to go")

    def on_result(self, kind: str, record: dict[str, Any]) -> None:
        self.tally["ok" if record.get("status") == "ok" else "failed"] += 1
        done = self.tally["ok"] + self.tally["failed"]
        if record.get("status") != "ok":
            error = record.get("error") or {}
            self.console.print(
                plain(("failed ", "red"), f"{record['id']}: {error.get('type')}: {error.get('message')}"),
                highlight=False,
            )
        elif self.lines:
            what = "best-of-n baseline" if kind == "baseline" else "refined"
            self.console.print(
                plain(f"[{done}/{self.runs}] {what} {record['id']}: {_change(record)}"), highlight=False
            )
        self.progress.update(self.task, advance=1, status=self._status())

    def on_event(self, case_id: str, event: dict[str, Any]) -> None:
        if event["type"] == "candidate_generated":
            self.tally["images"] += 1
        elif event["type"] in ("candidate_scored", "candidate_skipped"):
            self.tally["critiques"] += 1
        else:
            return
        self.progress.update(self.task, status=self._status())

    def _status(self) -> str:
        t = self.tally
        text = f"[green]{t['ok']} done[/] · {t['images']} images · {t['critiques']} critiques"
        return text + (f" · [red]{t['failed']} failed[/]" if t["failed"] else "")


def _reward(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _change(record: dict[str, Any]) -> str:
    """One finished run in a few words: the reward change of a refine run, the best of a baseline."""
    if "best_reward" in record:
        return f"best reward {_reward(record['best_reward'])} of {record.get('generations')} image(s)"
    start, final = record.get("initial_reward"), record.get("final_reward")
    return f"reward {_reward(start)} → {_reward(final)} in {record.get('rounds')} round(s)"


def _ci(figure: dict[str, Any] | None) -> str:
    if not figure or figure.get("mean") is None:
        return "–"
    if figure.get("ci_low") is None:
        return f"{figure['mean']:.3f}"
    return f"{figure['mean']:.3f}  [{figure['ci_low']:.3f}, {figure['ci_high']:.3f}]"


def _rate(figure: dict[str, Any] | None) -> str:
    if not figure or figure.get("rate") is None:
        return "–"
    return (
        f"{figure['rate']:.1%}  [{figure['ci_low']:.1%}, {figure['ci_high']:.1%}]  "
        f"({figure['wins']} won · {figure['ties']} tied · {figure['losses']} lost)"
    )


def render_summary(console: Console, summary: dict[str, Any], report: Path) -> None:
    """The headline figures of a benchmark; the rest is in the HTML report."""
    reward, counts = summary["reward"], summary["counts"]
    table = Table(show_header=False, box=None, padding=(0, 2), title="Benchmark", title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    prompt_set = summary.get("prompt_set") or {}
    table.add_row("prompt set", f"{prompt_set.get('name')} ({summary['task']})")
    table.add_row("finished / failed", f"{counts['finished']} / {counts['failed']}")
    table.add_row("reward, round 0 (95% CI)", _ci(reward["initial"]))
    table.add_row("reward, final (95% CI)", _ci(reward["final"]))
    table.add_row("gain (95% CI)", _ci(reward["delta"]))
    table.add_row("win rate, final over round 0", _rate(reward["win_rate"]))
    baseline = summary.get("baseline")
    if baseline:
        table.add_row("best-of-n baseline (95% CI)", _ci(baseline["baseline"]))
        table.add_row("refine - best-of-n (95% CI)", _ci(baseline["delta"]))
        table.add_row("win rate, refine over best-of-n", _rate(baseline["win_rate"]))
    rounds = summary["rounds"]
    if rounds["mean_rounds"] is not None:
        reasons = ", ".join(f"{k} {v}" for k, v in rounds["stop_reasons"].items())
        table.add_row("rounds (mean) · stop reasons", f"{rounds['mean_rounds']:.2f} · {reasons}")
    throughput = summary["throughput"]
    if throughput["images_per_min"] is not None:
        table.add_row(
            "throughput",
            f"{throughput['images_per_min']:.1f} images/min · generator busy "
            f"{throughput['generator_busy_s']:.1f} s of {throughput['wall_s']:.1f} s wall",
        )
    table.add_row("report", str(report))
    console.print(table)
    dims = {k: d for k, d in summary["dimensions"].items() if d["n"]}
    if dims:
        per_dim = Table(title="Per dimension (1-4)", title_justify="left")
        for name, justify in (
            ("dimension", "left"),
            ("n", "right"),
            ("round 0", "right"),
            ("final", "right"),
            ("change (95% CI)", "right"),
        ):
            per_dim.add_column(name, justify=justify)  # type: ignore[arg-type]
        for key, d in dims.items():
            per_dim.add_row(
                _SHORT.get(key, key),
                str(d["n"]),
                f"{d['initial_mean']:.2f}",
                f"{d['final_mean']:.2f}",
                _ci(d["delta"]),
            )
        console.print(per_dim)
    from gcr.cli.judges_view import render_judges

    render_judges(console, summary)
