"""The diffusers adapter, loading the tiny pipelines by path exactly as it loads real checkpoints."""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest
import torch
from gen_helpers import ALL_KINDS, EDIT_KINDS, T2I_KINDS, max_diff, source_image

from gcr.errors import GeneratorOOMError, InputError
from gcr.generators.base import GenerationRequest
from gcr.generators.diffusers_adapter import DiffusersGenerator
from gcr.generators.loading import PipelineCache
from gcr.images import image_digest
from gcr.task import Task

EXPECTED = {
    "sd": ("stable-diffusion", Task.T2I, 8),
    "flux": ("flux-dev", Task.T2I, 4),
    "flux-kontext": ("flux-kontext", Task.EDIT, 4),
    "instruct-pix2pix": ("instruct-pix2pix", Task.EDIT, 8),
}
RED, BLUE = 1, 2  # seeds of two different source images


def _request(kind: str, **overrides: Any) -> GenerationRequest:
    fields: dict[str, Any] = {"prompt": "a red cat", "width": 32, "height": 32, "steps": 2}
    if kind in EDIT_KINDS:
        fields["source_images"] = [source_image(RED)]
    fields.update(overrides)
    return GenerationRequest(**fields)


@pytest.fixture
def make(tiny_pipeline_dir, shared_cache: PipelineCache):
    def build(kind: str, **options: Any) -> DiffusersGenerator:
        return DiffusersGenerator(str(tiny_pipeline_dir(kind)), cache=shared_cache, **options)

    return build


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_family_task_and_size_multiple_are_detected(kind: str, make) -> None:
    gen = make(kind)
    family, task, multiple = EXPECTED[kind]
    assert (gen.preset.name, gen.task, gen.size_multiple()) == (family, task, multiple)
    assert gen.device == torch.device("cpu") and gen.dtype == torch.float32  # automatic CPU defaults


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_outputs_have_the_requested_size_and_count(kind: str, make) -> None:
    result = make(kind).generate(_request(kind, width=48, height=32, num_images=2))
    assert [img.size for img in result.images] == [(48, 32)] * 2
    assert all(img.mode == "RGB" for img in result.images)
    assert result.seeds == [0, 1]
    assert (result.params["width"], result.params["height"], result.params["num_images"]) == (48, 32, 2)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_seeds_reproduce_differ_and_make_image_i_of_a_batch_equal_seed_plus_i(kind: str, make) -> None:
    gen = make(kind)
    batch = gen.generate(_request(kind, seed=11, num_images=2))
    assert batch.seeds == [11, 12]
    single = gen.generate(_request(kind, seed=11)).images[0]
    again = gen.generate(_request(kind, seed=11)).images[0]
    second = gen.generate(_request(kind, seed=12)).images[0]
    assert max_diff(single, again) <= 1  # the same seed reproduces (float tolerance)
    assert max_diff(batch.images[0], single) <= 2  # image i of a batch == a single call with seed + i
    assert max_diff(batch.images[1], second) <= 2
    assert max_diff(single, second) > 10  # different seeds differ


@pytest.mark.parametrize("kind", EDIT_KINDS)
def test_edit_models_receive_and_use_the_source(kind: str, make, monkeypatch: pytest.MonkeyPatch) -> None:
    gen = make(kind)
    pipe_class = type(gen.load())
    received: list[Any] = []
    original_call = pipe_class.__call__

    @functools.wraps(original_call)  # keeps the signature the adapter reads
    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        image = kwargs.get("image")
        received.append(image[0] if isinstance(image, list) else image)
        return original_call(self, *args, **kwargs)

    monkeypatch.setattr(pipe_class, "__call__", spy)
    red = gen.generate(_request(kind, source_images=[source_image(RED)]))
    blue = gen.generate(_request(kind, source_images=[source_image(BLUE)]))
    assert max_diff(red.images[0], blue.images[0]) > 10  # the output depends on the source
    sent = received[0]
    # Kontext takes the source at its own size (within the longest edge, in model multiples);
    # InstructPix2Pix makes its output at the source's size, so the source takes the requested one.
    assert sent.size == ((48, 40) if kind == "flux-kontext" else (32, 32))
    assert image_digest(sent) == red.params["source_images"][0]["digest"]
    assert image_digest(received[1]) != image_digest(sent)


def test_edit_sources_are_resized_to_the_longest_edge_in_model_multiples(make) -> None:
    gen = make("flux-kontext", edit_longest_edge=30)
    result = gen.generate(_request("flux-kontext", width=None, height=None))
    # 48x40 scaled to a longest edge of 30 is 30x25, rounded down to multiples of 4.
    assert result.params["source_images"][0]["width"] == 28
    assert result.params["source_images"][0]["height"] == 24
    assert result.images[0].size == (28, 24)  # no size asked: the output follows the source


def test_instruct_pix2pix_output_follows_a_requested_size_through_the_source(make) -> None:
    result = make("instruct-pix2pix").generate(_request("instruct-pix2pix", width=40, height=24))
    assert result.images[0].size == (40, 24)
    assert result.params["call_defaults"] == {"image_guidance_scale": 1.5}


