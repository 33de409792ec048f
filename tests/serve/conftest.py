"""Fixtures of the server tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stubs.critic_server import StubCriticServer


@pytest.fixture
def scripted_critic() -> Iterator[StubCriticServer]:
    """A stub critic server; tests set its ``responder`` (see ``serve_helpers.ScriptedCritic``)."""
    with StubCriticServer() as server:
        yield server
