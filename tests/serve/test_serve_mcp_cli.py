"""`gcr serve mcp` as a command: flags are checked before anything loads, errors are one line."""

from __future__ import annotations

import subprocess
import sys


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gcr", "serve", "mcp", *args],
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_unknown_transport_is_a_clear_error():
    done = run("--transport", "carrier-pigeon")
    assert done.returncode == 1
    assert "--transport must be one of stdio, streamable-http" in done.stderr
    assert done.stdout == ""


def test_help_lists_the_options():
    done = run("--help")
    assert done.returncode == 0
    for flag in ("--transport", "--generator", "--critic", "--runs-dir", "--image-root", "--preload"):
        assert flag in done.stdout
