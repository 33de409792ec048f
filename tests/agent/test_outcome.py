"""refine_once: a call refused for its input leaves no run folder behind; a started one keeps its folder."""

from __future__ import annotations

import asyncio

import pytest
from PIL import Image
from refine_harness import Harness

from gcr.agent.outcome import refine_once
from gcr.errors import CriticUnavailableError, InputError


def test_a_refused_call_leaves_no_folder(tmp_path):
    harness = Harness(tmp_path)  # a text-to-image generator
    source = tmp_path / "source.png"
    Image.new("RGB", (16, 16), (30, 60, 90)).save(source)
    runs = tmp_path / "runs"
    with pytest.raises(InputError, match="takes no source image"):
        asyncio.run(refine_once(harness.builder(), "a red cube", source_images=[str(source)], root=runs))
    assert list(runs.iterdir()) == []


def test_a_run_that_made_images_keeps_its_folder(tmp_path):
    harness = Harness(tmp_path)
    harness.critic.fail_after = 1  # one critique, then the critic is gone
    runs = tmp_path / "runs"
    context = {"max_rounds": 2, "candidates": 2, "target_reward": None}
    with pytest.raises(CriticUnavailableError):
        asyncio.run(refine_once(harness.builder(), "a red cube", context=context, root=runs))
    (folder,) = runs.iterdir()
    assert (folder / "rounds").is_dir() and (folder / "checkpoints.sqlite").is_file()
