"""A scripted critic behind an OpenAI-compatible API: ``gcr dev mock-critic`` and ``gcr demo``.

It lets anyone watch the whole Generate-Critique-Refine loop without a GPU: gcr's
real HTTP critic client talks to it exactly as to vLLM, and its answers follow the
RationalRewards critique layout (docs/critique-format.md), so gcr's real parser reads
them. It does **not** look at images the way a model would. Its scores follow
fixed, stated rules:

1. A request (the text after ``User request:`` / ``User instruction:`` in gcr's
   built-in critic templates) is judged on a list of wanted details
   (:data:`WANTED_DETAILS`). A detail the request already names counts from the start.
2. The critic remembers, per request, each distinct image it was shown (by pixel
   digest) in order of arrival. The image numbered k (0, 1, 2, ...) is taken to
   follow k rounds of its advice: it has the details the request names plus the
   first k it lacks. So a refine loop that follows the refined request, one new
   image per round, scores higher every round; an image judged again scores the same.
3. Text faithfulness = ``base`` + ``gain`` per detail present; image faithfulness
   (edits) the same; physical and visual quality = that + ``pq_offset``; text
   rendering N/A unless the request quotes text (then like text faithfulness).
   Each score moves by ``jitter`` x (-1, 0 or +1), picked by the image's digest,
   and is clamped to 1-4.
4. The refined request is the request plus the details the image has plus the next
   one it lacks (unchanged once it has them all).
5. A request with no image but a ``<current_prompt>`` block (gcr's LLM refiner)
   gets ``<prompt>`` + that prompt with the next missing detail.

Pairwise comparisons and custom critic templates are not understood: such a
request gets an HTTP 400 saying so.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image

from gcr.critic.schema import TASK_DIMENSIONS, Dimension
from gcr.images import image_digest
from gcr.task import Task

logger = logging.getLogger(__name__)

#: The name the mock serves its model under (visible in every run folder and report).
MODEL_NAME = "gcr-mock-critic-scripted"
WANTED_DETAILS: tuple[str, ...] = (
    "soft morning light",
    "sharp focus",
    "balanced composition",
    "fine texture",
)

_REQUEST = re.compile(r"^User (request|instruction): (.*)\n\n[^\n]*image[^\n]*:\s*$", re.DOTALL)
_CURRENT = re.compile(r"<current_prompt>\s*(.*?)\s*</current_prompt>", re.DOTALL)
_QUOTED = re.compile(r"[\"“][^\"”]+[\"”]")


def render_critique(
    task: Task,
    scores: Mapping[Dimension, float | None],
    *,
    why: Callable[[Dimension, float | None], str],
    analysis: str,
    summary: str,
    comment: str,
    refined: str,
) -> str:
    """A pointwise critique in the RationalRewards layout (docs/critique-format.md) for ``task``'s dimensions.

    Scores are written with up to four decimals (``3.5``, ``2.75``), ``None`` as ``N/A``.
    """
    blocks = []
    for number, dim in enumerate(TASK_DIMENSIONS[task], start=1):
        score = scores.get(dim)
        shown = "N/A" if score is None else f"{round(score, 4):g}"
        blocks.append(f"{number}. {dim.header}:\n## Justification: {why(dim, score)}\n## Score: {shown}\n")
    return (
        f"# User Request Analysis\n{analysis}\n\n# Detailed Judgement\n"
        + "\n".join(blocks)
        + f"\n# Summary: {summary}\n\n# User Request Refinement:\n"
        f"## Refinement Comments: {comment}\n## Refined Request: {refined}\n"
    )


@dataclass
class MockCriticRules:
    """The scoring rules of the module docstring, with the memory of images seen per request."""

    wanted: Sequence[str] = WANTED_DETAILS
    base: float = 1.5
    gain: float = 0.5
    pq_offset: float = 0.25
    jitter: float = 0.1
    _seen: dict[str, list[str]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def image_number(self, request: str, digest: str) -> int:
        """0 for the first distinct image of ``request``, 1 for the second, ... (stable per image)."""
        with self._lock:
            seen = self._seen.setdefault(request, [])
            if digest not in seen:
                seen.append(digest)
            return seen.index(digest)

    def details(self, text: str, followed: int = 0) -> tuple[list[str], list[str]]:
        """(present, missing) wanted details of ``text`` after ``followed`` rounds of advice."""
        lowered = text.lower()
        named = [d for d in self.wanted if d in lowered]
        missing = [d for d in self.wanted if d not in lowered]
        return named + missing[:followed], missing[followed:]

    def answer(self, task: Task, request: str, image: Image.Image) -> str:
        digest = image_digest(image)
        number = self.image_number(request, digest)
        present, missing = self.details(request, number)
        shift = self.jitter * (int(digest[:8], 16) % 3 - 1)
        level = self.base + self.gain * len(present) + shift
        quoted = bool(_QUOTED.search(request))
        raw = {
            Dimension.TEXT_FAITHFULNESS: level,
            Dimension.IMAGE_FAITHFULNESS: level,
            Dimension.PHYSICAL_QUALITY: level + self.pq_offset,
            Dimension.TEXT_RENDERING: level if quoted else None,
        }
        scores = {d: None if v is None else min(4.0, max(1.0, v)) for d, v in raw.items()}

        def why(dim: Dimension, score: float | None) -> str:
            if score is None:
                return "No text was requested, so there is nothing to render."
            have = ", ".join(present) or "none of the wanted details"
            lacking = f"; it still lacks {missing[0]}" if missing else ""
            return f"Scripted: image {number + 1} of this request shows {have}{lacking}."

        refined = ", ".join([request, *[d for d in present if d not in request.lower()], *missing[:1]])
        return render_critique(
            task,
            scores,
            why=why,
            analysis="Scripted mock critic (gcr dev mock-critic): scores follow fixed rules, not the image.",
            summary=f"Scripted mock critic: {len(present)} of {len(self.wanted)} wanted details present.",
            comment=f"Ask explicitly for {missing[0]}." if missing else "Nothing to add.",
            refined=refined,
        )

    def rewrite(self, current_prompt: str) -> str:
        """The LLM refiner's answer: the prompt with its next missing detail."""
        _, missing = self.details(current_prompt)
        better = f"{current_prompt}, {missing[0]}" if missing else current_prompt
        return f"Scripted rewrite.\n<prompt>{better}</prompt>"


