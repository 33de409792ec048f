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

import importlib
import logging
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from gcr.errors import ConfigError, InputError
from gcr.generators.base import Generator

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "gcr.generators"

GeneratorFactory = Callable[..., Generator]

# Built-ins by import path, so that naming one does not import the other's dependencies.
_BUILTINS: dict[str, str] = {
    "diffusers": "gcr.generators.diffusers_adapter:DiffusersGenerator",
    "openai-images": "gcr.generators.openai_images:OpenAIImagesGenerator",
}
_registered: dict[str, GeneratorFactory] = {}


def register_generator(name: str, factory: GeneratorFactory, *, replace: bool = False) -> None:
    """Make ``factory`` available as ``name`` in this process (tests, notebooks, plugins)."""
    key = _normalize(name)
    if not replace and (key in _registered or key in _BUILTINS):
        raise ConfigError(f"a generator named {key!r} is already registered; pass replace=True to override")
    _registered[key] = factory


def unregister_generator(name: str) -> None:
    """Forget a generator added with :func:`register_generator`."""
    _registered.pop(_normalize(name), None)


def available_generators() -> list[str]:
    """Every known short name: built-ins, registered in-process, and from entry points."""
    return sorted({*_BUILTINS, *_registered, *(ep.name for ep in _entry_points())})


def get_generator_factory(name: str) -> GeneratorFactory:
    """The factory called ``name``; an unknown name lists the known ones."""
    key = _normalize(name)
    if key in _registered:
        return _registered[key]
    if key in _BUILTINS:
        module, _, attr = _BUILTINS[key].partition(":")
        return getattr(importlib.import_module(module), attr)
    for ep in _entry_points():
        if ep.name == key:
            try:
                factory = ep.load()
            except Exception as exc:  # a broken plugin must not look like an unknown name
                raise ConfigError(f"generator plugin {key!r} ({ep.value}) failed to load: {exc}") from exc
            if not callable(factory):
                raise ConfigError(f"generator plugin {key!r} ({ep.value}) is not a class or function")
            return factory
    raise InputError(f"unknown generator {name!r}: known generators are {', '.join(available_generators())}")


def create_generator(name: str, model: str, **options: Any) -> Generator:
    """Build the generator called ``name`` for ``model`` with keyword ``options``."""
    generator = get_generator_factory(name)(model, **options)
    if not isinstance(generator, Generator):
        raise ConfigError(
            f"generator {name!r} returned a {type(generator).__name__}, "
            "which lacks model_id, task or generate"
        )
    return generator


def _entry_points() -> list[Any]:
    return list(entry_points(group=ENTRY_POINT_GROUP))


def _normalize(name: str) -> str:
    return name.strip().lower()
