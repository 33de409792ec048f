"""A fake generator and a scripted critic for the ``gcr bench`` tests, with rewards known in advance.

The images carry their own story, so the critic needs no shared memory with the
generator and works across processes and over HTTP:

* :class:`PixelGenerator` paints a 16 px image whose top-left pixel encodes which
  of the script's phrases (:data:`PHRASES`) the generation prompt contains
  (red = bit mask) and the seed (green = seed % 256). It holds a process-wide lock
  for ``hold`` seconds per image, like a busy GPU, can append one line per call to
  a log file (``log`` option, else ``$PIXEL_LOG``: ``prompt<TAB>seed``), and fails on
  prompts containing ``[fail-gen]``.
* :class:`PixelScript` scores such an image for a user prompt: text faithfulness =
  the prompt's base level (``[base 2.5]`` in the prompt, else ``default_base``) plus
  the gain of each phrase the image has, plus ``jitter * (seed % 3 - 1)``; physical
  quality = that plus ``pq_offset``; text rendering N/A. So the normalized reward is
  ``(level + pq_offset / 2 - 1) / 3``. Its refined request is the user prompt plus
  the phrases the image has plus the first one it lacks, so following the critic
  raises the score until every phrase is in. Prompts containing ``[unreadable]``
  get an answer with no critique in it.
* :class:`PixelCritic` (in-process, gcr's real parser) and :class:`PixelCriticServer`
  (OpenAI-compatible HTTP, for gcr's real HTTP critic) answer from the script, each
  with an optional fixed latency, and record when each request was in flight.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import os
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl

import numpy as np
from PIL import Image

from gcr.agent.cache import ArtifactCache
from gcr.agent.components import Components
from gcr.agent.refiner import CritiqueRefiner
from gcr.critic.parser import parse_critique
from gcr.critic.schema import Critique, Dimension
from gcr.dev.mock_critic import render_critique
from gcr.errors import CriticUnavailableError, CritiqueParseError, GeneratorError
from gcr.generators.base import GenerationRequest, GenerationResult
from gcr.task import Task
from stubs.critic_server import RecordedRequest, StubCriticServer, StubReply

PHRASES: tuple[str, ...] = ("golden light", "sharp focus", "wide angle")
GPU = threading.Lock()
_BASE = re.compile(r"\[base ([0-9.]+)\]")
_REQUEST = re.compile(r"User (?:request|instruction): (.+)")


class PixelGenerator:
    """See the module docstring; ``model`` may carry options: ``pixel?hold=0.1&log=calls.log&task=edit``."""

    def __init__(
        self,
        model: str = "pixel",
        *,
        hold: float | None = None,
        log: str | None = None,
        task: str | None = None,
        **_: object,
    ) -> None:
        options = dict(parse_qsl(model.partition("?")[2]))
        self._model = model
        self.hold = float(hold if hold is not None else options.get("hold", 0.0))
        self.log = log or options.get("log") or os.environ.get("PIXEL_LOG")
        self._task = Task.parse(task or options.get("task", "t2i"))
        self.calls: list[tuple[str, int]] = []
        self.intervals: list[tuple[float, float]] = []
        self.active = self.peak_active = 0
        self._count = threading.Lock()

    @property
    def model_id(self) -> str:
        return self._model

    @property
    def task(self) -> Task:
        return self._task

    def generate(self, request: GenerationRequest) -> GenerationResult:
        if "[fail-gen]" in request.prompt:
            raise GeneratorError("the scripted generator refuses prompts marked [fail-gen]")
        with self._count:  # callers inside generate() at once, before the GPU lock serializes them
            self.active += 1
            self.peak_active = max(self.peak_active, self.active)
        try:
            return self._generate(request)
        finally:
            with self._count:
                self.active -= 1

    def _generate(self, request: GenerationRequest) -> GenerationResult:
        with GPU:
            start = time.monotonic()
            self.calls.append((request.prompt, request.seed))
            if self.log:
                with open(self.log, "a", encoding="utf-8") as fh:
                    fh.write(f"{request.prompt}\t{request.seed}\n")
            if self.hold:
                time.sleep(self.hold)
            images = [paint(request.prompt, seed) for seed in request.seeds()]
            self.intervals.append((start, time.monotonic()))
        return GenerationResult(images=images, seeds=request.seeds(), model_id=self.model_id, params={})


def phrase_mask(prompt: str) -> int:
    text = prompt.lower()
    return sum(1 << i for i, phrase in enumerate(PHRASES) if phrase in text)


def paint(prompt: str, seed: int) -> Image.Image:
    digest = hashlib.sha256(f"{prompt}|{seed}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    pixels = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    pixels[0, 0] = (phrase_mask(prompt), seed % 256, 77)
    return Image.fromarray(pixels, "RGB")


def read_pixel(image: Image.Image) -> tuple[int, int]:
    """(phrase mask, seed % 256) painted by :func:`paint`."""
    r, g, _ = image.convert("RGB").getpixel((0, 0))
    return int(r), int(g)


@dataclass
class PixelScript:
    gains: Sequence[float] = (0.75, 0.75, 0.0)
    default_base: float = 2.0
    pq_offset: float = 0.0
    jitter: float = 0.0

    def base(self, user_prompt: str) -> float:
        match = _BASE.search(user_prompt)
        return float(match.group(1)) if match else self.default_base

    def level(self, user_prompt: str, mask: int, seed: int) -> float:
        gain = sum(g for i, g in enumerate(self.gains) if mask >> i & 1)
        return self.base(user_prompt) + gain + self.jitter * ((seed % 3) - 1)

    def reward(self, user_prompt: str, mask: int, seed: int) -> float:
        """The normalized reward gcr will compute for this image (scores clamped to 1-4)."""
        level = self.level(user_prompt, mask, seed)
        tf = min(4.0, max(1.0, level))
        pq = min(4.0, max(1.0, level + self.pq_offset))
        return ((tf + pq) / 2 - 1) / 3

    def refined(self, user_prompt: str, mask: int) -> str:
        have = [p for i, p in enumerate(PHRASES) if mask >> i & 1]
        missing = [p for i, p in enumerate(PHRASES) if not mask >> i & 1]
        return ", ".join([user_prompt, *have, *missing[:1]])

    def answer(self, task: Task, user_prompt: str, image: Image.Image) -> str:
        if "[unreadable]" in user_prompt:
            return "I would rather not judge this picture."
        mask, seed = read_pixel(image)
        level = self.level(user_prompt, mask, seed)
        scores = {
            Dimension.TEXT_FAITHFULNESS: level,
            Dimension.IMAGE_FAITHFULNESS: level,
            Dimension.PHYSICAL_QUALITY: level + self.pq_offset,
            Dimension.TEXT_RENDERING: None,
        }
        return render_critique(
            task,
            {d: None if v is None else min(4.0, max(1.0, v)) for d, v in scores.items()},
            why=lambda dim, score: "Scripted.",
            analysis="A scripted request.",
            summary=f"level {level:.2f}.",
            comment="Add the next phrase.",
            refined=self.refined(user_prompt, mask),
        )


@dataclass
class PixelCritic:
    """In-process critic over a :class:`PixelScript`, with an optional fixed latency."""

    script: PixelScript = field(default_factory=PixelScript)
    latency: float = 0.0
    #: Every call after this many raises CriticUnavailableError (a server that went away).
    fail_after: int | None = None
    intervals: list[tuple[float, float]] = field(default_factory=list)
    calls: int = 0

    @property
    def model_id(self) -> str:
        return "pixel-critic"

    def cache_identity(self, mode: str, task: Task | str) -> str:
        return f"pixel-critic:{mode}:{Task.parse(task).value}"

    async def acritique(
        self,
        prompt: str,
        image: Image.Image,
        *,
        sources: Sequence[Image.Image] = (),
        task: Task | str | None = None,
    ) -> Critique:
        start = time.monotonic()
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise CriticUnavailableError("the critic server stopped answering (scripted)")
        if self.latency:
            await asyncio.sleep(self.latency)
        kind = Task.parse(task) if task is not None else (Task.EDIT if sources else Task.T2I)
        text = self.script.answer(kind, prompt, image)
        self.intervals.append((start, time.monotonic()))
        try:
            return parse_critique(text, kind)
        except CritiqueParseError:
            raise CritiqueParseError("the critic's answer has no readable critique", text) from None


class PixelCriticServer(StubCriticServer):
    """The same script behind an OpenAI-compatible server on 127.0.0.1, with a fixed latency."""

    def __init__(self, script: PixelScript | None = None, latency: float = 0.0) -> None:
        super().__init__(models=("pixel-critic",))
        self.script = script or PixelScript()
        self.latency = latency
        self.responder = self._respond

    def _respond(self, request: RecordedRequest) -> StubReply:
        urls = request.image_urls()
        match = _REQUEST.search(request.user_text())
        if not urls or match is None:
            return StubReply.error(400, "expected a pointwise critique request with an image")
        payload = urls[-1].split(",", 1)[1]
        with Image.open(io.BytesIO(base64.b64decode(payload))) as img:
            image = img.convert("RGB")
        task = Task.EDIT if len(urls) > 1 else Task.T2I
        return StubReply.ok(self.script.answer(task, match.group(1).strip(), image), delay=self.latency)


def components(generator: PixelGenerator, critic: object, cache_dir: Path | None = None) -> Components:
    return Components(
        generator=generator,
        critic=critic,  # type: ignore[arg-type]
        refiner=CritiqueRefiner(),
        cache=None if cache_dir is None else ArtifactCache(cache_dir),
    )


def write_jsonl(path: Path, rows: Sequence[dict]) -> Path:
    import json

    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path
