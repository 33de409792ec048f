"""Generators by short name: the built-ins plus any a third-party package adds.

A package adds one without touching gcr by declaring an entry point in the
``gcr.generators`` group whose object is a factory (a class or function) taking
the model as its first argument and options as keywords, and returning a
:class:`~gcr.generators.base.Generator`::

    [project.entry-points."gcr.generators"]
    my-gen = "my_package.gen:MyGenerator"

Built-ins: ``diffusers`` (:class:`~gcr.generators.diffusers_adapter.DiffusersGenerator`)
and ``openai-images`` (:class:`~gcr.generators.openai_images.OpenAIImagesGenerator`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gcr.errors import ConfigError
from gcr.generators.base import Generator
from gcr.plugins import FactoryRegistry

ENTRY_POINT_GROUP = "gcr.generators"

GeneratorFactory = Callable[..., Generator]

# Built-ins by import path, so that naming one does not import the other's dependencies.
REGISTRY = FactoryRegistry(
    "generator",
    ENTRY_POINT_GROUP,
    {
        "diffusers": "gcr.generators.diffusers_adapter:DiffusersGenerator",
        "openai-images": "gcr.generators.openai_images:OpenAIImagesGenerator",
    },
    plural="generators",
)


def register_generator(name: str, factory: GeneratorFactory, *, replace: bool = False) -> None:
    """Make ``factory`` available as ``name`` in this process (tests, notebooks, plugins)."""
    REGISTRY.register(name, factory, replace=replace)


def unregister_generator(name: str) -> None:
    """Forget a generator added with :func:`register_generator`."""
    REGISTRY.unregister(name)


def available_generators() -> list[str]:
    """Every known short name: built-ins, registered in-process, and from entry points."""
    return REGISTRY.available()


def get_generator_factory(name: str) -> GeneratorFactory:
    """The factory called ``name``; an unknown name lists the known ones."""
    return REGISTRY.get(name)


def create_generator(name: str, model: str, **options: Any) -> Generator:
    """Build the generator called ``name`` for ``model`` with keyword ``options``."""
    generator = get_generator_factory(name)(model, **options)
    if not isinstance(generator, Generator):
        raise ConfigError(
            f"generator {name!r} returned a {type(generator).__name__}, "
            "which lacks model_id, task or generate"
        )
    return generator
