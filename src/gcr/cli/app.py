"""The ``gcr`` command: the typer root, logging set-up and error rendering.

Each command group lives in its own module exposing ``register(app)``; this
module only assembles them. Only the CLI renders output; the library logs.
"""

from __future__ import annotations

import importlib
import logging
import sys

import typer
from rich.logging import RichHandler
from rich.text import Text

from gcr.cli.console import err_console
from gcr.errors import GCRError
from gcr.redact import RedactingFilter

app = typer.Typer(
    name="gcr",
    help="Generate-Critique-Refine: better images from reasoning reward models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

#: Modules under ``gcr.cli`` that add commands; each defines ``register(app)``.
COMMAND_MODULES: tuple[str, ...] = (
    "train", "dev", "eval", "critique", "serve", "generate", "refine", "bench",
)


@app.callback()
def _root(
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More log output (-vv: debug)."),
) -> None:
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(
        level=level,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False, rich_tracebacks=False)],
        force=True,
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter())  # URL passwords never reach the screen
    # Third-party libraries are chatty at INFO; keep them at WARNING unless -vv.
    if verbose < 2:
        for name in ("httpx", "httpcore", "openai", "urllib3"):
            logging.getLogger(name).setLevel(logging.WARNING)


for _name in COMMAND_MODULES:
    importlib.import_module(f"gcr.cli.{_name}").register(app)


def main() -> None:
    """Console-script entry: user-fixable errors become one red line and exit code 1."""
    try:
        app()
    except GCRError as exc:
        err_console.print(Text.assemble(("error: ", "bold red"), str(exc)), highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        sys.exit(130)
