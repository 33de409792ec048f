"""The generator, critic and refine graph a server process loads once and shares between calls.

Loading runs in a worker thread, so a server's event loop keeps answering (pings,
other tools) while weights load; concurrent first calls wait for the same load,
and a caller that gives up does not abort it. A diffusers pipeline is not
thread-safe, so every generation, whether from a refine run or a direct
``generate_image`` call, goes through one lock (:class:`LockedGenerator`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from langgraph.graph import StateGraph

from gcr.agent.components import Components
from gcr.agent.graph import build_graph
from gcr.agent.runner import RunSpec
from gcr.generators.base import GenerationRequest, GenerationResult, Generator
from gcr.task import Task

logger = logging.getLogger(__name__)

Loader = Callable[[RunSpec, Task | str | None], Components]


class LockedGenerator:
    """A generator that runs one request at a time; other attributes pass through."""

    def __init__(self, inner: Generator) -> None:
        self.inner = inner
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def task(self) -> Task:
        return self.inner.task

    def generate(self, request: GenerationRequest) -> GenerationResult:
        with self._lock:
            return self.inner.generate(request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@dataclass
class Loaded:
    """What :meth:`SharedModels.get` hands out."""

    components: Components
    builder: StateGraph[Any, Any, Any, Any]

    @property
    def generator(self) -> Generator:
        return self.components.generator

    @property
    def critic(self) -> Any:
        return self.components.critic


def _default_loader(spec: RunSpec, task: Task | str | None) -> Components:
    from gcr.agent.components import load_components

    return load_components(spec, task=task)


class SharedModels:
    """Loads the collaborators named by ``spec`` on first use and keeps them for the process.

    Args:
        spec: the collaborators (generator, critic, refiner, cache); its prompt is unused.
        task: picks the default models when ``spec`` names none (``t2i`` or ``edit``).
        loader: what builds the components (a seam for tests; default
            :func:`gcr.agent.components.load_components`).
    """

    def __init__(self, spec: RunSpec, task: Task | str | None = None, loader: Loader | None = None) -> None:
        self.spec = spec
        self.task = task
        self._loader = loader or _default_loader
        self._loading: asyncio.Future[Loaded] | None = None
        self.loads = 0

    @property
    def loaded(self) -> bool:
        return self._loading is not None and self._loading.done() and self._loading.exception() is None

    async def get(self) -> Loaded:
        """The loaded models, loading them first if no call has yet."""
        if self._loading is None or (self._loading.done() and self._loading.exception() is not None):
            # A failed load (server down, bad path) is tried again by the next call.
            self._loading = asyncio.ensure_future(asyncio.to_thread(self._load))
        return await asyncio.shield(self._loading)

    def _load(self) -> Loaded:
        started = time.perf_counter()
        parts = self._loader(self.spec, self.task)
        parts.generator = LockedGenerator(parts.generator)
        builder = build_graph(**parts.graph_kwargs())
        self.loads += 1
        logger.info(
            "loaded generator %s (%s) and critic %s in %.1fs",
            parts.generator.model_id,
            Task.parse(parts.generator.task).value,
            parts.critic.model_id,
            time.perf_counter() - started,
        )
        return Loaded(components=parts, builder=builder)

    async def aclose(self) -> None:
        """Release the critic's connections (or model) and the refiner's client, if loaded."""
        if self.loaded:
            assert self._loading is not None
            await self._loading.result().components.aclose()
