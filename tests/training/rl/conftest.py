"""Fixtures for the DiffusionNFT tests: tiny FLUX pipelines on one torch thread."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Tiny models run faster on one thread, and the CPU is shared with other test runs."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def flux_dir(tiny_pipeline_dir: Callable[[str], Path]) -> Path:
    return tiny_pipeline_dir("flux")


@pytest.fixture(scope="session")
def kontext_dir(tiny_pipeline_dir: Callable[[str], Path]) -> Path:
    return tiny_pipeline_dir("flux-kontext")
