"""``gcr bench export``: a run's images in the layout of a standard benchmark's official evaluator.

* ``gcr bench export RUN --layout geneval --set final --out DIR``
* ``gcr bench export RUN --layout gedit --set round0 --out results/ --benchmark gedit-en:GEdit-Bench``

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
    console.print(
        Text(f"{result.written} {result.image_set} images written to {result.out} ({result.layout} layout)")
    )
    for case_id, why in result.missing.items():
        err_console.print(Text(f"left out {case_id}: {why}", style="yellow"))


def register_export(bench_app: typer.Typer) -> None:
    bench_app.command("export")(export_command)
