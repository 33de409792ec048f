"""A scripted critic whose scores respond to the prompt an image was made from.

Refinement only pays off when a refined prompt really scores higher. A real
critic sees that in the image; this stub cannot, so the images carry their
story through a :class:`SceneBook`: :class:`RecordingGenerator` wraps any
generator and notes, for each image it returns, the prompt and seed that made
it (keyed by the image's pixel digest). The critic looks the image up there —
its "eyes" — and scores it by a :class:`PromptAwareScript`:

* the script lists *wanted* phrases, each with a gain; an image's level is
  ``base`` plus the gains of the wanted phrases in its prompt, minus the
  ``penalties`` of unwanted phrases in it, plus a small per-seed ``jitter``
  (seed % 3 - 1 times jitter) so candidates of one round differ;
* each critique's refined request is the image's prompt plus the first wanted
  phrase it still lacks (unchanged when it has them all), so following the
  critic's advice raises the score round by round;
* ``unreadable_seeds`` answer with text that has no critique in it, to exercise
  skipping; ``refinements`` override the refined request for given prompts.

The same script serves two ways: :class:`PromptAwareCritic`, an in-process
critic that renders the answer text and parses it with gcr's real parser, and
:class:`PromptAwareCriticServer`, an OpenAI-compatible HTTP server (built on
``StubCriticServer``) for gcr's real HTTP critic. Answers follow the layout of
docs/critique-format.md, written by the same renderer as gcr's scripted mock critic
(:func:`gcr.dev.mock_critic.render_critique`).
"""

from __future__ import annotations

import base64
import io
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from gcr.critic.parser import parse_critique
from gcr.critic.schema import Critique, Dimension
from gcr.dev.mock_critic import render_critique
from gcr.errors import CriticUnavailableError, CritiqueParseError
from gcr.generators.base import GenerationRequest, GenerationResult
from gcr.images import image_digest
from gcr.task import Task
from stubs.critic_server import RecordedRequest, StubCriticServer, StubReply, _make_handler, _Server

UNREADABLE = "I am sorry, I cannot judge this picture."


@dataclass(frozen=True)
class Scene:
    prompt: str
    seed: int


class SceneBook:
    """Image digest -> the prompt and seed that produced the image (thread-safe)."""

    def __init__(self) -> None:
        self._scenes: dict[str, Scene] = {}
        self._lock = threading.Lock()

    def record(self, image: Image.Image, prompt: str, seed: int) -> None:
        with self._lock:
            self._scenes[image_digest(image)] = Scene(prompt, seed)

    def lookup(self, image: Image.Image) -> Scene | None:
        with self._lock:
            return self._scenes.get(image_digest(image))

    def __len__(self) -> int:
        return len(self._scenes)


class RecordingGenerator:
    """Wraps a generator: records every image in a :class:`SceneBook` and counts calls."""

    def __init__(self, inner: Any, book: SceneBook, calls: list[tuple[str, int]] | None = None) -> None:
        self.inner = inner
        self.book = book
        self.calls: list[tuple[str, int]] = calls if calls is not None else []
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def task(self) -> Task:
        return self.inner.task

    def generate(self, request: GenerationRequest) -> GenerationResult:
        with self._lock:
            self.calls.append((request.prompt, request.seed))
        result = self.inner.generate(request)
        for image, seed in zip(result.images, result.seeds, strict=True):
            self.book.record(image, request.prompt, seed)
        return result


@dataclass
class PromptAwareScript:
    """How the stub critic scores; see the module docstring."""

    wanted: Sequence[tuple[str, float]] = (("golden light", 0.75), ("sharp focus", 0.75))
    base: float = 1.75
    pq_offset: float = 0.25
    penalties: dict[str, float] = field(default_factory=dict)
    jitter: float = 0.05
    unreadable_seeds: set[int] = field(default_factory=set)
    refinements: dict[str, str] = field(default_factory=dict)

    def level(self, prompt: str, seed: int) -> float:
        text = prompt.lower()
        value = self.base + sum(g for phrase, g in self.wanted if phrase in text)
        value -= sum(p for phrase, p in self.penalties.items() if phrase in text)
        return value + self.jitter * ((seed % 3) - 1)

    def refined(self, prompt: str) -> str:
        if prompt in self.refinements:
            return self.refinements[prompt]
        missing = [phrase for phrase, _ in self.wanted if phrase not in prompt.lower()]
        return f"{prompt}, {missing[0]}" if missing else prompt

    def answer(self, task: Task, scene: Scene | None) -> str:
        """The critic's full answer text for an image of ``scene``."""
        if scene is None:
            return "This image was not made by the recording generator; I cannot say what it shows."
        if scene.seed in self.unreadable_seeds:
            return UNREADABLE
        level = self.level(scene.prompt, scene.seed)
        missing = [phrase for phrase, _ in self.wanted if phrase not in scene.prompt.lower()]
        raw = {
            Dimension.TEXT_FAITHFULNESS: level,
            Dimension.IMAGE_FAITHFULNESS: level,
            Dimension.PHYSICAL_QUALITY: level + self.pq_offset,
            Dimension.TEXT_RENDERING: None,
        }

        def why(dim: Dimension, score: float | None) -> str:
            if score is None:
                return "No text was requested, so there is nothing to render."
            return f"The image still lacks {missing[0]}." if missing else "Everything requested is visible."

        return render_critique(
            task,
            {d: None if v is None else min(4.0, max(1.0, v)) for d, v in raw.items()},
            why=why,
            analysis="The request describes one scene to depict.",
            summary=f"Quality level {level:.2f} for this prompt.",
            comment=f"Ask explicitly for {missing[0]}." if missing else "Nothing to add.",
            refined=self.refined(scene.prompt),
        )


