"""Fixtures for the PARROT tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stubs.teacher_server import make_preferences, teacher_stub  # noqa: F401  (teacher_stub is a fixture)


@pytest.fixture
def prefs_factory(tmp_path: Path) -> Callable[..., Path]:
    """``prefs_factory(specs, name=...)`` writes a preference set under ``tmp_path``; returns its file."""

    def make(specs: list[dict[str, Any]], name: str = "prefs") -> Path:
        return make_preferences(tmp_path / name, specs)

    return make
