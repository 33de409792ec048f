"""Helpers shared by the DiffusionNFT tests (imported by name; pytest puts this folder on sys.path)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from gcr.critic.schema import Critique, Dimension, DimensionJudgement
from gcr.errors import CritiqueParseError
from gcr.task import Task
from gcr.training.rl.config import RewardConfig, RLConfig
from gcr.training.rl.data import PromptRecord

PROMPTS = ("a red cat", "a blue cup", "a lighthouse at sunset", "two apples in a bowl")


def records(n: int = 2) -> list[PromptRecord]:
    return [PromptRecord(id=f"p{i}", prompt=p) for i, p in enumerate(PROMPTS[:n])]


def tiny_config(model: Path, output_dir: Path, **overrides: Any) -> RLConfig:
    """A run small enough for a CPU: 16 px, 2 steps, groups of 4, a rank-4 LoRA."""
    settings: dict[str, Any] = {
        "pretrained_model": str(model),
        "train_prompts": "in-memory",
        "output_dir": str(output_dir),
        "rewards": [RewardConfig(name="brightness", function="gcr.training.rl.rewards:brightness")],
        "resolution": 16,
        "num_inference_steps": 2,
        "group_size": 4,
        "prompts_per_epoch": 2,
        "sample_batch_size": 8,
        "train_batch_size": 8,
        "num_epochs": 1,
        "max_sequence_length": 16,
        "lora_rank": 4,
        "lora_alpha": 8.0,
        "learning_rate": 1e-2,
        "eval_every": 0,
        "save_every": 0,
        "log_with": [],
    }
    settings.update(overrides)
    return RLConfig(**settings)


def image_brightness(image: Image.Image) -> float:
    return float(np.asarray(image.convert("L"), dtype=np.float64).mean() / 255.0)


class FakeCritic:
    """Answers like a critic: text faithfulness from brightness, a fixed quality score, N/A text rendering.

    ``fail`` picks the calls (by order of arrival) that fail with an unreadable answer.
    """

    def __init__(self, fail: Callable[[int], bool] = lambda i: False, delay: float = 0.005) -> None:
        self.fail = fail
        self.delay = delay
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.closed = False

    async def acritique(
        self, prompt: str, image: Image.Image, *, sources: Any = (), task: Any = None
    ) -> Critique:
        index = self.calls
        self.calls += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        if self.fail(index):
            raise CritiqueParseError("the critic's answer has no readable critique", "I cannot judge this.")
        faithfulness = 1.0 + 3.0 * image_brightness(image)
        return Critique(
            task=Task.T2I,
            judgements=[
                DimensionJudgement(dimension=Dimension.TEXT_FAITHFULNESS, score=faithfulness),
                DimensionJudgement(dimension=Dimension.PHYSICAL_QUALITY, score=2.5),
                DimensionJudgement(dimension=Dimension.TEXT_RENDERING, score=None),
            ],
        )

    async def aclose(self) -> None:
        self.closed = True
