"""Test doubles for the agent tests: a fast fake generator and harnesses around the scripted critic.

:class:`Harness` uses the in-process :class:`PromptAwareCritic` (fast; for tests of the graph's own
logic). :class:`ServedHarness` puts gcr's real :class:`~gcr.critic.critic.Critic` (templates, HTTP
backend, parser, re-ask) in its place, over the same script served by :class:`PromptAwareCriticServer`.
"""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from gcr.agent import ArtifactCache, RefineContext, build_graph
from gcr.critic.critic import Critic
from gcr.critic.loading import load_critic
from gcr.generators.base import GenerationRequest, GenerationResult
from gcr.task import Task
from stubs.prompt_aware_critic import (
    PromptAwareCritic,
    PromptAwareCriticServer,
    PromptAwareScript,
    RecordingGenerator,
    SceneBook,
)


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
        self.critic: PromptAwareCritic | Critic = PromptAwareCritic(self.script, self.book)
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


class ServedHarness(Harness):
    """The harness with gcr's real Critic, loaded by URL like ``gcr refine --critic URL`` does.

    ``critic_options`` go to :func:`gcr.critic.loading.load_critic`; retries are off and the
    timeout short unless given, so a test of a dead server fails fast. Call :meth:`close`
    (the ``served`` fixture does) to stop the server.
    """

    def __init__(
        self,
        tmp_path: Path,
        script: PromptAwareScript | None = None,
        task: Task = Task.T2I,
        **critic_options: Any,
    ) -> None:
        super().__init__(tmp_path, script, task)
        self.server = PromptAwareCriticServer(self.script, self.book).start()
        critic_options.setdefault("max_retries", 0)
        critic_options.setdefault("timeout", 5)
        self.critic = load_critic(self.server.url, model="stub-critic", **critic_options)

    def close(self) -> None:
        self.server.stop()
