"""Run the ``gcr`` console script in-process with its output captured (piped, not a terminal)."""

from __future__ import annotations

import io
import sys

from gcr.cli.app import main


def run_gcr(monkeypatch, capsys, *args: str, stdin: str | None = "") -> tuple[int, str, str]:
    """``gcr ARGS`` through the real entry point, its error handling included: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["gcr", *args])
    if stdin is not None:  # None: leave stdin as it is
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err
