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

from gcr.cli.console import console, err_console
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
    "train", "dev", "eval", "critique", "serve", "generate", "refine", "bench", "doctor", "demo",
)


@app.callback()
def _root(
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More log output (-vv: debug)."),
) -> None:
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, handlers=[log_handler()], force=True)
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter())  # URL passwords never reach the screen
    _drop_library_handlers()
    # Third-party libraries are chatty at INFO; keep them at WARNING unless -vv.
    if verbose < 2:
        for name in ("httpx", "httpcore", "openai", "urllib3"):
            logging.getLogger(name).setLevel(logging.WARNING)


def log_handler() -> logging.Handler:
    """Where log records go: rich's handler in a terminal; elsewhere one plain line per record
    (``WARNING: message``), never wrapped, padded or read as markup."""
    if err_console.is_terminal:
        return RichHandler(console=err_console, show_path=False, rich_tracebacks=False, markup=False)
    handler = logging.StreamHandler(err_console.file)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    return handler


def _drop_library_handlers() -> None:
    """huggingface_hub gives its logger a stderr handler of its own *and* lets records propagate,
    so every hub warning (each download retry) would print twice; keep only ours."""
    import huggingface_hub.utils.logging  # noqa: F401 - importing it installs that handler

    hub = logging.getLogger("huggingface_hub")
    for handler in list(hub.handlers):
        if type(handler) is logging.StreamHandler:
            hub.removeHandler(handler)


for _name in COMMAND_MODULES:
    importlib.import_module(f"gcr.cli.{_name}").register(app)


#: Help width when stdout is not a terminal: wide enough that click never wraps a line.
UNWRAPPED_HELP_WIDTH = 100_000


def help_layout() -> dict[str, int]:
    """Click context settings for help text: the terminal's own layout in a terminal, unwrapped
    lines elsewhere (click otherwise wraps help at 80 columns in a pipe)."""
    if console.is_terminal:
        return {}
    return {"terminal_width": UNWRAPPED_HELP_WIDTH, "max_content_width": UNWRAPPED_HELP_WIDTH}


def main() -> None:
    """Console-script entry: user-fixable errors become one red line and exit code 1.

    When stdout or stderr is not a terminal, typer's usage errors and ``--help`` are printed
    the plain click way (``Error: ...`` on one line) instead of in panels laid out for 80
    columns, and help text is not wrapped: a piped ``--help`` keeps each option on one line.
    """
    import typer.core

    rich_errors = typer.core.HAS_RICH
    typer.core.HAS_RICH = rich_errors and err_console.is_terminal and console.is_terminal
    try:
        app(**help_layout())
    except GCRError as exc:
        err_console.print(Text.assemble(("error: ", "bold red"), str(exc)), highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print(Text("interrupted", style="yellow"))
        sys.exit(130)
    finally:
        typer.core.HAS_RICH = rich_errors
