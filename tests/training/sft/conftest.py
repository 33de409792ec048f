"""A small PARROT SFT dataset (real PNGs, critic prompts, teacher answers) shared by the SFT tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from stubs.sft_data import build_tiny_sft_dataset


@pytest.fixture(scope="session")
def sft_dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six t2i pairs → pairwise and pointwise records, split into train and validation by request."""
    return build_tiny_sft_dataset(tmp_path_factory.mktemp("sft-data"))