def _content(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    users = [m for m in messages if m.get("role") == "user"]
    content = users[-1].get("content", "") if users else ""
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content)


def _decode(url: str) -> Image.Image:
    payload = url.split(",", 1)[1]
    with Image.open(io.BytesIO(base64.b64decode(payload))) as img:
        return img.convert("RGB")


def respond(rules: MockCriticRules, body: dict[str, Any]) -> tuple[int, str]:
    """(HTTP status, answer text or error message) for one chat request."""
    parts = _content(list(body.get("messages") or []))
    texts = [p.get("text", "") for p in parts if p.get("type") == "text"]
    images = [p["image_url"]["url"] for p in parts if p.get("type") == "image_url"]
    if not images:
        current = _CURRENT.search("".join(texts))
        if current is None:
            return 400, "the mock critic needs an image to judge or a <current_prompt> to rewrite"
        return 200, rules.rewrite(current.group(1))
    match = _REQUEST.match(texts[0]) if texts else None
    if match is None or len(images) > 2:
        return 400, "the mock critic reads only gcr's built-in pointwise critic templates"
    task = Task.EDIT if match.group(1) == "instruction" else Task.T2I
    return 200, rules.answer(task, match.group(2).strip(), _decode(images[-1]))


class MockCriticServer:
    """The rules behind ``/v1/models`` and ``/v1/chat/completions`` on ``host:port`` (0: a free port)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, rules: MockCriticRules | None = None) -> None:
        self.rules = rules or MockCriticRules()
        self.requests = 0
        self._server = ThreadingHTTPServer((host, port), _handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> MockCriticServer:
        self._thread = threading.Thread(target=self._server.serve_forever, name="mock-critic", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> MockCriticServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _completion(text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-mock",
        "object": "chat.completion",
        "created": 0,
        "model": MODEL_NAME,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


def _handler(server: MockCriticServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            logger.debug("mock critic: " + format, *args)

        def _send(self, status: int, data: dict[str, Any]) -> None:
            body = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status: int, message: str) -> None:
            self._send(status, {"error": {"message": message, "type": "mock_critic", "code": status}})

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/models"):
                model = {"id": MODEL_NAME, "object": "model", "created": 0, "owned_by": "gcr"}
                self._send(200, {"object": "list", "data": [model]})
            else:
                self._error(404, "not found")

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length", "0")))
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._error(404, "not found")
                return
            try:
                body = json.loads(raw)
            except ValueError:
                self._error(400, "the request body is not JSON")
                return
            if body.get("model") != MODEL_NAME:
                wrong = body.get("model")
                self._error(404, f"The model `{wrong}` does not exist; this server serves {MODEL_NAME}")
                return
            server.requests += 1
            status, text = respond(server.rules, body)
            if status == 200:
                self._send(200, _completion(text))
            else:
                self._error(status, text)

    return Handler
