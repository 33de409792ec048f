"""The OpenAI-compatible backend against the scripted stub server: request shape and every fault."""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import socket

import pytest
from PIL import Image

from gcr.critic.backends.base import ChatBackend, ChatRequest, Completion, SamplingParams
from gcr.critic.backends.openai_http import OpenAICompatibleBackend, normalize_base_url
from gcr.errors import ConfigError, CriticResponseError, CriticUnavailableError
from stubs.critic_server import StubCriticServer, StubReply


def solid(color: tuple[int, int, int], size: tuple[int, int] = (8, 8)) -> Image.Image:
    return Image.new("RGB", size, color)


def decode_data_url(url: str) -> Image.Image:
    prefix = "data:image/png;base64,"
    assert url.startswith(prefix)
    return Image.open(io.BytesIO(base64.b64decode(url[len(prefix) :]))).convert("RGB")


def complete(backend: OpenAICompatibleBackend, request: ChatRequest, sampling: SamplingParams | None = None):
    async def go() -> str:
        try:
            return await backend.complete(request, sampling or SamplingParams())
        finally:
            await backend.aclose()

    return asyncio.run(go())


SIMPLE = ChatRequest(system="You judge images.", parts=("Judge this:", solid((255, 0, 0)), "Done."))


def test_backend_satisfies_the_protocol(critic_stub: StubCriticServer) -> None:
    assert isinstance(OpenAICompatibleBackend(critic_stub.url, model="stub-critic"), ChatBackend)


def test_request_shape_system_then_interleaved_user_parts(critic_stub: StubCriticServer) -> None:
    critic_stub.enqueue("an answer")
    src, a, b = solid((255, 0, 0)), solid((0, 255, 0)), solid((0, 0, 255))
    request = ChatRequest(
        system="You judge images.",
        parts=("Request: make it blue\nSource: ", src, "\nImage A: ", a, "\nImage B: ", b, "\nAnswer now."),
    )
    backend = OpenAICompatibleBackend(critic_stub.url, model="stub-critic")
    answer = complete(backend, request)

    assert answer == "an answer" and isinstance(answer, Completion) and not answer.truncated
    (sent,) = critic_stub.chat_requests
    body = sent.body
    assert body["model"] == "stub-critic"
    assert body["temperature"] == pytest.approx(0.1)
    assert body["max_tokens"] == 2048
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert body["messages"][0]["content"] == "You judge images."
    parts = sent.content_parts()
    kinds = ["text", "image_url", "text", "image_url", "text", "image_url", "text"]
    assert [p["type"] for p in parts] == kinds
    assert parts[0]["text"] == "Request: make it blue\nSource: "
    assert parts[-1]["text"] == "\nAnswer now."
    colors = [decode_data_url(u).getpixel((0, 0)) for u in sent.image_urls()]
    assert colors == [(255, 0, 0), (0, 255, 0), (0, 0, 255)]  # source, A, B


def test_sampling_params_are_sent(critic_stub: StubCriticServer) -> None:
    critic_stub.enqueue("ok")
    backend = OpenAICompatibleBackend(critic_stub.url, model="stub-critic")
    complete(backend, SIMPLE, SamplingParams(temperature=0.7, max_tokens=99, top_p=0.9, extra={"top_k": 5}))
    body = critic_stub.chat_requests[0].body
    assert (body["temperature"], body["max_tokens"], body["top_p"], body["top_k"]) == (0.7, 99, 0.9, 5)


def test_images_are_downscaled_to_the_pixel_budget(critic_stub: StubCriticServer) -> None:
    critic_stub.enqueue("ok", "ok")
    big = solid((10, 20, 30), (400, 200))
    request = ChatRequest(system="s", parts=("look", big))
    complete(OpenAICompatibleBackend(critic_stub.url, model="stub-critic", max_pixels=5_000), request)
    complete(OpenAICompatibleBackend(critic_stub.url, model="stub-critic", max_pixels=None), request)
    small = decode_data_url(critic_stub.chat_requests[0].image_urls()[0])
    full = decode_data_url(critic_stub.chat_requests[1].image_urls()[0])
    assert small.width * small.height <= 5_000
    assert small.width / small.height == pytest.approx(2.0, rel=0.05)
    assert full.size == (400, 200)


def test_model_is_discovered_when_exactly_one_is_served(critic_stub: StubCriticServer) -> None:
    critic_stub.enqueue("ok")
    backend = OpenAICompatibleBackend(critic_stub.url)
    assert complete(backend, SIMPLE) == "ok"
    assert backend.model_id == "stub-critic"
    assert critic_stub.requests[0].method == "GET" and critic_stub.requests[0].path == "/v1/models"
    assert critic_stub.chat_requests[0].body["model"] == "stub-critic"


