"""A scripted PARROT teacher and predictor behind the OpenAI-compatible stub server.

:class:`ScriptedTeacher` answers the three kinds of PARROT requests with known
texts: it tells them apart by the phrases the built-in templates put in the
user message (anchoring shows the "Human verdict", projection lists "The scores
the comparison gave", the predictor reads an analysis whose "scores and verdicts
were removed") and finds the item by a marker contained in its request text.
Each (phase, item[, candidate]) has a list of answers: call N gets answer N, and
the last one repeats, so a test can script "unreadable first, good on the rerun".

The answer builders write the critic layouts by hand (with a little markdown
drift: bold headers, a preamble), independently of gcr's own formatter.

Also here: :func:`make_preferences` (a preference set of small real PNGs) and
:class:`FakeBackend` (an in-process ChatBackend with a scripted answer function)
for tests that need no HTTP.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from gcr.critic.backends.base import ChatRequest, SamplingParams
from gcr.training.parrot.data import PreferenceItem, write_preferences
from stubs.critic_server import RecordedRequest, StubCriticServer, StubReply

T2I_HEADERS = ("Text Faithfulness", "Physical and Visual Quality", "Text Rendering")
EDIT_HEADERS = ("Text Faithfulness", "Image Faithfulness", "Physical and Visual Quality", "Text Rendering")


def _headers(task: str) -> tuple[str, ...]:
    return T2I_HEADERS if task == "t2i" else EDIT_HEADERS


def _fmt(value: float | None) -> str:
    return "N/A" if value is None else f"{value}"


def pairwise_answer(
    task: str, scores: Sequence[tuple[float | None, float | None]], *, note: str = "", summary: str = ""
) -> str:
    """A teacher comparison; ``scores`` gives (A, B) per dimension in answer order."""
    lines = [
        "Let me look at both images carefully.",
        "",
        "# User Request Analysis",
        f"The request is clear. {note}".strip(),
        "",
        "**Detailed Judgement**",
    ]
    for n, (header, (a, b)) in enumerate(zip(_headers(task), scores, strict=True), start=1):
        if a is None and b is None:
            winner = "N/A"
        else:
            a2, b2 = (2.5 if a is None else a), (2.5 if b is None else b)
            winner = "Tie" if a2 == b2 else ("Image A" if a2 > b2 else "Image B")
        lines += [
            f"{n}. {header}:",
            f"## Justification: On {header.lower()}, image A shows detail {n}; image B shows detail {n + 1}.",
            f"## Score A: {_fmt(a)}",
            f"## Score B: {_fmt(b)}",
            f"## Winner: {winner}",
            "",
        ]
    lines.append(f"# Summary: {summary or 'One image serves the request better.'}")
    return "\n".join(lines) + "\n"


def pointwise_answer(
    task: str, scores: Sequence[float | None], *, refined: str = "A sharper request."
) -> str:
    """A projected single-image critique; ``scores`` per dimension in answer order."""
    lines = ["# User Request Analysis", "The request asks for a clear subject.", "# Detailed Judgement"]
    for n, (header, score) in enumerate(zip(_headers(task), scores, strict=True), start=1):
        lines += [
            f"{n}. **{header}**:",
            f"## Justification: The image handles {header.lower()} reasonably.",
            f"## Score: {_fmt(score)}",
        ]
    lines += [
        "# Summary: A reasonable image with some flaws.",
        "# User Request Refinement:",
        "## Refinement Comments: Name the missing details.",
        f"## Refined Request: {refined}",
    ]
    return "\n".join(lines) + "\n"


def predictor_answer(winner: str) -> str:
    name = {"A": "Image A", "B": "Image B", "tie": "Tie"}[winner]
    return f"The analysis points to clear differences in faithfulness.\nPreferred: {name}\n"


PHASE_MARKERS = {
    "anchor": "Human verdict:",
    "project": "The scores the comparison gave",
    "predict": "scores and verdicts were removed",
}


@dataclass
class ScriptedTeacher:
    """Known answers per (phase, item marker[, candidate]); see the module docstring."""

    answers: dict[tuple[str, ...], list[str]] = field(default_factory=dict)
    calls: Counter[tuple[str, ...]] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def script(self, phase: str, marker: str, *answers: str, candidate: str | None = None) -> None:
        key = (phase, marker) if candidate is None else (phase, marker, candidate)
        self.answers[key] = list(answers)

    def _phase(self, text: str) -> str:
        for phase, marker in PHASE_MARKERS.items():
            if marker in text:
                return phase
        raise AssertionError(f"not a PARROT request: {text[:200]!r}")

    def respond(self, request: RecordedRequest) -> StubReply:
        text = request.user_text()
        phase = self._phase(text)
        markers = [k for k in self.answers if k[0] == phase and k[1] in text]
        if phase == "project":
            candidate = "A" if "called Image A there" in text else "B"
            markers = [k for k in markers if k[2] == candidate]
        if len(markers) != 1:
            reply = StubReply.error(
                400, f"scripted teacher: {len(markers)} scripts match this {phase} request"
            )
            reply.headers = {"x-should-retry": "false"}
            return reply
        key = markers[0]
        with self._lock:
            n = self.calls[key]
            self.calls[key] += 1
        options = self.answers[key]
        return StubReply.ok(options[min(n, len(options) - 1)])


@pytest.fixture
def teacher_stub() -> Iterator[tuple[StubCriticServer, ScriptedTeacher]]:
    """A started stub server serving ``stub-teacher`` whose replies come from a :class:`ScriptedTeacher`."""
    teacher = ScriptedTeacher()
    with StubCriticServer(models=("stub-teacher",)) as server:
        server.responder = teacher.respond
        yield server, teacher


COLORS = [
    (200, 30, 30),
    (30, 200, 30),
    (30, 30, 200),
    (200, 200, 30),
    (200, 30, 200),
    (30, 200, 200),
    (120, 60, 10),
    (10, 60, 120),
    (90, 90, 90),
    (250, 250, 250),
]


def write_png(path: Path, color: tuple[int, int, int], size: tuple[int, int] = (48, 40)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", size, color)
    img.putpixel((1, 1), (0, 0, 0))
    img.save(path, format="PNG")
    return path


def make_preferences(root: Path, specs: list[dict[str, Any]]) -> Path:
    """A preference set at ``root`` with one small distinct PNG per image; returns the JSONL path."""
    items = []
    for n, spec in enumerate(specs):
        item_id = spec["id"]
        task = spec.get("task", "t2i")
        sources = []
        if task == "edit":
            src = spec.get("source", f"images/{item_id}_src.png")
            if not (root / src).exists():
                write_png(root / src, COLORS[(n + 5) % len(COLORS)], (40, 40))
            sources = [src]
        write_png(root / f"images/{item_id}_a.png", COLORS[n % len(COLORS)])
        write_png(root / f"images/{item_id}_b.png", COLORS[(n + 1) % len(COLORS)], (40, 48))
        items.append(
            PreferenceItem(
                id=item_id,
                task=task,
                request=spec["request"],
                source_images=sources,
                image_a=f"images/{item_id}_a.png",
                image_b=f"images/{item_id}_b.png",
                label=spec["label"],
                origin=spec.get("origin", "test"),
            )
        )
    return write_preferences(root, items)


class FakeBackend:
    """A ChatBackend answering from ``respond(request) -> str | Completion | Exception``."""

    def __init__(
        self, respond: Callable[[ChatRequest], Any], model_id: str = "fake-teacher", delay: float = 0.0
    ):
        self.respond = respond
        self._model_id = model_id
        self.delay = delay
        self.requests: list[ChatRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.closed = False

    @property
    def model_id(self) -> str:
        return self._model_id

    async def complete(self, request: ChatRequest, sampling: SamplingParams) -> str:
        self.requests.append(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            answer = self.respond(request)
        finally:
            self.in_flight -= 1
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def aclose(self) -> None:
        self.closed = True


def user_text(request: ChatRequest) -> str:
    return "".join(p for p in request.parts if isinstance(p, str))
