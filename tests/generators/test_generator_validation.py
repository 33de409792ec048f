"""Every bad input is refused up front with a message that says what to fix."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from gen_helpers import source_image
from PIL import Image

from gcr.errors import ConfigError, GeneratorLoadError, ImageError, InputError
from gcr.generators.base import GenerationRequest
from gcr.generators.diffusers_adapter import DiffusersGenerator
from gcr.generators.loading import PipelineCache, resolve_source
from gcr.generators.registry import create_generator
from gcr.images import load_image
from gcr.task import Task


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"prompt": ""}, "the prompt is empty"),
        ({"prompt": "   \n"}, "the prompt is empty"),
        ({"width": -64, "height": 64}, "width must be a positive number of pixels, got -64"),
        ({"width": 64, "height": 0}, "height must be a positive number of pixels, got 0"),
        ({"width": 64}, "give both width and height, or neither"),
        ({"num_images": 0}, "num_images must be at least 1, got 0"),
        ({"num_images": -2}, "num_images must be at least 1, got -2"),
        ({"steps": 0}, "steps must be at least 1, got 0"),
        ({"guidance": -1.0}, "guidance must be a number >= 0"),
        ({"guidance": math.nan}, "guidance must be a number >= 0"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"negative_prompt": 3}, "negative_prompt must be text"),
        ({"source_images": ["photo.png"]}, "source_images[0] is a str, not a PIL image"),
    ],
)
def test_request_refuses_bad_fields(fields: dict[str, Any], message: str) -> None:
    request = GenerationRequest(**{"prompt": "a cat", **fields})
    with pytest.raises(InputError) as info:
        request.validate()
    assert message in str(info.value)


def test_size_must_be_a_multiple_the_model_needs_and_the_message_suggests_two() -> None:
    request = GenerationRequest("a cat", width=1000, height=1024)
    request.validate(size_multiple=8)
    with pytest.raises(
        InputError, match="width 1000 is not a multiple of 16, which this model needs: use 992 or 1008"
    ):
        request.validate(size_multiple=16)


def test_source_images_must_match_the_task() -> None:
    image = source_image(1)
    with pytest.raises(InputError, match="edits an image and needs a source image"):
        GenerationRequest("make it blue").validate(task=Task.EDIT)
    with pytest.raises(InputError, match="generates from text only and takes no source image"):
        GenerationRequest("a cat", source_images=[image]).validate(task=Task.T2I)
    with pytest.raises(InputError, match="at most 1 source image"):
        GenerationRequest("merge them", source_images=[image, image]).validate(
            task=Task.EDIT, max_source_images=1
        )
    GenerationRequest("make it blue", source_images=[image]).validate(task=Task.EDIT, max_source_images=1)


@pytest.fixture
def cache() -> PipelineCache:
    return PipelineCache()


@pytest.mark.parametrize(
    ("kind", "fields", "error", "message"),
    [
        ("sd", {"width": 36, "height": 32}, InputError, "width 36 is not a multiple of 8"),
        ("flux", {"width": 32, "height": 34}, InputError, "height 34 is not a multiple of 4"),
        ("flux-kontext", {}, InputError, "needs a source image"),
        ("instruct-pix2pix", {}, InputError, "needs a source image"),
        ("sd", {"source_images": [source_image(1)]}, InputError, "takes no source image"),
        ("flux", {"num_images": 0}, InputError, "num_images must be at least 1"),
        ("flux", {"prompt": ""}, InputError, "the prompt is empty"),
        ("sd", {"width": -32, "height": 32}, InputError, "width must be a positive number"),
        (
            "flux",
            {"negative_prompt": "blurry"},
            InputError,
            "ignores a negative prompt unless true_cfg_scale",
        ),
        ("flux", {"extra": {"strength": 0.3}}, InputError, "FluxPipeline has no argument 'strength'"),
    ],
)
def test_the_adapter_refuses_bad_requests_before_running(
    kind: str, fields: dict[str, Any], error: type[Exception], message: str, tiny_pipeline_dir, cache
) -> None:
    gen = DiffusersGenerator(str(tiny_pipeline_dir(kind)), cache=cache)
    request = GenerationRequest(**{"prompt": "a red cat", "width": 32, "height": 32, "steps": 1, **fields})
    with pytest.raises(error, match=message):
        gen.generate(request)


def test_a_task_error_is_raised_before_any_weights_load(tiny_pipeline_dir, load_counter) -> None:
    gen = DiffusersGenerator(str(tiny_pipeline_dir("flux-kontext")), cache=PipelineCache())
    with pytest.raises(InputError):
        gen.generate(GenerationRequest("make it blue"))
    assert load_counter == []


def test_unknown_model_names_list_the_family_aliases() -> None:
    with pytest.raises(InputError) as info:
        resolve_source("fluxx")
    assert "unknown model 'fluxx'" in str(info.value)
    assert "flux-kontext" in str(info.value) and "qwen-image-edit" in str(info.value)
    assert resolve_source("flux-schnell") == "black-forest-labs/FLUX.1-schnell"
    assert resolve_source("someone/some-model") == "someone/some-model"


def test_missing_or_unusable_model_folders_are_refused(tmp_path: Path) -> None:
    with pytest.raises(GeneratorLoadError, match="model folder not found"):
        resolve_source(str(tmp_path / "nope"))
    with pytest.raises(GeneratorLoadError, match=r"no model_index\.json"):
        resolve_source(str(tmp_path))
    single = tmp_path / "model.safetensors"
    single.write_bytes(b"")
    with pytest.raises(GeneratorLoadError, match="single file"):
        resolve_source(str(single))


def test_unreadable_source_paths_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="image file not found"):
        load_image(tmp_path / "missing.png")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(ImageError, match="not an image"):
        load_image(broken)


def test_unknown_generator_names_list_the_known_ones() -> None:
    with pytest.raises(
        InputError, match=r"unknown generator 'dalle': known generators are .*diffusers.*openai-images"
    ):
        create_generator("dalle", "x")


def test_bad_devices_dtypes_and_offload_are_configuration_errors(tiny_pipeline_dir) -> None:
    path = str(tiny_pipeline_dir("sd"))
    with pytest.raises(ConfigError, match="unknown dtype 'float8'"):
        DiffusersGenerator(path, dtype="float8")
    with pytest.raises(ConfigError, match="unknown device"):
        DiffusersGenerator(path, device="tpu-ish")
    gen = DiffusersGenerator(path, device="cpu", offload=True, cache=PipelineCache())
    with pytest.raises(ConfigError, match="drop --offload"):
        gen.load()
    with pytest.raises(InputError, match="unknown model family 'floox'"):
        DiffusersGenerator(path, family="floox")


def test_a_non_image_in_source_images_is_named_by_index() -> None:
    request = GenerationRequest("edit", source_images=[source_image(1), Image.new("RGB", (8, 8)), b"png"])
    with pytest.raises(InputError, match=r"source_images\[2\] is a bytes"):
        request.validate()


def test_a_local_folder_named_like_a_family_wins_over_the_alias(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "flux-dev"
    folder.mkdir()
    (folder / "model_index.json").write_text('{"_class_name": "FluxPipeline"}')
    monkeypatch.chdir(tmp_path)
    assert resolve_source("flux-dev") == str(folder.resolve())