def test_sync_discovery_and_unknown_model_id() -> None:
    with StubCriticServer(models=("only-one",)) as stub:
        backend = OpenAICompatibleBackend(stub.url)
        with pytest.raises(Exception, match="not known yet"):
            _ = backend.model_id
        assert backend.resolve_model_sync() == "only-one"
        assert backend.model_id == "only-one"


def test_several_served_models_need_a_choice() -> None:
    with (
        StubCriticServer(models=("critic-a", "critic-b")) as stub,
        pytest.raises(ConfigError, match=r"several models \(critic-a, critic-b\).*--model"),
    ):
        OpenAICompatibleBackend(stub.url).resolve_model_sync()


def test_unknown_model_lists_the_served_ones(critic_stub: StubCriticServer) -> None:
    backend = OpenAICompatibleBackend(critic_stub.url, model="not-there", max_retries=0)
    with pytest.raises(CriticResponseError, match=r"'not-there' is not served .*served models: stub-critic"):
        complete(backend, SIMPLE)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_down_says_how_to_start_one() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    backend = OpenAICompatibleBackend(url, model="m", max_retries=0)
    with pytest.raises(CriticUnavailableError) as info:
        complete(backend, SIMPLE)
    assert url in str(info.value) and "gcr serve critic" in str(info.value)


def test_unresolvable_host_is_unavailable() -> None:
    backend = OpenAICompatibleBackend("http://no-such-host.invalid:8000/v1", model="m", max_retries=0)
    with pytest.raises(CriticUnavailableError, match="is the server running"):
        complete(backend, SIMPLE)


def test_slow_server_times_out_with_the_timeout_named(critic_stub: StubCriticServer) -> None:
    critic_stub.enqueue(StubReply.ok("late", delay=1.5))
    backend = OpenAICompatibleBackend(critic_stub.url, model="stub-critic", timeout=0.25, max_retries=0)
    with pytest.raises(CriticUnavailableError, match=r"within the 0.25s timeout.*--timeout"):
        complete(backend, SIMPLE)


def test_http_500_then_recovery_is_retried(critic_stub: StubCriticServer) -> None:
    critic_stub.enqueue(StubReply.error(500), StubReply.error(503), "recovered")
    backend = OpenAICompatibleBackend(critic_stub.url, model="stub-critic", max_retries=2)
    assert complete(backend, SIMPLE) == "recovered"
    assert len(critic_stub.chat_requests) == 3


def test_http_500_forever_gives_up_after_the_retries(critic_stub: StubCriticServer) -> None:
    critic_stub.enqueue(StubReply.error(500, "engine exploded"), times=5)
    backend = OpenAICompatibleBackend(critic_stub.url, model="stub-critic", max_retries=2)
    with pytest.raises(CriticUnavailableError, match=r"HTTP 500 after 2 retries.*engine exploded"):
        complete(backend, SIMPLE)
    assert len(critic_stub.chat_requests) == 3


def test_invalid_json_is_a_response_error(critic_stub: StubCriticServer) -> None:
    critic_stub.enqueue(StubReply.invalid_json())
    backend = OpenAICompatibleBackend(critic_stub.url, model="stub-critic", max_retries=0)
    with pytest.raises(CriticResponseError, match="not valid JSON"):
        complete(backend, SIMPLE)


@pytest.mark.parametrize(
    ("reply", "message"),
    [(StubReply.empty(), "empty answer"), (StubReply(text="  \n "), "empty answer"),
     (StubReply.without_choices(), "no choices")],
)
def test_empty_answers_are_response_errors(
    critic_stub: StubCriticServer, reply: StubReply, message: str
) -> None:
    critic_stub.enqueue(reply)
    with pytest.raises(CriticResponseError, match=message):
        complete(OpenAICompatibleBackend(critic_stub.url, model="stub-critic"), SIMPLE)


def test_dropped_connection_is_unavailable(critic_stub: StubCriticServer) -> None:
    critic_stub.enqueue(StubReply.dropped(), times=2)
    backend = OpenAICompatibleBackend(critic_stub.url, model="stub-critic", max_retries=1)
    with pytest.raises(CriticUnavailableError, match="cannot connect"):
        complete(backend, SIMPLE)
    assert len(critic_stub.chat_requests) == 2


