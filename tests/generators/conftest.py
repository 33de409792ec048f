"""Fixtures for the generator tests: a per-module pipeline cache, a load counter, a stub images server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from gcr.generators.loading import PipelineCache
from stubs.images_server import StubImagesServer


@pytest.fixture(scope="module")
def shared_cache() -> PipelineCache:
    """One cache per test module, so each tiny pipeline loads once per module."""
    return PipelineCache(max_entries=8)


@pytest.fixture
def load_counter(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every ``DiffusionPipeline.from_pretrained`` source, in call order, for this test."""
    from diffusers import DiffusionPipeline

    calls: list[str] = []
    original = DiffusionPipeline.from_pretrained

    def counting(cls: Any, source: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(str(source))
        return original(source, *args, **kwargs)

    monkeypatch.setattr(DiffusionPipeline, "from_pretrained", classmethod(counting))
    return calls


@pytest.fixture
def images_stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[StubImagesServer]:
    monkeypatch.setenv("GCR_TEST_IMAGES_KEY", "test-key")
    with StubImagesServer() as stub:
        yield stub
