"""``gcr eval DATASET``: a critic's pairwise preference accuracy on a human-labelled benchmark.

Reads MMRB2, GenAI-Bench or EditReward-Bench from local files (layout detected,
or given with ``--layout``), judges every pair with the critic (concurrently,
resumably: rerun the same command to continue or to retry failed pairs), then
prints the accuracy with its 95% interval in the columns of the paper's
Table 1, beside the published figures.
"""

from __future__ import annotations

import asyncio
import json
import re
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from gcr.cli.console import console, err_console, plain
from gcr.cli.progress import progress_display

if TYPE_CHECKING:
    from gcr.bench.eval import EvalDataset, EvalOutcome, EvalSettings
    from gcr.critic.critic import Critic

#: Tokens the critic may write when judging a benchmark pair (the paper's evaluation runs used ~20k).
DEFAULT_EVAL_MAX_TOKENS = 20_000


class ModeChoice(StrEnum):
    pairwise = "pairwise"
    pointwise = "pointwise"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:80] or "critic"


def _default_out(dataset_name: str, layout: str, mode: str, critic_id: str) -> Path:
    return Path("gcr-eval") / f"{_slug(dataset_name)}-{layout}-{mode}-{_slug(critic_id)}"


def eval_command(
    dataset: Path = typer.Argument(
        ..., help="Parquet/JSONL/JSON file, folder of Parquet shards, or a datasets save_to_disk folder."
    ),
    layout: str | None = typer.Option(
        None,
        "--layout",
        help="Dataset layout: mmrb2-t2i, mmrb2-edit, genai-t2i, genai-edit or editreward (default: detect).",
    ),
    split: str | None = typer.Option(None, "--split", help="Split to read from a multi-split folder."),
    critic: str | None = typer.Option(
        None,
        "--critic",
        help="Critic server URL (OpenAI-compatible, e.g. vLLM) or a checkpoint folder / Hub id; "
        "default: the released RationalRewards checkpoint for the dataset's task, in-process.",
    ),
    model: str | None = typer.Option(None, "--model", help="Model name on the critic server."),
    mode: ModeChoice = typer.Option(
        ModeChoice.pairwise,
        "--mode",
        help="pairwise: both candidates in one request (the released model's native mode); "
        "pointwise: critique each candidate alone and compare the score sums.",
    ),
    both_orders: bool = typer.Option(
        False,
        "--both-orders",
        help="Judge every pair as (A, B) and as (B, A) and average the two (MMRB2's position-bias "
        "control; pairwise mode); reports how often the verdict flips with the order.",
    ),
    concurrency: int = typer.Option(16, "--concurrency", min=1, help="Pairs judged at the same time."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Only the first N rows of the dataset."),
    tie_tolerance: float = typer.Option(
        0.0, "--tie-tolerance", min=0.0, help="Score-sum difference still called a tie (default: exact)."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Results folder (default: gcr-eval/<dataset>-<layout>-<mode>-<critic>)."
    ),
    max_tokens: int = typer.Option(
        DEFAULT_EVAL_MAX_TOKENS, "--max-tokens", min=1, help="Token limit of each critic answer."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the summary as JSON instead of tables."),
) -> None:
    """Measure how often a critic agrees with human preferences on a benchmark."""
    from gcr.bench.eval import EvalSettings, open_dataset, summarize, write_summary
    from gcr.critic import load_critic
    from gcr.critic.backends.base import SamplingParams

    ds = open_dataset(dataset, layout=layout, split=split)
    settings = EvalSettings(mode=mode.value, concurrency=concurrency, limit=limit, both_orders=both_orders)
    requests_in_flight = concurrency * (2 if settings.mode == "pointwise" else 1)
    critic_obj = load_critic(
        critic,
        model=model,
        task=ds.layout.task,
        sampling=SamplingParams(max_tokens=max_tokens),
        max_concurrency=requests_in_flight,
    )
    critic_id = critic_obj.model_id
    out_dir = out or _default_out(ds.name, ds.layout.name, settings.mode, critic_id)
    if not json_output:
        how = "detected" if ds.detected else "given"
        err_console.print(
            plain(
                (ds.layout.title, "bold"),
                f" ({ds.layout.name}, {how}) · {len(ds)} rows · critic ",
                (critic_id, "cyan"),
                f" · {settings.mode} · results in {out_dir}",
            ),
            highlight=False,
        )
    outcome = asyncio.run(_run(ds, critic_obj, out_dir, settings, critic_id, show_progress=not json_output))
    summary = summarize(outcome, ds, settings, tie_tolerance=tie_tolerance, critic=critic_id)
    write_summary(summary, out_dir)
    if json_output:
        console.out(json.dumps(summary, indent=2), highlight=False)
        return
    render_summary(summary)


async def _run(
    ds: EvalDataset,
    critic: Critic,
    out_dir: Path,
    settings: EvalSettings,
    critic_id: str,
    *,
    show_progress: bool,
) -> EvalOutcome:
    from gcr.bench.eval import run_eval

    progress = progress_display(
        err_console,
        "judging",
        TextColumn("[bold]judging"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        disable=not show_progress,
    )
    task_id = progress.add_task("judging", total=None, status="")
    tally = {"ok": 0, "failed": 0, "previous": 0}

    def on_start(to_request: int, already_done: int) -> None:
        tally["previous"] = already_done
        progress.update(task_id, total=to_request)
        if already_done:
            progress.console.print(f"resuming: {already_done} pairs already judged, {to_request} to go")

    def on_result(record: dict[str, Any]) -> None:
        tally["ok" if record.get("status") == "ok" else "failed"] += 1
        status = f"[green]{tally['ok']} ok[/]"
        if tally["failed"]:
            status += f" [red]{tally['failed']} failed[/]"
        progress.update(task_id, advance=1, status=status)

    try:
        with progress:
            return await run_eval(
                ds, critic, out_dir, settings, critic_id=critic_id, on_start=on_start, on_result=on_result
            )
    finally:
        await critic.aclose()


def render_summary(summary: dict[str, Any]) -> None:
    """Draw the Table 1 comparison and the details of one evaluation."""
    from gcr.bench.eval import TABLE1_COLUMNS, table1_rows
    from gcr.bench.eval.report import format_accuracy

    title = "Pairwise preference accuracy (%), columns of the paper's Table 1"
    table = Table(title=title, title_justify="left")
    table.add_column("Model")
    for column in TABLE1_COLUMNS:
        style = "bold" if column == summary.get("table1_column") else None
        table.add_column(column, justify="right", style=style)
    for row in table1_rows([summary]):
        style = {"paper": "dim", "ours": "bold green", "delta": "yellow"}[row["source"]]
        table.add_row(row["model"], *(row["cells"].get(c, "") for c in TABLE1_COLUMNS), style=style)
    console.print(table)

    counts, acc = summary["counts"], summary["accuracy"]
    details = Table(show_header=False, title="Details", title_justify="left", box=None, padding=(0, 2))
    details.add_column(style="bold")
    details.add_column()
    details.add_row("benchmark", f"{summary['dataset']['benchmark']} ({summary['dataset']['layout']})")
    details.add_row("accuracy, 95% CI", format_accuracy(acc["accuracy"], acc["ci_low"], acc["ci_high"]))
    details.add_row("correct / evaluated", f"{acc['correct']} / {acc['evaluated']}")
    details.add_row(
        "ties", f"{acc['label_ties']} labelled, {acc['predicted_ties']} predicted "
        f"(tolerance {summary['settings']['tie_tolerance']})"
    )
    if acc["label_ties"]:
        details.add_row("accuracy without labelled ties", format_accuracy(acc["accuracy_without_label_ties"]))
    failed = counts["failed"]
    by_type = ", ".join(f"{k}: {v}" for k, v in summary["failures"]["by_type"].items())
    details.add_row("failed (not in accuracy)", f"{failed}" + (f" ({by_type})" if by_type else ""))
    details.add_row("unknown labels (skipped)", str(counts["unknown_labels"]))
    agreement = summary.get("order_agreement")
    if agreement is not None:
        flips = f"{agreement['flips']} of {agreement['pairs']} pairs"
        if agreement["flip_rate"] is not None:
            flips += f" ({100 * agreement['flip_rate']:.1f}%)"
        details.add_row("order flips (AB vs BA)", flips)
        names = {"accuracy_ab": "AB", "accuracy_ba": "BA", "accuracy_per_judgement": "per judgement"}
        per_order = ", ".join(f"{name} {format_accuracy(agreement[key])}" for key, name in names.items())
        details.add_row("accuracy per order", per_order)
    if counts["not_judged"]:
        details.add_row("not judged yet", f"{counts['not_judged']} (rerun to continue)")
    details.add_row(
        "this run", f"{counts['judged_this_run']} judged, {counts['reused_from_earlier_runs']} reused, "
        f"{summary['elapsed_s']:.1f}s"
    )
    details.add_row("results", summary["out_dir"])
    console.print(details)
    for example in summary["failures"]["examples"]:
        line = Text.assemble(("failed ", "red"), f"{example['id']}: {example['type']}: {example['message']}")
        console.print(line, highlight=False)
    if failed:
        console.print(plain(("rerun the same command to retry the failed pairs", "yellow")))

    if summary["by_category"]:
        cats = Table(title="By category", title_justify="left")
        for name, justify in (("category", "left"), ("accuracy, 95% CI", "right"), ("n", "right"),
                              ("failed", "right"), ("unknown", "right")):
            cats.add_column(name, justify=justify)  # type: ignore[arg-type]
        for name, cat in summary["by_category"].items():
            cats.add_row(
                name, format_accuracy(cat["accuracy"], cat["ci_low"], cat["ci_high"]),
                str(cat["evaluated"]), str(cat["failed"]), str(cat["unknown_labels"]),
            )
        console.print(cats)


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
