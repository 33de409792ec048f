"""Shared rich consoles: results to stdout, messages and progress to stderr.

In a terminal they render as rich does. When a stream is *not* a terminal (a pipe,
a file, a CI log, a test's captured output), rich would still lay text out for an
80-column screen and break a long path or message over two lines. Scripts and logs
need every message whole and on one line, so there the console's width is
unbounded: nothing is wrapped, folded or cut. Renderables that fill the width
(panels, rules) must therefore be built with ``expand=False`` (see :func:`panel`).

Text that is not gcr's own (prompts, ids, critic answers, file names, error
messages) must never be parsed as rich markup: print it as :class:`rich.text.Text`
(:func:`plain`), never inside an f-string passed to ``print``.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console, ConsoleDimensions, RenderableType
from rich.panel import Panel
from rich.text import Text

#: The layout width used when a stream is not a terminal: wider than any line gcr prints,
#: so rich never wraps; nothing pads to it (panels and tables are not expanded).
UNBOUNDED_WIDTH = 1_000_000


class CliConsole(Console):
    """A :class:`~rich.console.Console` that never wraps or crops when its stream is not a terminal."""

    @property  # type: ignore[override]
    def size(self) -> ConsoleDimensions:
        dimensions = Console.size.fget(self)  # type: ignore[attr-defined]
        if self.is_terminal:
            return dimensions
        return ConsoleDimensions(UNBOUNDED_WIDTH, dimensions.height)

    @size.setter
    def size(self, new_dimensions: tuple[int, int]) -> None:
        Console.size.fset(self, new_dimensions)  # type: ignore[attr-defined]


def plain(*parts: str | tuple[str, str] | Text) -> Text:
    """A :class:`Text` from plain strings and ``(text, style)`` pairs; nothing is read as markup."""
    return Text.assemble(*parts)


def panel(body: RenderableType | str, **options: Any) -> Panel:
    """A panel sized to its content (a full-width panel would be unbounded in a pipe).

    A ``str`` body is plain text, never markup.
    """
    content = Text(body) if isinstance(body, str) else body
    return Panel(content, expand=False, **options)


# ``markup=False`` and ``emoji=False``: a plain ``str`` (in ``print``, a table cell, a title) is
# shown as it is, so a prompt like ``p[/x]`` or ``:cat:`` can neither crash nor change the output.
# gcr's own styling is given as Text styles instead.
console = CliConsole(markup=False, emoji=False)
err_console = CliConsole(stderr=True, markup=False, emoji=False)
