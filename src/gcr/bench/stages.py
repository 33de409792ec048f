"""The two busy stages of a benchmark run, wrapped so they can be shared, bounded and timed.

* :class:`TimedGenerator` times every generator call (the refine graph itself
  runs them one at a time on its own generator thread: a diffusers pipeline on
  one GPU is one resource and is not thread-safe).
* :class:`BoundedCritic` lets at most ``concurrency`` critic requests be in
  flight at once, whoever asks.

Both record when each call ran in a :class:`StageClock`, from which a run
reports how busy each stage was and how long they worked at the same time
(the point of pipelining: the generator works while critiques are in flight).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from gcr.agent.protocols import CriticProtocol
from gcr.critic.schema import Critique
from gcr.errors import ConfigError
from gcr.generators.base import GenerationRequest, GenerationResult, Generator
from gcr.task import Task

Interval = tuple[float, float]


@dataclass
class StageClock:
    """Start and end times (``time.monotonic``) of every generator and critic call, thread-safe."""

    generate: list[Interval] = field(default_factory=list)
    critique: list[Interval] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, stage: str, start: float, end: float) -> None:
        with self._lock:
            getattr(self, stage).append((start, end))

    def snapshot(self) -> dict[str, list[Interval]]:
        with self._lock:
            return {"generate": list(self.generate), "critique": list(self.critique)}

    def figures(self) -> dict[str, float | int]:
        """Calls, busy seconds (union of intervals) and overlap seconds of the two stages."""
        snap = self.snapshot()
        gen, crit = merge_intervals(snap["generate"]), merge_intervals(snap["critique"])
        return {
            "generator_calls": len(snap["generate"]),
            "critic_calls": len(snap["critique"]),
            "generator_busy_s": total_length(gen),
            "critic_busy_s": total_length(crit),
            "overlap_s": total_length(intersect(gen, crit)),
            "critic_peak_in_flight": peak_concurrency(snap["critique"]),
        }


def merge_intervals(intervals: Sequence[Interval]) -> list[Interval]:
    """The union of ``intervals`` as sorted, disjoint intervals."""
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def intersect(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    """Intersection of two sorted disjoint interval lists."""
    out: list[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        start, end = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if start < end:
            out.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def total_length(intervals: Sequence[Interval]) -> float:
    return float(sum(end - start for start, end in intervals))


def peak_concurrency(intervals: Sequence[Interval]) -> int:
    """Most intervals open at the same moment."""
    # At equal times an end sorts before a start, so touching intervals do not count as overlapping.
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    peak = current = 0
    for _, step in events:
        current += step
        peak = max(peak, current)
    return peak


class TimedGenerator:
    """A :class:`~gcr.generators.base.Generator` that records when each of its calls ran."""

    def __init__(self, inner: Generator, clock: StageClock | None = None) -> None:
        self.inner = inner
        self.clock = clock or StageClock()

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def task(self) -> Task:
        return self.inner.task

    def generate(self, request: GenerationRequest) -> GenerationResult:
        start = time.monotonic()
        try:
            return self.inner.generate(request)
        finally:
            self.clock.add("generate", start, time.monotonic())


class BoundedCritic:
    """A critic that lets at most ``concurrency`` requests be in flight; everything else is forwarded."""

    def __init__(self, inner: CriticProtocol, concurrency: int, clock: StageClock | None = None) -> None:
        if concurrency < 1:
            raise ConfigError(f"critic concurrency must be at least 1 (got {concurrency})")
        self.inner = inner
        self.concurrency = concurrency
        self.clock = clock or StageClock()
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    def cache_identity(self, mode: str, task: Task | str) -> str:
        return self.inner.cache_identity(mode, task)

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._slots is None or self._loop is not loop:
            self._slots, self._loop = asyncio.Semaphore(self.concurrency), loop
        return self._slots

    async def acritique(
        self,
        prompt: str,
        image: Image.Image,
        *,
        sources: Sequence[Image.Image] = (),
        task: Task | str | None = None,
    ) -> Critique:
        async with self._semaphore():
            start = time.monotonic()
            try:
                return await self.inner.acritique(prompt, image, sources=sources, task=task)
            finally:
                self.clock.add("critique", start, time.monotonic())

    def __getattr__(self, name: str) -> Any:
        # Anything else (reward, acompare, aclose, ...) goes to the wrapped critic.
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)