@pytest.mark.parametrize("kind", ["flux", "instruct-pix2pix"])
def test_progress_callback_is_called_once_per_step(kind: str, make) -> None:
    calls: list[tuple[int, int]] = []
    make(kind).generate(_request(kind, steps=3), progress=lambda step, total: calls.append((step, total)))
    assert calls == [(1, 3), (2, 3), (3, 3)]


def test_the_pipeline_is_loaded_once_across_calls_and_generators(tiny_pipeline_dir, load_counter) -> None:
    cache = PipelineCache()
    path = str(tiny_pipeline_dir("sd"))
    first = DiffusersGenerator(path, cache=cache)
    for seed in range(3):
        first.generate(_request("sd", seed=seed))
    second = DiffusersGenerator(path, cache=cache)
    second.generate(_request("sd", prompt="a blue dog"))
    assert load_counter == [path]
    assert cache.loads == 1 and second.load() is first.load()
    DiffusersGenerator(path, cache=cache, dtype="bfloat16").load()  # another dtype is another pipeline
    assert load_counter == [path, path] and cache.loads == 2


def test_the_least_recently_used_pipeline_is_dropped_beyond_the_cache_size(
    tiny_pipeline_dir, load_counter
) -> None:
    cache = PipelineCache(max_entries=1)
    sd = DiffusersGenerator(str(tiny_pipeline_dir("sd")), cache=cache)
    flux = DiffusersGenerator(str(tiny_pipeline_dir("flux")), cache=cache)
    sd.load(), flux.load(), flux.load(), sd.load()
    assert len(load_counter) == 3 and len(cache) == 1


def test_result_records_the_exact_parameters_used(make) -> None:
    result = make("flux").generate(_request("flux", seed=5, num_images=2))
    params = result.params
    assert params["steps"] == 2 and params["guidance"] == 3.5  # the flux-dev preset's guidance
    assert params["family"] == "flux-dev" and params["pipeline"] == "FluxPipeline"
    assert params["device"] == "cpu" and params["dtype"] == "float32"
    assert result.timings["generate_s"] > 0 and result.timings["total_s"] >= result.timings["generate_s"]
    record = json.loads(json.dumps(result.metadata(1)))
    assert record["seed"] == 6 and record["model_id"] == result.model_id and record["prompt"] == "a red cat"


def test_steps_default_to_the_family_preset(make, monkeypatch: pytest.MonkeyPatch) -> None:
    gen = make("flux-kontext")
    pipe_class = type(gen.load())
    seen: dict[str, Any] = {}
    original_call = pipe_class.__call__

    @functools.wraps(original_call)
    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        seen.update(kwargs)
        return original_call(self, *args, **{**kwargs, "num_inference_steps": 1})

    monkeypatch.setattr(pipe_class, "__call__", spy)
    gen.generate(_request("flux-kontext", steps=None, guidance=None))
    # 40 steps as upstream (docs/generators.md), guidance 2.5 as Black Forest Labs' default
    assert seen["num_inference_steps"] == 40 and seen["guidance_scale"] == 2.5
    assert seen["max_area"] == 32 * 32 and seen["_auto_resize"] is False
    assert len(seen["generator"]) == 1 and seen["generator"][0].initial_seed() == 0


def test_fp32_vae_inside_a_bf16_kontext_pipeline(tiny_pipeline_dir) -> None:
    gen = DiffusersGenerator(str(tiny_pipeline_dir("flux-kontext")), dtype="bfloat16", cache=PipelineCache())
    pipe = gen.load()
    assert pipe.vae.dtype == torch.float32 and pipe.transformer.dtype == torch.bfloat16
    result = gen.generate(_request("flux-kontext"))
    assert result.images[0].size == (32, 32) and result.params["fp32_vae"] is True


def test_cuda_oom_becomes_a_generator_oom_error(make) -> None:
    gen = make("flux")
    pipe = gen.load()

    def out_of_memory(*_: Any) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    handle = pipe.transformer.register_forward_pre_hook(out_of_memory)
    try:
        with pytest.raises(GeneratorOOMError, match=r"out of memory making 2 image\(s\) at 32x32.*--offload"):
            gen.generate(_request("flux", num_images=2))
    finally:
        handle.remove()
    assert gen.generate(_request("flux")).images  # the pipeline still works afterwards


@pytest.mark.parametrize("kind", T2I_KINDS)
def test_extra_arguments_reach_the_pipeline_and_unknown_ones_are_refused(kind: str, make) -> None:
    gen = make(kind)
    result = gen.generate(
        _request(kind, extra={"guidance_rescale": 0.0} if kind == "sd" else {"max_sequence_length": 16})
    )
    assert result.params["extra"]
    with pytest.raises(InputError, match="has no argument 'strength'"):
        gen.generate(_request(kind, extra={"strength": 0.5}))
    with pytest.raises(InputError, match="'generator' through the request's own fields"):
        gen.generate(_request(kind, extra={"generator": None}))
