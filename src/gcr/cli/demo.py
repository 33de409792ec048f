"""``gcr demo``: the whole refine loop offline, in about a minute on a laptop CPU.

What is real: the ``gcr refine`` command itself (its flags, the LangGraph rounds, the
diffusers generator adapter, the OpenAI-compatible critic client and the critique
parser, the run folder, the live table and the HTML report). What is not: the
generator is a tiny *random* Stable Diffusion pipeline (``gcr dev make-tiny``; its
pictures are noise) and the critic is the scripted server of ``gcr dev mock-critic``
(its scores follow fixed rules, not the picture). Every output says so.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.text import Text

from gcr.cli.console import err_console

#: What the demo is, said before it starts and after it ends.
LABEL = (
    "gcr demo: tiny random models (their pictures are noise) judged by a scripted critic "
    "(gcr dev mock-critic: scores follow fixed rules, not the picture); everything else is the real "
    "gcr refine: its rounds, HTTP critic client, parser, run folder and report."
)
DEFAULT_MODELS = Path.home() / ".cache" / "gcr" / "demo"


def tiny_generator(models: Path) -> Path:
    """The tiny random SD pipeline under ``models`` (built on first use, about 1 MB)."""
    target = models / "tiny-random-sd"
    if (target / "model_index.json").is_file():
        return target
    import diffusers
    import transformers

    from gcr.dev.tiny_pipelines import build_tiny_pipeline

    transformers.utils.logging.disable_progress_bar()
    diffusers.utils.logging.disable_progress_bar()
    with err_console.status("building a tiny random generator (once) ..."):
        return build_tiny_pipeline("sd", target)


def demo_command(
    prompt: str = typer.Argument("a lighthouse on a rocky coast at dawn", help="The request to refine."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Run folder to create (default: gcr-runs/demo-TIMESTAMP)."
    ),
    models: Path = typer.Option(
        DEFAULT_MODELS, "--models", help="Where the tiny random generator is built and kept."
    ),
    max_rounds: int = typer.Option(5, "--max-rounds", help="Most rounds, counting the first generation."),
    as_json: bool = typer.Option(False, "--json", help="Print summary.json instead of the live table."),
) -> None:
    """Run gcr refine offline on a tiny random generator with a scripted critic, and write its report."""
    import typer.main

    from gcr.cli.app import app
    from gcr.dev.mock_critic import MODEL_NAME, MockCriticServer

    err_console.print(Text(LABEL, style="bold yellow"), highlight=False)
    generator = tiny_generator(models)
    folder = out if out is not None else Path("gcr-runs") / f"demo-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    args = [
        "refine", prompt, "--generator", str(generator), "--device", "cpu", "--steps", "2", "--size", "64",
        "--max-rounds", str(max_rounds), "--target", "0.85", "--no-cache", "--out", str(folder),
    ]  # fmt: skip
    with MockCriticServer() as server:
        args += ["--critic", server.url, "--model", MODEL_NAME, *(["--json"] if as_json else [])]
        typer.main.get_command(app).main(args=args, prog_name="gcr", standalone_mode=False)
    err_console.print(
        Text.assemble(
            ("demo report: ", "bold"),
            str((folder / "report.html").resolve()),
            " (tiny random models + a scripted critic; for real images run gcr doctor, then gcr refine)",
        ),
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)