def test_length_finish_reason_is_reported_as_truncated(critic_stub: StubCriticServer) -> None:
    critic_stub.enqueue(StubReply.length("# User Request Analysis\nThe request asks"))
    answer = complete(OpenAICompatibleBackend(critic_stub.url, model="stub-critic"), SIMPLE)
    assert isinstance(answer, Completion)
    assert answer.truncated and answer.finish_reason == "length"
    assert answer == "# User Request Analysis\nThe request asks"


def test_too_many_images_hints_at_the_server_limit(critic_stub: StubCriticServer) -> None:
    critic_stub.enqueue(StubReply.error(400, "At most 1 image(s) may be provided in one prompt."))
    with pytest.raises(CriticResponseError, match=r"HTTP 400.*At most 1 image.*--limit-mm-per-prompt"):
        complete(OpenAICompatibleBackend(critic_stub.url, model="stub-critic"), SIMPLE)


def test_bad_api_key_names_the_env_var(critic_stub: StubCriticServer) -> None:
    critic_stub.enqueue(StubReply.error(401, "invalid key"))
    with pytest.raises(CriticResponseError, match="GCR_CRITIC_API_KEY"):
        complete(OpenAICompatibleBackend(critic_stub.url, model="stub-critic"), SIMPLE)


def test_api_key_is_used_but_never_logged_or_shown(
    critic_stub: StubCriticServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk-test-very-secret-0123456789"
    monkeypatch.setenv("GCR_CRITIC_API_KEY", secret)
    caplog.set_level(logging.DEBUG)
    critic_stub.enqueue("fine", StubReply.error(500), StubReply.error(500))
    backend = OpenAICompatibleBackend(critic_stub.url, model="stub-critic", max_retries=1)
    assert complete(backend, SIMPLE) == "fine"
    with pytest.raises(CriticUnavailableError) as info:
        complete(backend, SIMPLE)
    assert critic_stub.chat_requests[0].headers.get("authorization") == f"Bearer {secret}"
    assert caplog.records, "debug logging should have produced records to check"
    for text in (caplog.text, repr(backend), str(info.value), repr(info.value)):
        assert secret not in text


def test_api_key_fallbacks(critic_stub: StubCriticServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GCR_CRITIC_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-fallback")
    critic_stub.enqueue("a", "b")
    complete(OpenAICompatibleBackend(critic_stub.url, model="stub-critic"), SIMPLE)
    monkeypatch.delenv("OPENAI_API_KEY")
    complete(OpenAICompatibleBackend(critic_stub.url, model="stub-critic"), SIMPLE)
    first, second = (r.headers.get("authorization") for r in critic_stub.chat_requests)
    # OPENAI_API_KEY is not a fallback for any server but OpenAI's own API (test_critic_credentials.py).
    assert first == second == "Bearer EMPTY"


def test_concurrency_limit_is_respected(critic_stub: StubCriticServer) -> None:
    critic_stub.responder = lambda request: StubReply.ok("ok", delay=0.15)
    backend = OpenAICompatibleBackend(critic_stub.url, model="stub-critic", max_concurrency=3)

    async def go() -> list[str]:
        try:
            return await asyncio.gather(*(backend.complete(SIMPLE, SamplingParams()) for _ in range(10)))
        finally:
            await backend.aclose()

    assert asyncio.run(go()) == ["ok"] * 10
    assert critic_stub.max_in_flight == 3


def test_backend_survives_separate_event_loops(critic_stub: StubCriticServer) -> None:
    critic_stub.enqueue("one", "two")
    backend = OpenAICompatibleBackend(critic_stub.url, model="stub-critic")
    assert asyncio.run(backend.complete(SIMPLE, SamplingParams())) == "one"
    assert asyncio.run(backend.complete(SIMPLE, SamplingParams())) == "two"


@pytest.mark.parametrize(
    ("given", "expected"),
    [("http://127.0.0.1:8000", "http://127.0.0.1:8000/v1"), ("http://h:1/v1/", "http://h:1/v1"),
     ("https://api.example.com/v1beta/openai/", "https://api.example.com/v1beta/openai")],
)
def test_base_url_normalization(given: str, expected: str) -> None:
    assert normalize_base_url(given) == expected


@pytest.mark.parametrize("bad", ["localhost:8000", "ftp://h/v1", "http://"])
def test_bad_urls_are_config_errors(bad: str) -> None:
    with pytest.raises(ConfigError, match="not an http"):
        OpenAICompatibleBackend(bad)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timeout": 0}, "timeout"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_concurrency": 0}, "concurrency"),
    ],
)
def test_bad_settings_are_config_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        OpenAICompatibleBackend("http://127.0.0.1:1/v1", **kwargs)
