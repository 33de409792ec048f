"""Test doubles for the agent tests: a fast fake generator and a harness around the scripted critic."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from gcr.agent import ArtifactCache, RefineContext, build_graph
from gcr.critic.schema import Task
from gcr.generators.base import GenerationRequest, GenerationResult
from stubs.prompt_aware_critic import PromptAwareCritic, PromptAwareScript, RecordingGenerator, SceneBook


class FakeGenerator:
    """Deterministic 16 px images derived from (prompt, seed, sources); optionally slow or failing."""

    def __init__(
        self, task: Task = Task.T2I, *, delay: float = 0.0, error: BaseException | None = None
    ) -> None:
        self._task = task
        self.delay = delay
        self.error = error
        self.calls = 0
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return f"fake-{self._task.value}"

    @property
    def task(self) -> Task:
        return self._task

    def generate(self, request: GenerationRequest) -> GenerationResult:
        with self._lock:
            self.calls += 1
        if self.error is not None:
            raise self.error
        if self.delay:
            time.sleep(self.delay)
        images = []
        for seed in request.seeds():
            key = f"{request.prompt}|{seed}|{len(request.source_images)}".encode()
            rng = np.random.default_rng(int.from_bytes(hashlib.sha256(key).digest()[:8], "little"))
            pixels = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
            images.append(Image.fromarray(pixels, "RGB"))
        return GenerationResult(
            images=images, seeds=request.seeds(), model_id=self.model_id, params={"steps": request.steps}
        )


class Harness:
    """A scripted critic, a recording generator and a cache, with a graph builder on top."""

    def __init__(
        self, tmp_path: Path, script: PromptAwareScript | None = None, task: Task = Task.T2I
    ) -> None:
        self.book = SceneBook()
        self.script = script or PromptAwareScript()
        self.inner = FakeGenerator(task)
        self.generator = RecordingGenerator(self.inner, self.book)
        self.critic = PromptAwareCritic(self.script, self.book)
        self.cache = ArtifactCache(tmp_path / "cache")
        self.tmp_path = tmp_path
        self._runs = 0

    def builder(self, **kwargs: Any):
        kwargs.setdefault("cache", self.cache)
        return build_graph(generator=self.generator, critic=self.critic, **kwargs)

    def context(self, **kwargs: Any) -> RefineContext:
        self._runs += 1
        kwargs.setdefault("run_dir", str(self.tmp_path / f"run{self._runs}"))
        kwargs.setdefault("target_reward", None)
        return RefineContext(**kwargs)