class PromptAwareCritic:
    """In-process critic over a :class:`PromptAwareScript` (no server).

    ``fail_after`` makes every call after that many raise :class:`CriticUnavailableError`,
    like a critic server that went down mid-run.
    """

    def __init__(self, script: PromptAwareScript, book: SceneBook, *, fail_after: int | None = None) -> None:
        self.script = script
        self.book = book
        self.fail_after = fail_after
        self.calls = 0

    @property
    def model_id(self) -> str:
        return "prompt-aware-stub"

    def cache_identity(self, mode: str, task: Task | str) -> str:
        return f"prompt-aware-stub:{mode}:{Task.parse(task).value}"

    async def acritique(
        self,
        prompt: str,
        image: Image.Image,
        *,
        sources: Sequence[Image.Image] = (),
        task: Task | str | None = None,
    ) -> Critique:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise CriticUnavailableError("the critic server stopped answering (scripted outage)")
        kind = Task.parse(task) if task is not None else (Task.EDIT if sources else Task.T2I)
        text = self.script.answer(kind, self.book.lookup(image))
        try:
            return parse_critique(text, kind)
        except CritiqueParseError:
            message = "the critic's answer has no readable critique after 1 re-ask(s)"
            raise CritiqueParseError(message, text) from None


class PromptAwareCriticServer(StubCriticServer):
    """The same script behind an OpenAI-compatible server on 127.0.0.1.

    A request with an image is a critique. A request without one is taken for a
    prompt rewrite (gcr's LLM refiner): the server finds the text between
    ``<current_prompt>`` tags and answers ``<prompt>`` + the script's refinement of it.
    ``port`` pins the port so a test can stop the server and start a new one at the
    same URL (a critic that goes down and comes back).
    """

    def __init__(
        self,
        script: PromptAwareScript,
        book: SceneBook,
        *,
        port: int = 0,
        models: tuple[str, ...] = ("stub-critic", "stub-writer"),
    ) -> None:
        super().__init__(models=models)
        self.script = script
        self.book = book
        self.requested_port = port
        self.responder = self._respond

    def start(self) -> PromptAwareCriticServer:
        self._server = _Server(("127.0.0.1", self.requested_port), _make_handler(self))
        self.requested_port = self._server.server_address[1]
        # A short poll interval, as in StubCriticServer: stop() waits for one poll (0.5 s by default).
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="prompt-aware",
            daemon=True,
        )
        self._thread.start()
        return self

    def scene_of(self, request: RecordedRequest) -> Scene | None:
        """The prompt and seed of the candidate image a chat request carries (None: no image)."""
        urls = request.image_urls()
        return self.book.lookup(_decode(urls[-1])) if urls else None

    def _respond(self, request: RecordedRequest) -> StubReply:
        urls = request.image_urls()
        if not urls:
            match = re.search(r"<current_prompt>\s*(.*?)\s*</current_prompt>", request.user_text(), re.DOTALL)
            if match is None:
                return StubReply.error(400, "neither an image to judge nor a <current_prompt> to rewrite")
            return StubReply.ok(
                f"Here is the rewrite.\n<prompt>{self.script.refined(match.group(1))}</prompt>"
            )
        # Images arrive in the order source(s), candidate: the candidate is the last one.
        image = _decode(urls[-1])
        task = Task.EDIT if len(urls) > 1 else Task.T2I
        return StubReply.ok(self.script.answer(task, self.book.lookup(image)))


def _decode(url: str) -> Image.Image:
    payload = url.split(",", 1)[1]
    with Image.open(io.BytesIO(base64.b64decode(payload))) as img:
        return img.convert("RGB")
