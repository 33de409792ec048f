"""``gcr bench export``: a run's images in the layout of a standard benchmark's official evaluator.

* ``gcr bench export RUN --layout geneval --set final --out DIR``
* ``gcr bench export RUN --layout gedit --set round0 --out results/ --benchmark gedit-en:GEdit-Bench``
* ``gcr bench score RUN --benchmark gedit-en:GEdit-Bench --judge viescore:URL,model=gpt-4.1``

``--set`` picks round 0 (the prompt as given), the final best, or the best-of-n
baseline's pick; export all three to compare them with the official scorer.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.text import Text

from gcr.cli.console import console, err_console


def export_command(
    run: Path = typer.Argument(..., help="The gcr bench folder (its --out).", show_default=False),
    layout: str = typer.Option(
        ...,
        "--layout",
        help="Evaluator layout: geneval, dpg, t2icompbench, gedit or imgedit.",
        show_default=False,
    ),
    image_set: str = typer.Option(
        "final", "--set", help="Which images: round0, final or baseline (the best-of-n pick)."
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Folder to write (created if needed).", show_default=False
    ),
    benchmark: str | None = typer.Option(
        None,
        "--benchmark",
        help="The benchmark the run used (NAME:PATH); gedit needs it to write each <key>_SRCIMG.png.",
    ),
    model_name: str | None = typer.Option(
        None, "--model-name", help="gedit: the method folder under OUT (default: gcr-SET)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print what was written as JSON."),
) -> None:
    """Write RUN's images where the benchmark's official evaluator looks for them."""
    from gcr.benchmarks import load_benchmark
    from gcr.benchmarks.export import export_run

    bench_set = load_benchmark(benchmark) if benchmark else None
    result = export_run(run, layout, image_set, out, benchmark=bench_set, model_name=model_name)
    if as_json:
        data = {
            "layout": result.layout,
            "set": result.image_set,
            "out": str(result.out),
            "written": result.written,
            "files": result.files,
            "left_out": result.missing,
        }
        console.out(json.dumps(data, indent=2, ensure_ascii=False), highlight=False)
        return
    # soft_wrap: paths and reasons are never wrapped or cut, in a terminal or a pipe.
    console.print(
        Text(f"{result.written} {result.image_set} images written to {result.out} ({result.layout} layout)"),
        soft_wrap=True,
    )
    for case_id, why in result.missing.items():
        err_console.print(Text(f"left out {case_id}: {why}", style="yellow"), soft_wrap=True)


def score_command(
    run: Path = typer.Argument(..., help="The gcr bench folder (its --out).", show_default=False),
    benchmark: str = typer.Option(
        ...,
        "--benchmark",
        help="The edit benchmark the run used: gedit[-en|-cn]:PATH or imgedit:PATH.",
        show_default=False,
    ),
    judge: str = typer.Option(
        ...,
        "--judge",
        help="Judge spec (docs/judges.md): viescore:URL,model=M for GEdit, imgedit:URL,model=M for ImgEdit.",
        show_default=False,
    ),
    sets: list[str] = typer.Option(
        ["round0", "final", "baseline"], "--set", help="Sets to judge (repeat the option); default all three."
    ),
    concurrency: int = typer.Option(4, "--concurrency", min=1, help="Judge requests in flight at once."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """Judge RUN's edits and report them as the benchmark does, beside the paper's published figures."""
    import asyncio

    from gcr.benchmarks import load_benchmark, split_spec
    from gcr.benchmarks.scoring import score_run
    from gcr.errors import InputError
    from gcr.judges import load_judge

    parsed = split_spec(benchmark)
    family = parsed[0].split("-")[0] if parsed else None
    if family not in ("gedit", "imgedit"):
        raise InputError(f"--benchmark {benchmark!r}: gcr scores gedit[-en|-cn]:PATH or imgedit:PATH")
    bench_set = load_benchmark(benchmark)
    loaded = load_judge(judge)

    async def go() -> dict:
        try:
            return await score_run(
                run, family, loaded, loaded.identity, sets=sets, bench_set=bench_set, concurrency=concurrency
            )
        finally:
            close = getattr(loaded, "aclose", None)
            if close is not None:
                await close()

    summary = asyncio.run(go())
    if as_json:
        console.out(json.dumps(summary, indent=2, ensure_ascii=False), highlight=False)
    else:
        from gcr.cli.bench_score_view import render_scores

        render_scores(console, summary)
    failed = sum(len(block["failed"]) for block in summary["sets"].values())
    if failed:
        err_console.print(
            Text(f"{failed} judgement(s) failed and are left out; rerun the same command to retry them"),
            soft_wrap=True,
        )
        raise typer.Exit(1)


def register_export(bench_app: typer.Typer) -> None:
    bench_app.command("export")(export_command)
    bench_app.command("score")(score_command)
