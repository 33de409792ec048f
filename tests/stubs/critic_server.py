"""A scripted OpenAI-compatible chat server for tests and benchmarks.

It runs in a background thread on 127.0.0.1 (random port), answers
``GET /v1/models`` and ``POST /v1/chat/completions``, and replies from a queue
of :class:`StubReply` objects, so a test can script exactly what the critic
server says, including faults: delays, HTTP errors (N times, then recovery),
bodies that are not JSON, empty answers, ``finish_reason == "length"`` and
connections dropped without an answer. Every request is recorded (method, path,
headers, parsed JSON body) for assertions about what the client sent, and the
highest number of chat requests in flight at once is tracked.

Use the ``critic_stub`` fixture (registered in ``tests/conftest.py``) or the
class directly (``with StubCriticServer() as stub: ...``).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

#: A plain critique in the RationalRewards layout (t2i), handy as a default answer.
GOOD_T2I_ANSWER = """# User Request Analysis
The user asks for a red cube resting on a blue sphere.

# Detailed Judgement
1. Text Faithfulness:
## Justification: The cube is red and sits on a blue sphere as requested.
## Score: 3.5

2. Physical and Visual Quality:
## Justification: Lighting is consistent; the contact shadow is slightly soft.
## Score: 3.0

3. Text Rendering:
## Justification: No text was requested.
## Score: N/A

# Summary: A faithful image with a minor shading issue.

# User Request Refinement:
## Refinement Comments: Ask for a crisp contact shadow.
## Refined Request: A glossy red cube balanced on a matte blue sphere,
with a crisp contact shadow under studio lighting.
"""

#: A plain edit critique (four dimensions).
GOOD_EDIT_ANSWER = """# User Request Analysis
The instruction asks to turn the car blue and keep everything else.

