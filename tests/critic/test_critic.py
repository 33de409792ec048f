"""The Critic: rendering, parsing, re-asking, truncation, sync/async use, identity and the factory."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import logging
from pathlib import Path

import pytest
from PIL import Image

from gcr.critic import Critic, load_critic
from gcr.critic.backends.base import ChatRequest, Completion, SamplingParams
from gcr.critic.backends.openai_http import OpenAICompatibleBackend
from gcr.critic.critic import layout_reminder
from gcr.critic.defaults import RATIONALREWARDS_EDIT, RATIONALREWARDS_T2I
from gcr.critic.schema import Critique, PairwiseCritique
from gcr.critic.templates import load_template
from gcr.errors import ConfigError, CritiqueParseError, InputError
from gcr.task import Task
from stubs.critic_server import (
    GOOD_EDIT_ANSWER,
    GOOD_PAIRWISE_T2I_ANSWER,
    GOOD_T2I_ANSWER,
    StubCriticServer,
    StubReply,
)

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def solid(color: tuple[int, int, int]) -> Image.Image:
    return Image.new("RGB", (16, 16), color)


def colors_sent(stub: StubCriticServer, index: int = 0) -> list[tuple[int, int, int]]:
    urls = stub.chat_requests[index].image_urls()
    prefix = "data:image/png;base64,"
    return [Image.open(io.BytesIO(base64.b64decode(u[len(prefix) :]))).convert("RGB").getpixel((0, 0))
            for u in urls]


def http_critic(stub: StubCriticServer, **kwargs) -> Critic:
    backend_kw = {k: kwargs.pop(k) for k in ("max_concurrency", "max_retries") if k in kwargs}
    backend = OpenAICompatibleBackend(stub.url, model="stub-critic", **backend_kw)
    return Critic(backend, **kwargs)


def run(coro):
    return asyncio.run(coro)


async def critique_once(critic: Critic, *args, **kwargs) -> Critique:
    async with critic:
        return await critic.acritique(*args, **kwargs)


def test_t2i_critique_through_the_http_backend(critic_stub: StubCriticServer) -> None:
    critic_stub.enqueue(GOOD_T2I_ANSWER)
    critique = run(critique_once(http_critic(critic_stub), "a red cube on a blue sphere", solid(RED)))

    assert critique.task is Task.T2I
    assert critique.scores == {"text_faithfulness": 3.5, "physical_quality": 3.0, "text_rendering": None}
    assert critique.refined_request.endswith("with a crisp contact shadow under studio lighting.")
    assert "\n" in critique.refined_request  # multi-line request kept whole
    assert critique.raw_text == GOOD_T2I_ANSWER and not critique.truncated and critique.warnings == []

    (sent,) = critic_stub.chat_requests
    template = load_template("pointwise", Task.T2I)
    assert sent.messages[0] == {"role": "system", "content": template.system}
    assert "a red cube on a blue sphere" in sent.user_text()
    assert colors_sent(critic_stub) == [RED]
    assert sent.body["temperature"] == pytest.approx(0.1) and sent.body["max_tokens"] == 2048


def test_sources_make_an_edit_critique_with_source_first(critic_stub: StubCriticServer) -> None:
    critic_stub.enqueue(GOOD_EDIT_ANSWER)
    critic = http_critic(critic_stub)
    critique = run(critique_once(critic, "make the car blue", solid(BLUE), sources=[solid(RED)]))
    assert critique.task is Task.EDIT
    assert critique.score("image_faithfulness") == 3.25
    assert colors_sent(critic_stub) == [RED, BLUE]


def test_pairwise_sends_source_a_b_in_order(critic_stub: StubCriticServer) -> None:
    critic_stub.enqueue(GOOD_PAIRWISE_T2I_ANSWER)

    async def go() -> PairwiseCritique:
        async with http_critic(critic_stub) as critic:
            return await critic.acompare("a red cube", solid(GREEN), solid(BLUE))

    result = run(go())
    assert isinstance(result, PairwiseCritique)
    assert [j.winner for j in result.judgements] == ["A", "B", None]
    assert result.preference() == "B"
    assert colors_sent(critic_stub) == [GREEN, BLUE]
    assert "Score A" in critic_stub.chat_requests[0].user_text()


def test_pairwise_edit_images_in_order_source_a_b(critic_stub: StubCriticServer) -> None:
    critic_stub.enqueue(GOOD_PAIRWISE_T2I_ANSWER)  # its text is irrelevant here; order is what we check
    critic = http_critic(critic_stub, max_reasks=0)

    async def go() -> None:
        async with critic:
            with contextlib.suppress(CritiqueParseError):
                await critic.acompare("make it blue", solid(GREEN), solid(BLUE), sources=[solid(RED)])

    run(go())
    assert colors_sent(critic_stub) == [RED, GREEN, BLUE]


def test_unparseable_answer_is_reasked_once(critic_stub: StubCriticServer, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="gcr.critic.critic")
    critic_stub.enqueue("I like this picture a lot!", GOOD_T2I_ANSWER)
    critique = run(critique_once(http_critic(critic_stub), "a red cube", solid(RED)))

    assert critique.score("text_faithfulness") == 3.5
    assert any("re-ask 1" in w for w in critique.warnings)
    first, second = critic_stub.chat_requests
    assert "previous answer did not follow the required layout" not in first.user_text()
    assert second.user_text().endswith(layout_reminder("pointwise", Task.T2I))
    assert colors_sent(critic_stub, 1) == [RED]  # the image goes along again
    assert "asking again with the layout restated" in caplog.text


def test_still_unparseable_after_reask_raises_with_the_last_raw_text(critic_stub: StubCriticServer) -> None:
    critic_stub.enqueue("Nice colours.", "Honestly, it is a lovely image.")
    with pytest.raises(CritiqueParseError, match=r"after 1 re-ask") as info:
        run(critique_once(http_critic(critic_stub), "a red cube", solid(RED)))
    assert info.value.raw_text == "Honestly, it is a lovely image."
    assert len(critic_stub.chat_requests) == 2


def test_reasks_can_be_disabled(critic_stub: StubCriticServer) -> None:
    critic_stub.enqueue("no scores here")
    with pytest.raises(CritiqueParseError, match="re-asking is disabled") as info:
        run(critique_once(http_critic(critic_stub, max_reasks=0), "a red cube", solid(RED)))
    assert info.value.raw_text == "no scores here"
    assert len(critic_stub.chat_requests) == 1


def test_length_cutoff_marks_the_critique_truncated(critic_stub: StubCriticServer) -> None:
    critic_stub.enqueue(StubReply.length(GOOD_T2I_ANSWER))
    critique = run(critique_once(http_critic(critic_stub), "a red cube", solid(RED)))
    assert critique.truncated
    assert any("cut off at max_tokens=2048" in w for w in critique.warnings)
    assert critique.score("physical_quality") == 3.0  # what was read is kept


def test_partial_answer_cut_off_keeps_what_was_read(critic_stub: StubCriticServer) -> None:
    critic_stub.enqueue(StubReply.length(GOOD_T2I_ANSWER[:300]))
    critique = run(critique_once(http_critic(critic_stub), "a red cube", solid(RED)))
    assert critique.truncated and critique.score("text_faithfulness") == 3.5
    assert len(critic_stub.chat_requests) == 1


def test_cut_off_before_any_score_is_not_reasked(critic_stub: StubCriticServer) -> None:
    critic_stub.enqueue(StubReply.length("# User Request Analysis\nThe user wants a cube and"))
    sampling = SamplingParams(max_tokens=12)
    with pytest.raises(CritiqueParseError, match=r"cut off at max_tokens=12.*--max-tokens") as info:
        run(critique_once(http_critic(critic_stub, sampling=sampling), "a red cube", solid(RED)))
    assert info.value.raw_text.startswith("# User Request Analysis")
    assert len(critic_stub.chat_requests) == 1
    assert critic_stub.chat_requests[0].body["max_tokens"] == 12


def test_sync_calls_share_one_loop_and_work_repeatedly(critic_stub: StubCriticServer) -> None:
    critic_stub.enqueue(GOOD_T2I_ANSWER, GOOD_PAIRWISE_T2I_ANSWER)
    with http_critic(critic_stub) as critic:
        first = critic.critique("a red cube", solid(RED))
        second = critic.compare("a red cube", solid(RED), solid(BLUE))
    assert first.score("text_faithfulness") == 3.5
    assert second.preference() == "B"


def test_sync_call_inside_a_running_loop_points_to_the_async_api(critic_stub: StubCriticServer) -> None:
    critic = http_critic(critic_stub)

    async def go() -> None:
        critic.critique("a red cube", solid(RED))

    with pytest.raises(RuntimeError, match=r"await critic.acritique"):
        run(go())
    assert critic_stub.chat_requests == []


def test_concurrent_critiques_respect_the_backend_limit(critic_stub: StubCriticServer) -> None:
    critic_stub.responder = lambda request: StubReply.ok(GOOD_T2I_ANSWER, delay=0.1)
    critic = http_critic(critic_stub, max_concurrency=2)

    async def go() -> list[Critique]:
        async with critic:
            return await asyncio.gather(*(critic.acritique("a red cube", solid(RED)) for _ in range(6)))

    results = run(go())
    assert [r.score("text_faithfulness") for r in results] == [3.5] * 6
    assert critic_stub.max_in_flight == 2


def test_custom_template_is_used_and_changes_the_identity(
    critic_stub: StubCriticServer, tmp_path: Path
) -> None:
    custom = tmp_path / "mine.md"
    custom.write_text(
        "<!-- system -->\nYou are a strict critic.\n<!-- user -->\nRequest: {request}\n<image:candidate>\n"
        + layout_reminder("pointwise", Task.T2I)
    )
    default = http_critic(critic_stub)
    mine = http_critic(critic_stub, templates={("pointwise", "t2i"): custom})
    assert mine.template_digest("pointwise", "t2i") != default.template_digest("pointwise", "t2i")
    assert mine.cache_identity("pointwise", "t2i") != default.cache_identity("pointwise", "t2i")
    assert mine.template_digest("pointwise", "edit") == default.template_digest("pointwise", "edit")
    critic_stub.enqueue(GOOD_T2I_ANSWER)
    run(critique_once(mine, "a red cube", solid(RED)))
    assert critic_stub.chat_requests[0].messages[0]["content"] == "You are a strict critic."


def test_cache_identity_tracks_model_and_sampling(critic_stub: StubCriticServer) -> None:
    base = http_critic(critic_stub)
    same = http_critic(critic_stub)
    hotter = http_critic(critic_stub, sampling=SamplingParams(temperature=0.7))
    other_model = Critic(OpenAICompatibleBackend(critic_stub.url, model="another"))
    ident = base.cache_identity("pointwise", Task.T2I)
    assert ident == same.cache_identity("pointwise", "t2i")
    assert ident != hotter.cache_identity("pointwise", Task.T2I)
    assert ident != other_model.cache_identity("pointwise", Task.T2I)
    assert ident != base.cache_identity("pairwise", Task.T2I)
    assert base.model_id == "stub-critic"


def test_template_given_for_the_wrong_slot_is_refused(critic_stub: StubCriticServer) -> None:
    pairwise = load_template("pairwise", Task.T2I)
    with pytest.raises(ConfigError, match="pairwise t2i template but was given for pointwise t2i"):
        http_critic(critic_stub, templates={("pointwise", "t2i"): pairwise})
    with pytest.raises(ConfigError, match="unknown critique mode"):
        http_critic(critic_stub, templates={("listwise", "t2i"): pairwise})


def test_bad_inputs_fail_before_any_request(critic_stub: StubCriticServer) -> None:
    critic = http_critic(critic_stub)
    with pytest.raises(InputError, match="unknown task"):
        critic.critique("a cube", solid(RED), task="video")
    with pytest.raises(InputError, match="request is empty"):
        critic.critique("   ", solid(RED))
    with pytest.raises(InputError, match="source image"):
        critic.critique("make it blue", solid(RED), task="edit")
    critic.close()
    assert critic_stub.chat_requests == []


class _TextBackend:
    """A backend that answers plain ``str`` (no finish reason), as third-party backends may."""

    model_id = "plain"

    def __init__(self, text: str) -> None:
        self.text = text
        self.closed = False

    async def complete(self, request: ChatRequest, sampling: SamplingParams) -> str:
        return self.text

    async def aclose(self) -> None:
        self.closed = True


def test_plain_string_backends_work_and_are_closed() -> None:
    backend = _TextBackend(GOOD_T2I_ANSWER)
    with Critic(backend) as critic:
        critique = critic.critique("a red cube", solid(RED))
    assert not critique.truncated and critique.score("physical_quality") == 3.0
    assert backend.closed


# -- identical critiques from the HTTP and the in-process backends ------------------------------


def test_http_and_in_process_backends_give_identical_critiques(
    critic_stub: StubCriticServer, tiny_critic_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from gcr.critic.backends.transformers_local import load_local_backend

    local = load_local_backend(tiny_critic_dir, device="cpu")
    tokenizer = local.processor.tokenizer
    answer_ids = tokenizer(GOOD_EDIT_ANSWER, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(answer_ids) == GOOD_EDIT_ANSWER  # byte-level BPE round-trips the text
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")

    def scripted_generate(input_ids: torch.Tensor, **kwargs) -> torch.Tensor:
        tail = torch.tensor([[*answer_ids, eos]] * input_ids.shape[0], dtype=input_ids.dtype)
        return torch.cat([input_ids, tail], dim=1)

    monkeypatch.setattr(local.model, "generate", scripted_generate)
    critic_stub.enqueue(GOOD_EDIT_ANSWER)

    async def both() -> tuple[Critique, Critique]:
        args = ("make the car blue", solid(BLUE))
        async with Critic(local) as in_process, http_critic(critic_stub) as over_http:
            return (
                await in_process.acritique(*args, sources=[solid(RED)]),
                await over_http.acritique(*args, sources=[solid(RED)]),
            )

    from_local, from_http = run(both())
    assert from_local == from_http
    assert from_local.score("image_faithfulness") == 3.25


# -- the factory -----------------------------------------------------------------------------------


def test_load_critic_from_a_url_discovers_the_model(critic_stub: StubCriticServer) -> None:
    critic = load_critic(critic_stub.url.removesuffix("/v1"), timeout=5, max_concurrency=4)
    assert isinstance(critic.backend, OpenAICompatibleBackend)
    assert critic.model_id == "stub-critic"
    assert critic.backend.max_concurrency == 4 and critic.backend.timeout == 5


def test_load_critic_passes_sampling_and_reasks(critic_stub: StubCriticServer) -> None:
    sampling = SamplingParams(max_tokens=7)
    critic = load_critic(critic_stub.url, model="stub-critic", sampling=sampling, max_reasks=3)
    assert critic.sampling.max_tokens == 7 and critic.max_reasks == 3
    assert critic_stub.requests == []  # a given model name needs no discovery


@pytest.mark.parametrize(
    ("task", "expected"),
    [(None, RATIONALREWARDS_T2I), ("t2i", RATIONALREWARDS_T2I), ("edit", RATIONALREWARDS_EDIT)],
)
def test_default_critic_is_the_released_checkpoint(monkeypatch: pytest.MonkeyPatch, task, expected) -> None:
    import gcr.critic.backends.transformers_local as local

    seen: dict = {}

    def fake_loader(path_or_id, **kwargs):
        seen.update(path_or_id=path_or_id, **kwargs)
        return _TextBackend("")

    monkeypatch.setattr(local, "load_local_backend", fake_loader)
    critic = load_critic(None, task=task, device="cpu")
    assert seen["path_or_id"] == expected and seen["device"] == "cpu"
    assert isinstance(critic, Critic)


def test_load_critic_from_a_folder_uses_the_in_process_backend(tiny_critic_dir: Path) -> None:
    from gcr.critic.backends.transformers_local import TransformersBackend

    critic = load_critic(str(tiny_critic_dir), device="cpu")
    assert isinstance(critic.backend, TransformersBackend) and critic.backend.loaded
    critic.close()


@pytest.mark.parametrize(
    ("spec", "kwargs", "message"),
    [
        ("not a critic at all", {}, "neither an http"),
        ("http://127.0.0.1:1/v1", {"device": "cpu", "model": "m"}, "in-process"),
        ("owner/some-model", {"model": "m"}, "--model names a model on a critic server"),
    ],
)
def test_load_critic_rejects_bad_specs(spec: str, kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_critic(spec, **kwargs)


def test_load_critic_rejects_a_file(tmp_path: Path) -> None:
    f = tmp_path / "model.safetensors"
    f.write_bytes(b"x")
    with pytest.raises(ConfigError, match="is a file"):
        load_critic(str(f))


def test_completion_is_a_string() -> None:
    c = Completion("abc", "length")
    assert c == "abc" and c.truncated and Completion("abc", "stop").truncated is False
