"""One contract, every adapter: what the refine loop, batch runs and RL rely on."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from gen_helpers import source_image

from gcr.errors import InputError
from gcr.generators.base import GenerationRequest, GenerationResult, Generator
from gcr.generators.loading import PipelineCache
from gcr.generators.registry import create_generator
from gcr.task import Task
from stubs.images_server import StubImagesServer


@dataclass
class Case:
    generator: Generator
    task: Task
    width: int
    height: int
    fields: dict[str, Any]  # adapter-specific request fields (steps, for speed)


ADAPTERS = [
    "diffusers:sd",
    "diffusers:flux",
    "diffusers:flux-kontext",
    "diffusers:instruct-pix2pix",
    "openai-images:t2i",
    "openai-images:edit",
]


@pytest.fixture(scope="module")
def stub_server() -> Iterator[StubImagesServer]:
    with StubImagesServer() as stub:
        yield stub


@pytest.fixture(scope="module")
def contract_cache() -> PipelineCache:
    return PipelineCache(max_entries=8)


@pytest.fixture(params=ADAPTERS)
def case(request, tiny_pipeline_dir, stub_server, contract_cache, monkeypatch: pytest.MonkeyPatch) -> Case:
    name, _, variant = request.param.partition(":")
    if name == "diffusers":
        gen = create_generator("diffusers", str(tiny_pipeline_dir(variant)), cache=contract_cache)
        task = Task.EDIT if variant in ("flux-kontext", "instruct-pix2pix") else Task.T2I
        return Case(gen, task, 40, 32, {"steps": 2})
    monkeypatch.setenv("GCR_CONTRACT_KEY", "k")
    gen = create_generator(
        "openai-images",
        "stub-model",
        task=variant,
        base_url=stub_server.base_url,
        api_key_env="GCR_CONTRACT_KEY",
    )
    return Case(gen, Task(variant), 40, 32, {})


def _request(case: Case, **fields: Any) -> GenerationRequest:
    base: dict[str, Any] = {"prompt": "a red cat on a table", "width": case.width, "height": case.height}
    if case.task is Task.EDIT:
        base["source_images"] = [source_image(5, (48, 40))]
    return GenerationRequest(**{**base, **case.fields, **fields})


def test_it_is_a_generator_with_identity_and_task(case: Case) -> None:
    assert isinstance(case.generator, Generator)
    assert isinstance(case.generator.model_id, str) and case.generator.model_id
    assert case.generator.task is case.task


def test_it_makes_the_requested_images_and_records_how(case: Case) -> None:
    result = case.generator.generate(_request(case, num_images=2, seed=9))
    assert isinstance(result, GenerationResult)
    assert [img.size for img in result.images] == [(case.width, case.height)] * 2
    assert all(img.mode == "RGB" for img in result.images)
    assert result.seeds == [9, 10]
    assert result.model_id == case.generator.model_id
    assert result.params["prompt"] == "a red cat on a table"
    assert all(v >= 0 for v in result.timings.values()) and "total_s" in result.timings
    for i in range(2):
        record = json.loads(json.dumps(result.metadata(i)))  # JSON-ready, one seed per image
        assert record["seed"] == 9 + i and record["model_id"] == result.model_id


def test_it_refuses_bad_input_with_input_errors(case: Case) -> None:
    bad: list[Callable[[], GenerationRequest]] = [
        lambda: _request(case, prompt=" "),
        lambda: _request(case, num_images=0),
        lambda: _request(case, width=-8, height=8),
    ]
    if case.task is Task.EDIT:
        bad.append(lambda: _request(case, source_images=[]))
    else:
        bad.append(lambda: _request(case, source_images=[source_image(1)]))
    for make in bad:
        with pytest.raises(InputError):
            case.generator.generate(make())


def test_progress_reaches_the_total(case: Case) -> None:
    calls: list[tuple[int, int]] = []
    case.generator.generate(_request(case), progress=lambda step, total: calls.append((step, total)))
    assert calls and calls[-1][0] == calls[-1][1]
    assert [step for step, _ in calls] == list(range(1, len(calls) + 1))
