"""Factories by short name: the built-ins plus those third-party packages declare.

One mechanism serves every pluggable part of gcr (generators, judges). A
registry knows three sources, looked up in this order:

1. factories registered in this process (:meth:`FactoryRegistry.register`: tests,
   notebooks, an app that embeds gcr);
2. built-ins, given by import path so that naming one never imports another's
   dependencies;
3. entry points of the registry's group, declared by installed packages.

A plugin that fails to import is reported as broken, never as an unknown name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any

from gcr.errors import ConfigError, InputError

Factory = Callable[..., Any]


class FactoryRegistry:
    """Short names to factories for one kind of part (``noun``), e.g. ``"generator"``."""

    def __init__(self, noun: str, group: str, builtins: Mapping[str, str], *, plural: str) -> None:
        self.noun = noun
        self.plural = plural
        self.group = group
        self._builtins = dict(builtins)
        self._registered: dict[str, Factory] = {}

    def register(self, name: str, factory: Factory, *, replace: bool = False) -> None:
        """Make ``factory`` available as ``name`` in this process."""
        key = _normalize(name)
        if not replace and (key in self._registered or key in self._builtins):
            raise ConfigError(
                f"a {self.noun} named {key!r} is already registered; pass replace=True to override"
            )
        self._registered[key] = factory

    def unregister(self, name: str) -> None:
        """Forget a factory added with :meth:`register`."""
        self._registered.pop(_normalize(name), None)

    def available(self) -> list[str]:
        """Every known short name: built-ins, registered in-process, and from entry points."""
        return sorted({*self._builtins, *self._registered, *(ep.name for ep in self._entry_points())})

    def get(self, name: str) -> Factory:
        """The factory called ``name``; an unknown name lists the known ones."""
        key = _normalize(name)
        if key in self._registered:
            return self._registered[key]
        if key in self._builtins:
            module, _, attr = self._builtins[key].partition(":")
            return getattr(importlib.import_module(module), attr)
        label = self.noun.split()[0]
        for ep in self._entry_points():
            if ep.name == key:
                try:
                    factory = ep.load()
                except Exception as exc:  # a broken plugin must not look like an unknown name
                    raise ConfigError(f"{label} plugin {key!r} ({ep.value}) failed to load: {exc}") from exc
                if not callable(factory):
                    raise ConfigError(f"{label} plugin {key!r} ({ep.value}) is not a class or function")
                return factory
        raise InputError(
            f"unknown {self.noun} {name!r}: known {self.plural} are {', '.join(self.available())}"
        )

    def _entry_points(self) -> list[Any]:
        return list(entry_points(group=self.group))


def _normalize(name: str) -> str:
    return name.strip().lower()
