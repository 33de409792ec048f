"""The in-process transformers backend, run on the tiny random Qwen3-VL critic."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from gcr.critic.backends.base import ChatBackend, ChatRequest, Completion, SamplingParams
from gcr.critic.backends.transformers_local import (
    TransformersBackend,
    build_chat_messages,
    load_local_backend,
)
from gcr.errors import ConfigError, CriticError, CriticLoadError, InputError

GREEDY = SamplingParams(temperature=0.0, max_tokens=24)


def _image(i: int, size: tuple[int, int] = (64, 64)) -> Image.Image:
    return Image.new("RGB", size, (40 * i % 256, 90, 200 - 20 * i))


def _requests() -> list[ChatRequest]:
    """Requests of different lengths and image counts, so a batch needs real padding."""
    return [
        ChatRequest(system="You judge images.", parts=["Request: a red apple.", _image(0)]),
        ChatRequest(
            system="", parts=["Source:", _image(1, (96, 64)), "Edited:", _image(2), "Judge the edit."]
        ),
        ChatRequest(system="You judge images.", parts=["A much longer request " * 6, _image(3, (64, 128))]),
        ChatRequest(system="Be brief.", parts=[_image(4), "What is shown?"]),
        ChatRequest(system="You judge images.", parts=["Compare.", _image(5), _image(6), "Which is better?"]),
    ]


class GenerateSpy:
    """Wraps ``model.generate`` and records the batch size and options of every call."""

    def __init__(self, model: Any, fail: Exception | None = None) -> None:
        self.model = model
        self.original = model.generate
        self.calls: list[dict[str, Any]] = []
        self.fail = fail

    def __call__(self, **kwargs: Any) -> torch.Tensor:
        self.calls.append(
            {
                "batch": kwargs["input_ids"].shape[0],
                "grid": kwargs.get("image_grid_thw"),
                **{k: v for k, v in kwargs.items() if not isinstance(v, torch.Tensor)},
            }
        )
        if self.fail is not None:
            raise self.fail
        return self.original(**kwargs)

    def __enter__(self) -> GenerateSpy:
        self.model.generate = self
        return self

    def __exit__(self, *exc: object) -> None:
        self.model.generate = self.original


@pytest.fixture(scope="module")
def backend(tiny_critic_dir: Path) -> TransformersBackend:
    return TransformersBackend(tiny_critic_dir, max_batch_size=4, max_wait_s=0.05)


def test_is_a_chat_backend_named_by_its_source(tiny_critic_dir: Path) -> None:
    b = TransformersBackend(tiny_critic_dir)
    assert isinstance(b, ChatBackend)
    assert b.model_id == str(tiny_critic_dir)
    assert TransformersBackend(tiny_critic_dir, model_id="critic-x").model_id == "critic-x"
    assert not b.loaded  # lazy: nothing loads before the first request


def test_answers_one_request_with_text_and_images(backend: TransformersBackend) -> None:
    answer = asyncio.run(backend.complete(_requests()[0], GREEDY))
    assert isinstance(answer, Completion)
    assert len(answer.split()) >= 5
    # The tiny critic ends its turn after a full stop, as this answer does ...
    assert answer.finish_reason == "stop" and not answer.truncated
    assert answer.endswith(".") and "<|im_end|>" not in answer
    # ... and runs into max_tokens when it writes none.
    cut = asyncio.run(backend.complete(_requests()[2], GREEDY))
    assert cut.finish_reason == "length" and cut.truncated
    assert not cut.endswith(".")
    assert backend.loaded
    assert backend.model.device.type == "cpu" and backend.model.dtype == torch.float32


def test_batches_concurrent_requests_and_matches_unbatched_answers(backend: TransformersBackend) -> None:
    requests = _requests()

    async def one_by_one() -> list[Completion]:
        return [await backend.complete(r, GREEDY) for r in requests]

    async def concurrently() -> list[Completion]:
        return await asyncio.gather(*(backend.complete(r, GREEDY) for r in requests))

    with GenerateSpy(backend.model) as spy:
        single = asyncio.run(one_by_one())
    assert [c["batch"] for c in spy.calls] == [1, 1, 1, 1, 1]
    with GenerateSpy(backend.model) as spy:
        batched = asyncio.run(concurrently())
    assert [c["batch"] for c in spy.calls] == [4, 1]  # max_batch_size=4
    assert batched == single
    # Rows that stopped early were padded in the batch; their finish reasons survive.
    assert [a.finish_reason for a in batched] == [a.finish_reason for a in single]
    assert {a.finish_reason for a in batched} == {"stop", "length"}
    assert len(set(single)) == len(single)  # each caller got its own answer


def test_image_inputs_reach_the_processor_as_the_same_pixels(backend: TransformersBackend) -> None:
    """Pixels in memory go straight to the processor; bytes are decoded once, to the same pixels."""
    from gcr.image_input import ImageInput, encode_png

    request = _requests()[0]
    as_bytes = ChatRequest(
        system=request.system,
        parts=tuple(
            ImageInput.from_bytes(encode_png(p)) if isinstance(p, Image.Image) else p for p in request.parts
        ),
    )
    assert asyncio.run(backend.complete(as_bytes, GREEDY)) == asyncio.run(backend.complete(request, GREEDY))


def test_greedy_and_sampling_options_reach_generate(backend: TransformersBackend) -> None:
    request = _requests()[0]
    sampled = SamplingParams(temperature=0.7, top_p=0.9, max_tokens=5, extra={"top_k": 7})

    async def both() -> list[str]:
        return await asyncio.gather(backend.complete(request, GREEDY), backend.complete(request, sampled))

    with GenerateSpy(backend.model) as spy:
        greedy_answer, sampled_answer = asyncio.run(both())
    # Different sampling settings never share a batch.
    assert sorted((c["do_sample"], c["max_new_tokens"]) for c in spy.calls) == [(False, 24), (True, 5)]
    sampling_call = next(c for c in spy.calls if c["do_sample"])
    assert (sampling_call["temperature"], sampling_call["top_p"], sampling_call["top_k"]) == (0.7, 0.9, 7)
    assert greedy_answer and sampled_answer


def test_images_are_fitted_to_the_pixel_budget(tiny_critic_dir: Path) -> None:
    big = ChatRequest(system="", parts=["Look:", _image(1, (128, 128))])
    small_budget = TransformersBackend(tiny_critic_dir, max_pixels=32 * 32)
    no_budget = TransformersBackend(tiny_critic_dir, max_pixels=None)
    grids = []
    for b in (small_budget, no_budget):
        with GenerateSpy(b.model) as spy:
            asyncio.run(b.complete(big, GREEDY))
        grids.append(spy.calls[0]["grid"].tolist())
    # 32×32 px is 2×2 patches of 16 px; 128×128 px is 8×8.
    assert grids == [[[1, 2, 2]], [[1, 8, 8]]]


def test_a_failing_batch_fails_each_caller_with_a_critic_error(backend: TransformersBackend) -> None:
    async def two() -> list[object]:
        requests = _requests()[:2]
        return await asyncio.gather(*(backend.complete(r, GREEDY) for r in requests), return_exceptions=True)

    with GenerateSpy(backend.model, fail=RuntimeError("shape mismatch")):
        errors = asyncio.run(two())
    assert len(errors) == 2
    for err in errors:
        assert isinstance(err, CriticError)
        assert "failed on a batch of 2: RuntimeError: shape mismatch" in str(err)
    assert errors[0] is not errors[1]


def test_bad_requests_and_options_are_refused_before_queueing(backend: TransformersBackend) -> None:
    with pytest.raises(InputError, match="no content"):
        asyncio.run(backend.complete(ChatRequest(system="s", parts=[]), GREEDY))
    with pytest.raises(InputError, match="text or PIL images"):
        asyncio.run(backend.complete(ChatRequest(system="s", parts=[b"bytes"]), GREEDY))  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="stop_words"):
        asyncio.run(backend.complete(_requests()[0], SamplingParams(extra={"stop_words": ["x"]})))
    with pytest.raises(ConfigError, match="update"):  # a GenerationConfig method, not an option
        asyncio.run(backend.complete(_requests()[0], SamplingParams(extra={"update": 1})))
    with pytest.raises(ConfigError, match="temperature"):  # set from SamplingParams, not extra
        asyncio.run(backend.complete(_requests()[0], SamplingParams(extra={"temperature": 1.0})))
    with pytest.raises(InputError, match="max_tokens"):
        asyncio.run(backend.complete(_requests()[0], SamplingParams(max_tokens=0)))


def test_chat_messages_keep_images_in_place() -> None:
    img = _image(0)
    messages = build_chat_messages(ChatRequest(system="Judge.", parts=["before", img, "", "after"]))
    assert messages == [
        {"role": "system", "content": [{"type": "text", "text": "Judge."}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "before"},
                {"type": "image"},
                {"type": "text", "text": "after"},
            ],
        },
    ]
    assert build_chat_messages(ChatRequest(system="", parts=["x"]))[0]["role"] == "user"


def test_aclose_frees_the_model_and_refuses_new_requests(tiny_critic_dir: Path) -> None:
    b = load_local_backend(tiny_critic_dir, max_batch_size=2)
    assert b.loaded  # the factory loads eagerly
    asyncio.run(b.aclose())
    assert not b.loaded
    with pytest.raises(CriticError, match="closed"):
        asyncio.run(b.complete(_requests()[0], GREEDY))


def test_missing_folder_is_a_clear_load_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-critic"
    with pytest.raises(CriticLoadError, match="critic model folder not found"):
        load_local_backend(missing)
    b = TransformersBackend(missing)
    with pytest.raises(CriticLoadError, match=str(missing)):
        asyncio.run(b.complete(_requests()[0], GREEDY))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CriticLoadError, match=r"no config\.json"):
        load_local_backend(tmp_path / "empty")


def test_a_text_only_model_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "text-only"
    folder.mkdir()
    (folder / "config.json").write_text(
        json.dumps({"model_type": "llama", "hidden_size": 16, "num_attention_heads": 2})
    )
    with pytest.raises(CriticLoadError, match="'llama' model, not a vision-language"):
        load_local_backend(folder)
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 16}))
    with pytest.raises(CriticLoadError, match="cannot load critic model"):
        load_local_backend(folder)
