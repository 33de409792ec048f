"""Fixtures for the agent tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from refine_harness import Harness, ServedHarness


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServedHarness]:
    """A :class:`ServedHarness`: the real Critic over the prompt-aware server (default script)."""
    h = ServedHarness(tmp_path)
    yield h
    h.close()
