"""The registry: built-ins by short name, in-process registrations and third-party entry points."""

from __future__ import annotations

import sys
import types
from importlib.metadata import EntryPoint
from typing import Any

import pytest

import gcr.plugins
from gcr.errors import ConfigError, InputError
from gcr.generators import registry
from gcr.generators.base import GenerationRequest, GenerationResult, Generator
from gcr.generators.diffusers_adapter import DiffusersGenerator
from gcr.generators.loading import PipelineCache
from gcr.task import Task


class EchoGenerator:
    """A third-party generator as a plugin package would write it."""

    def __init__(self, model: str, *, colour: str = "red") -> None:
        self._model = model
        self.colour = colour

    @property
    def model_id(self) -> str:
        return f"echo:{self._model}"

    @property
    def task(self) -> Task:
        return Task.T2I

    def generate(self, request: GenerationRequest) -> GenerationResult:
        from PIL import Image

        request.validate(task=self.task)
        size = (request.width or 8, request.height or 8)
        return GenerationResult(
            [Image.new("RGB", size, self.colour)] * request.num_images,
            request.seeds(),
            self.model_id,
            {"prompt": request.prompt},
        )


@pytest.fixture
def plugin_module(monkeypatch: pytest.MonkeyPatch) -> str:
    module = types.ModuleType("gcr_test_plugin")
    module.EchoGenerator = EchoGenerator  # type: ignore[attr-defined]
    module.not_callable = 42  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "gcr_test_plugin", module)
    return "gcr_test_plugin"


@pytest.fixture
def with_entry_points(monkeypatch: pytest.MonkeyPatch, plugin_module: str):
    def install(*pairs: tuple[str, str]) -> None:
        eps = [EntryPoint(name=name, value=value, group=registry.ENTRY_POINT_GROUP) for name, value in pairs]
        found = lambda group: [ep for ep in eps if ep.group == group]  # noqa: E731
        monkeypatch.setattr(gcr.plugins, "entry_points", found)

    return install


def test_builtins_are_known_by_short_name(tiny_pipeline_dir) -> None:
    assert {"diffusers", "openai-images"} <= set(registry.available_generators())
    gen = registry.create_generator("diffusers", str(tiny_pipeline_dir("sd")), cache=PipelineCache())
    assert isinstance(gen, DiffusersGenerator) and isinstance(gen, Generator)


def test_a_third_party_generator_is_found_through_its_entry_point(with_entry_points, plugin_module) -> None:
    with_entry_points(("echo", f"{plugin_module}:EchoGenerator"))
    assert "echo" in registry.available_generators()
    gen = registry.create_generator("echo", "m1", colour="blue")
    result = gen.generate(GenerationRequest("hi", num_images=2, width=4, height=4))
    assert gen.model_id == "echo:m1" and result.images[0].getpixel((0, 0)) == (0, 0, 255)


def test_broken_plugins_say_so_instead_of_looking_unknown(with_entry_points, plugin_module) -> None:
    with_entry_points(("gone", "gcr_no_such_module:Thing"), ("odd", f"{plugin_module}:not_callable"))
    with pytest.raises(ConfigError, match=r"generator plugin 'gone'.*failed to load"):
        registry.get_generator_factory("gone")
    with pytest.raises(ConfigError, match="is not a class or function"):
        registry.get_generator_factory("odd")


def test_unknown_names_list_every_known_generator(with_entry_points, plugin_module) -> None:
    with_entry_points(("echo", f"{plugin_module}:EchoGenerator"))
    with pytest.raises(InputError) as info:
        registry.create_generator("nope", "m")
    assert str(info.value) == "unknown generator 'nope': known generators are diffusers, echo, openai-images"


def test_in_process_registration_and_its_guards() -> None:
    registry.register_generator("echo-local", EchoGenerator)
    try:
        assert registry.create_generator("ECHO-LOCAL", "m").model_id == "echo:m"
        with pytest.raises(ConfigError, match="already registered"):
            registry.register_generator("echo-local", EchoGenerator)
        with pytest.raises(ConfigError, match="already registered"):
            registry.register_generator("diffusers", EchoGenerator)
    finally:
        registry.unregister_generator("echo-local")
    assert "echo-local" not in registry.available_generators()


def test_a_factory_returning_something_else_is_refused() -> None:
    def bad(model: str, **_: Any) -> object:
        return object()

    registry.register_generator("bad", bad)
    try:
        with pytest.raises(ConfigError, match="returned a object, which lacks model_id, task or generate"):
            registry.create_generator("bad", "m")
    finally:
        registry.unregister_generator("bad")
