"""A scripted OpenAI-compatible images server for tests and benchmarks.

It runs in a background thread on 127.0.0.1 (random port) and answers
``POST /v1/images/generations`` (JSON body) and ``POST /v1/images/edits``
(multipart form) with base64 PNGs:

* a generation is a flat colour derived from the prompt (and a ``seed`` body
  field when sent), at the requested ``size`` (64x64 when none);
* an edit is the uploaded source image itself, inverted and resized to the
  requested size, so a test can tell that the source really arrived.

Every request is recorded (path, headers, JSON body or form fields and uploaded
files). ``fail_next(status, message)`` makes the next request fail with that
HTTP status and an OpenAI-style error body.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image, ImageOps


@dataclass
class RecordedImagesRequest:
    path: str
    headers: dict[str, str]
    fields: dict[str, Any]
    files: dict[str, list[bytes]] = field(default_factory=dict)


class StubImagesServer:
    """Context manager: ``with StubImagesServer() as stub: ... stub.base_url ...``."""

    def __init__(self) -> None:
        self.requests: list[RecordedImagesRequest] = []
        self._failures: deque[tuple[int, str]] = deque()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def fail_next(self, status: int, message: str) -> None:
        with self._lock:
            self._failures.append((status, message))

    def __enter__(self) -> StubImagesServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # ------------------------------------------------------------------ handler

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                if self.path.endswith("/images/generations"):
                    record = RecordedImagesRequest(self.path, headers, json.loads(body or b"{}"))
                elif self.path.endswith("/images/edits"):
                    fields, files = _parse_multipart(headers.get("content-type", ""), body)
                    record = RecordedImagesRequest(self.path, headers, fields, files)
                else:
                    self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                    return
                with stub._lock:
                    stub.requests.append(record)
                    failure = stub._failures.popleft() if stub._failures else None
                if failure is not None:
                    status, message = failure
                    self._send(status, {"error": {"message": message, "type": "invalid_request_error"}})
                    return
                self._send(200, {"created": 0, "data": [{"b64_json": b} for b in _answer(record)]})

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


def _answer(record: RecordedImagesRequest) -> list[str]:
    fields = record.fields
    n = int(fields.get("n", 1))
    size = str(fields.get("size", "64x64"))
    width, height = (int(v) for v in size.split("x"))
    if record.files:
        uploads = next(iter(record.files.values()))
        with Image.open(io.BytesIO(uploads[0])) as src:
            img = ImageOps.invert(src.convert("RGB")).resize((width, height))
        images = [img] * n
    else:
        key = f"{fields.get('prompt', '')}|{fields.get('seed', '')}".encode()
        digest = hashlib.sha256(key).digest()
        colors = [(digest[0], digest[1], (digest[2] + i) % 256) for i in range(n)]
        images = [Image.new("RGB", (width, height), color) for color in colors]
    out = []
    for img in images:
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        out.append(base64.b64encode(buf.getvalue()).decode("ascii"))
    return out


def _parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, Any], dict[str, list[bytes]]]:
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    fields: dict[str, Any] = {}
    files: dict[str, list[bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if part.get_filename() is not None:
            files.setdefault(str(name), []).append(payload)
        else:
            fields[str(name)] = payload.decode()
    return fields, files