# Detailed Judgement
1. Text Faithfulness:
## Justification: The car is now blue.
## Score: 4
2. Image Faithfulness:
## Justification: The street and the sky are unchanged; one sign lost its colour.
## Score: 3.25
3. Physical and Visual Quality:
## Justification: Reflections on the paint match the scene.
## Score: 3.5
4. Text Rendering:
## Justification: No text was asked for.
## Score: N/A
# Summary: A clean edit with a small loss in the background.
# User Request Refinement:
## Refinement Comments: Name what must stay unchanged.
## Refined Request: Repaint the car blue; keep the street, the signs and their colours exactly as they are.
"""

#: A plain pairwise t2i comparison where B wins overall.
GOOD_PAIRWISE_T2I_ANSWER = """# User Request Analysis
A red cube on a blue sphere.
# Detailed Judgement
1. Text Faithfulness:
## Justification: A shows a red cube on a blue sphere; B swaps the colours.
## Score A: 3.5
## Score B: 2.0
## Winner: Image A
2. Physical and Visual Quality:
## Justification: B is sharper and its shadows are right; A floats.
## Score A: 2.0
## Score B: 4.0
## Winner: Image B
3. Text Rendering:
## Justification: No text requested.
## Score A: N/A
## Score B: N/A
## Winner: N/A
# Summary: B is the better image overall despite the colour swap.
"""


@dataclass
class StubReply:
    """One scripted answer of the stub server."""

    text: str | None = None
    finish_reason: str = "stop"
    status: int = 200
    delay: float = 0.0
    raw_body: bytes | None = None
    drop: bool = False
    no_choices: bool = False
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def ok(cls, text: str, delay: float = 0.0) -> StubReply:
        return cls(text=text, delay=delay)

    @classmethod
    def length(cls, text: str) -> StubReply:
        """An answer cut off at the token limit."""
        return cls(text=text, finish_reason="length")

    @classmethod
    def error(cls, status: int = 500, message: str = "stub failure") -> StubReply:
        # A tiny Retry-After keeps the client's retry backoff fast in tests.
        body = json.dumps({"error": {"message": message, "type": "stub", "code": status}}).encode()
        return cls(status=status, raw_body=body, headers={"retry-after-ms": "5"})

    @classmethod
    def invalid_json(cls) -> StubReply:
        return cls(raw_body=b"{this is not json", headers={"content-type": "application/json"})

    @classmethod
    def empty(cls) -> StubReply:
        return cls(text="")

    @classmethod
    def without_choices(cls) -> StubReply:
        return cls(no_choices=True)

    @classmethod
    def dropped(cls) -> StubReply:
        """Close the connection without sending anything."""
        return cls(drop=True)


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list((self.body or {}).get("messages", []))

    def content_parts(self) -> list[dict[str, Any]]:
        """The parts of the (last) user message."""
        users = [m for m in self.messages if m.get("role") == "user"]
        content = users[-1]["content"] if users else []
        return [{"type": "text", "text": content}] if isinstance(content, str) else list(content)

    def image_urls(self) -> list[str]:
        return [p["image_url"]["url"] for p in self.content_parts() if p.get("type") == "image_url"]

    def user_text(self) -> str:
        return "".join(p.get("text", "") for p in self.content_parts() if p.get("type") == "text")


Responder = Callable[[RecordedRequest], StubReply]


class StubCriticServer:
    """Scripted OpenAI-compatible server; see the module docstring."""

    def __init__(self, models: tuple[str, ...] = ("stub-critic",), default: StubReply | None = None) -> None:
        self.models = list(models)
        self.default = default
        self.responder: Responder | None = None
        self.requests: list[RecordedRequest] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._queue: deque[StubReply] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- scripting -------------------------------------------------------------
    def enqueue(self, *replies: StubReply | str, times: int = 1) -> None:
        """Queue replies (a plain string is an OK answer); ``times`` repeats the whole group."""
        with self._lock:
            for _ in range(times):
                for r in replies:
                    self._queue.append(StubReply.ok(r) if isinstance(r, str) else r)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._queue.clear()
            self.max_in_flight = 0

    # -- lifecycle -------------------------------------------------------------
    @property
    def port(self) -> int:
        assert self._server is not None, "stub server not started"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """Base URL to give an OpenAI client (ends in ``/v1``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> StubCriticServer:
        handler = _make_handler(self)
        self._server = _Server(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="stub-critic", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> StubCriticServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- request handling (called from server threads) -------------------------
    def _next_reply(self, request: RecordedRequest) -> StubReply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        if self.responder is not None:
            return self.responder(request)
        if self.default is not None:
            return self.default
        reply = StubReply.error(500, "stub critic server: no scripted reply left")
        reply.headers = {"x-should-retry": "false"}
        return reply

    def _enter(self) -> None:
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)


class _Server(ThreadingHTTPServer):
    # A real server's accept backlog (uvicorn: 2048); the stdlib default of 5 drops
    # connections when dozens of clients connect at once.
    request_queue_size = 256
    daemon_threads = True


def completion_body(model: str, reply: StubReply) -> dict[str, Any]:
    """The JSON of a chat completion carrying ``reply``."""
    choices = [] if reply.no_choices else [
        {
            "index": 0,
            "message": {"role": "assistant", "content": reply.text},
            "finish_reason": reply.finish_reason,
        }
    ]
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def _make_handler(stub: StubCriticServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # keep test output clean
            return

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            merged = {"content-type": "application/json", **(headers or {})}
            for key, value in merged.items():
                self.send_header(key, value)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            stub._record(RecordedRequest("GET", self.path, _lower(self.headers), None))
            if self.path.rstrip("/").endswith("/models"):
                data = [{"id": m, "object": "model", "created": 0, "owned_by": "stub"} for m in stub.models]
                self._send(200, json.dumps({"object": "list", "data": data}).encode())
            else:
                self._send(404, b'{"error": {"message": "not found"}}')

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            request = RecordedRequest("POST", self.path, _lower(self.headers), body)
            stub._record(request)
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._send(404, b'{"error": {"message": "not found"}}')
                return
            model = (body or {}).get("model")
            if model not in stub.models:
                msg = f"The model `{model}` does not exist."
                self._send(404, json.dumps({"error": {"message": msg, "code": 404}}).encode())
                return
            reply = stub._next_reply(request)
            stub._enter()
            try:
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.drop:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                payload = reply.raw_body
                if payload is None:
                    payload = json.dumps(completion_body(model, reply)).encode()
                self._send(reply.status, payload, reply.headers)
            except (BrokenPipeError, ConnectionResetError):
                # The client gave up (e.g. its timeout fired); nothing left to answer.
                self.close_connection = True
            finally:
                stub._leave()

    return Handler


@pytest.fixture
def critic_stub() -> Iterator[StubCriticServer]:
    """A started :class:`StubCriticServer` serving one model, ``stub-critic``."""
    with StubCriticServer() as server:
        yield server


def _lower(headers: Any) -> dict[str, str]:
    """Header names in lower case, so lookups do not depend on the client's spelling."""
    return {str(k).lower(): str(v) for k, v in headers.items()}
