"""A scripted critic for preference-accuracy tests: known scores per pair, so accuracy is known exactly.

:class:`EvalScript` is a responder for :class:`~stubs.critic_server.StubCriticServer`.
It recognises the pair a request is about by a key written in the prompt text
(the longest table key found in the user message), and which candidate an
image is by its colour: the test datasets paint candidate A red, candidate B
blue and source images green. It answers pairwise requests (both candidates
shown) with a comparison and pointwise requests (one candidate) with a
single-image critique, both in the RationalRewards layout of
docs/critique-format.md, from the scores in its table. A pair can be scripted to fail (HTTP 500 or
an unreadable answer) until ``healthy`` is set. Every chat request is logged
as ``(key, mode, side)`` for assertions about what was asked.
"""

from __future__ import annotations

import base64
import io
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from PIL import Image

from gcr.critic.schema import TASK_DIMENSIONS
from gcr.task import Task

from .critic_server import RecordedRequest, StubReply

Scores = Mapping[str, float | None]


def _fmt(score: float | None) -> str:
    return "N/A" if score is None else f"{score:g}"


def pointwise_answer(task: Task, scores: Scores) -> str:
    """A single-image critique with the given per-dimension scores (None = N/A)."""
    lines = ["# User Request Analysis", "The request asks for a specific scene.", "", "# Detailed Judgement"]
    for i, dim in enumerate(TASK_DIMENSIONS[task], start=1):
        score = scores.get(dim.value)
        lines += [
            f"{i}. {dim.header}:",
            f"## Justification: Scripted judgement of {dim.header.lower()}.",
            f"## Score: {_fmt(score)}",
            "",
        ]
    lines += [
        "# Summary: A scripted critique.",
        "",
        "# User Request Refinement:",
        "## Refinement Comments: Be more specific.",
        "## Refined Request: The same scene, described more precisely.",
    ]
    return "\n".join(lines) + "\n"


def pairwise_answer(task: Task, scores_a: Scores, scores_b: Scores) -> str:
    """A comparison with the given scores for A and B (None = N/A on that side)."""
    lines = ["# User Request Analysis", "The request asks for a specific scene.", "", "# Detailed Judgement"]
    for i, dim in enumerate(TASK_DIMENSIONS[task], start=1):
        a, b = scores_a.get(dim.value), scores_b.get(dim.value)
        if a is None or b is None:
            winner = "N/A"
        elif a == b:
            winner = "Tie"
        else:
            winner = "Image A" if a > b else "Image B"
        lines += [
            f"{i}. {dim.header}:",
            f"## Justification: Scripted comparison of {dim.header.lower()}.",
            f"## Score A: {_fmt(a)}",
            f"## Score B: {_fmt(b)}",
            f"## Winner: {winner}",
            "",
        ]
    lines.append("# Summary: A scripted comparison.")
    return "\n".join(lines) + "\n"


def image_side(data_url: str) -> str:
    """``"A"`` (red), ``"B"`` (blue) or ``"source"`` (green), from an image data URL."""
    payload = data_url.split(",", 1)[1]
    with Image.open(io.BytesIO(base64.b64decode(payload))) as img:
        r, g, b = img.convert("RGB").resize((1, 1)).getpixel((0, 0))
    top = max(r, g, b)
    return "A" if top == r else "B" if top == b else "source"


@dataclass(frozen=True)
class ScriptedPair:
    """What the scripted critic says about one pair: scores per dimension key, or a fault."""

    task: Task
    scores_a: Scores
    scores_b: Scores
    #: None, "http500" (a server error, not retried) or "garbage" (an answer with no critique).
    fault: str | None = None


class EvalScript:
    """Responder answering from a table of :class:`ScriptedPair` keyed by a token in the prompt."""

    def __init__(self, table: Mapping[str, ScriptedPair]) -> None:
        self.table = dict(table)
        self.healthy = False
        #: Seconds each successful answer takes (a busy server).
        self.delay = 0.0
        self.log: list[tuple[str, str, str]] = []
        self._lock = threading.Lock()

    def requested_keys(self, mode: str | None = None) -> list[str]:
        return [key for key, m, _ in self.log if mode is None or m == mode]

    def __call__(self, request: RecordedRequest) -> StubReply:
        text = request.user_text()
        keys = [k for k in self.table if k in text]
        if not keys:
            return StubReply.error(400, "eval script: no known pair key in the prompt")
        key = max(keys, key=len)
        entry = self.table[key]
        sides = [image_side(url) for url in request.image_urls()]
        if "A" in sides and "B" in sides:
            mode, side = "pairwise", "".join(s for s in sides if s != "source")  # "AB", or "BA" when swapped
        elif "A" in sides or "B" in sides:
            mode, side = "pointwise", "A" if "A" in sides else "B"
        else:
            return StubReply.error(400, "eval script: no candidate image in the request")
        with self._lock:
            self.log.append((key, mode, side))
        if entry.fault and not self.healthy:
            if entry.fault == "http500":
                reply = StubReply.error(500, f"scripted failure for {key}")
                reply.headers = {"x-should-retry": "false"}
                return reply
            if entry.fault == "garbage":
                return StubReply.ok("Both pictures are nice. I cannot decide.")
            raise ValueError(f"unknown scripted fault {entry.fault!r}")
        if mode == "pairwise":
            first, second = entry.scores_a, entry.scores_b
            if side == "BA":
                first, second = second, first
            return StubReply.ok(pairwise_answer(entry.task, first, second), self.delay)
        scores = entry.scores_a if side == "A" else entry.scores_b
        return StubReply.ok(pointwise_answer(entry.task, scores), self.delay)


__all__ = [
    "EvalScript",
    "ScriptedPair",
    "image_side",
    "pairwise_answer",
    "pointwise_answer",
]
