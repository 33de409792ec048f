"""The in-process transformers critic on CUDA: bf16 by default, batched answers equal single ones.

Strict equality of batched and one-by-one greedy answers is checked in fp32 with
TF32 off: there padding and attention masks are the only difference between the
two, so any mismatch is a batching bug. In bf16 (the production dtype) kernels
chosen per batch shape round differently and a near-tie token may flip, so the
bf16 test checks the real path (placement, dtype, one ``generate`` per batch,
decoded answers) without demanding bit-equal text.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from gpukit import GPU, gpu_count, noise_image

from gcr.critic.backends.base import ChatRequest, Completion, SamplingParams
from gcr.critic.backends.transformers_local import TransformersBackend

pytestmark = GPU

GREEDY = SamplingParams(temperature=0.0, max_tokens=24)


def _requests() -> list[ChatRequest]:
    """Different lengths and image counts, so a batch needs real left padding."""
    return [
        ChatRequest(system="You judge images.", parts=["Request: a red apple.", noise_image(0, (64, 64))]),
        ChatRequest(
            system="",
            parts=["Source:", noise_image(1, (96, 64)), "Edited:", noise_image(2, (64, 64)), "Judge it."],
        ),
        ChatRequest(
            system="You judge images.", parts=["A much longer request " * 6, noise_image(3, (64, 128))]
        ),
        ChatRequest(system="Be brief.", parts=[noise_image(4, (64, 64)), "What is shown?"]),
        ChatRequest(system="You judge images.", parts=["Compare.", noise_image(5), noise_image(6), "Which?"]),
    ]


class BatchSizes:
    """Records the batch size of every ``model.generate`` call while installed."""

    def __init__(self, model: Any) -> None:
        self.model, self.original, self.sizes = model, model.generate, []

    def __call__(self, **kwargs: Any) -> torch.Tensor:
        self.sizes.append(int(kwargs["input_ids"].shape[0]))
        return self.original(**kwargs)

    def __enter__(self) -> BatchSizes:
        self.model.generate = self
        return self

    def __exit__(self, *exc: object) -> None:
        self.model.generate = self.original


@pytest.fixture
def no_tf32() -> Iterator[None]:
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _answers(backend: TransformersBackend) -> tuple[list[Completion], list[Completion], list[int]]:
    requests = _requests()

    async def one_by_one() -> list[Completion]:
        return [await backend.complete(r, GREEDY) for r in requests]

    async def together() -> list[Completion]:
        return list(await asyncio.gather(*(backend.complete(r, GREEDY) for r in requests)))

    async def both() -> tuple[list[Completion], list[Completion]]:
        try:
            return await one_by_one(), await together()
        finally:
            await backend.aclose()

    backend.load()
    with BatchSizes(backend.model) as spy:
        single, batched = asyncio.run(both())
    return single, batched, spy.sizes


def test_critic_loads_in_bf16_on_cuda_and_answers_a_batch(tiny_critic_dir: Path) -> None:
    backend = TransformersBackend(tiny_critic_dir, max_batch_size=4, max_wait_s=0.05)
    assert backend.device.type == "cuda" and backend.dtype == torch.bfloat16  # the automatic defaults
    backend.load()
    model = backend.model
    assert model.device.type == "cuda" and model.dtype == torch.bfloat16
    assert all(p.device.type == "cuda" for p in model.parameters())
    single, batched, sizes = _answers(backend)
    assert sizes == [1, 1, 1, 1, 1, 4, 1]  # five alone, then one batch of 4 and the rest
    for answer in (*single, *batched):
        assert answer.strip() and answer.finish_reason in ("stop", "length")
    assert not backend.loaded  # aclose freed the model


def test_batched_answers_equal_single_answers_on_cuda(tiny_critic_dir: Path, no_tf32: None) -> None:
    backend = TransformersBackend(tiny_critic_dir, dtype="float32", max_batch_size=4, max_wait_s=0.05)
    single, batched, sizes = _answers(backend)
    assert sizes == [1, 1, 1, 1, 1, 4, 1]
    assert batched == single
    assert [a.finish_reason for a in batched] == [a.finish_reason for a in single]
    assert len(set(single)) == len(single)  # each caller got its own answer


@pytest.mark.skipif(gpu_count() < 2, reason="pinning the current GPU needs at least 2 CUDA GPUs to show")
def test_the_model_loads_on_the_current_gpu_even_from_the_worker_thread(tiny_critic_dir: Path) -> None:
    """The batcher loads the model in a worker thread, whose own current device would be GPU 0."""
    before = torch.cuda.current_device()
    torch.cuda.set_device(1)  # as accelerate does on DDP rank 1
    try:
        backend = TransformersBackend(tiny_critic_dir, max_batch_size=2)
    finally:
        torch.cuda.set_device(before)
    request = _requests()[0]

    async def ask() -> Completion:
        try:
            answer = await backend.complete(request, GREEDY)
            assert backend.model.device == torch.device("cuda", 1)
            return answer
        finally:
            await backend.aclose()

    assert asyncio.run(ask()).strip()
