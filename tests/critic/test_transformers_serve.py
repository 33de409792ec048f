"""A real OpenAI-compatible server: the tiny critic behind ``transformers serve``, started by the test.

The tiny critic has random weights, so it writes gibberish; what this proves is the
transport: gcr's request (system + user parts with a PNG data URL) is accepted by a
real server, a real answer comes back, and an unreadable answer surfaces as a parse
error that carries the model's raw text.
"""

from __future__ import annotations

import asyncio
import importlib.util
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from gcr.critic import Critic
from gcr.critic.backends.base import ChatRequest, Completion, SamplingParams
from gcr.critic.backends.openai_http import OpenAICompatibleBackend
from gcr.critic.serving import CriticServer, ServeConfig, find_executable
from gcr.errors import CriticResponseError, CritiqueParseError

pytestmark = pytest.mark.serve

_missing = [m for m in ("fastapi", "uvicorn") if importlib.util.find_spec(m) is None]
if _missing or find_executable("transformers") is None:
    pytest.skip(
        f"`transformers serve` is not available ({', '.join(_missing) or 'no transformers CLI'} missing): "
        "pip install 'gcr[serve]'",
        allow_module_level=True,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served_critic(tiny_critic_dir: Path) -> Iterator[tuple[CriticServer, str]]:
    config = ServeConfig(model=str(tiny_critic_dir), backend="transformers", port=free_port(), device="cpu")
    with CriticServer(config) as server:
        server.wait_ready(timeout=180, interval=0.25)
        yield server, config.model_name


def test_real_server_answers_a_multimodal_request(served_critic) -> None:
    server, model = served_critic
    backend = OpenAICompatibleBackend(server.url, model=model, timeout=120, max_retries=0)
    request = ChatRequest(
        system="You judge images.",
        parts=("Request: a red square.\nImage: ", Image.new("RGB", (48, 40), (200, 30, 30)), "\nJudge it."),
    )

    async def go() -> str:
        try:
            return await backend.complete(request, SamplingParams(max_tokens=12))
        finally:
            await backend.aclose()

    answer = asyncio.run(go())
    assert isinstance(answer, Completion) and answer.strip()
    assert answer.finish_reason in ("length", "stop")


def test_real_server_gibberish_becomes_a_parse_error_with_the_raw_text(served_critic) -> None:
    server, model = served_critic
    backend = OpenAICompatibleBackend(server.url, model=model, timeout=120, max_retries=0)
    image = Image.new("RGB", (48, 48), (20, 120, 220))

    async def go() -> None:
        async with Critic(backend, sampling=SamplingParams(max_tokens=16), max_reasks=0) as critic:
            await critic.acritique("a blue square", image)

    with pytest.raises(CritiqueParseError) as info:
        asyncio.run(go())
    assert info.value.raw_text.strip()  # the model's own words are kept, not replaced by a score
    message = str(info.value)
    assert "cut off at max_tokens=16" in message or "no readable critique" in message
    assert "answer began" in message


def test_real_server_refuses_another_model_name(served_critic) -> None:
    server, _ = served_critic
    backend = OpenAICompatibleBackend(server.url, model="some-other-model", timeout=60, max_retries=0)
    request = ChatRequest(system="", parts=("hello",))
    with pytest.raises(CriticResponseError, match=r"HTTP 4\d\d"):
        asyncio.run(backend.complete(request, SamplingParams(max_tokens=4)))
