"""Judges by kind: the built-ins plus any a third-party package adds.

A package adds a judge kind without touching gcr by declaring an entry point in
the ``gcr.judges`` group whose object is a factory (a class or function) called
as ``factory(target, **options)`` with the spec's target string and its
``key=value`` options (all strings), returning a :class:`~gcr.judges.base.Judge`::

    [project.entry-points."gcr.judges"]
    my-judge = "my_package.judge:MyJudge"

Then ``--judge my-judge:some-target,threshold=0.5`` builds ``MyJudge("some-target", threshold="0.5")``.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from gcr.errors import ConfigError, InputError
from gcr.judges.base import Judge, parse_judge_spec

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "gcr.judges"

JudgeFactory = Callable[..., Judge]

# Built-ins by import path, so that naming one does not import another's dependencies.
_BUILTINS: dict[str, str] = {
    "critic": "gcr.judges.critic_judge:critic_judge",
    "vlm": "gcr.judges.vlm:rubric_judge",
    "viescore": "gcr.judges.vlm:viescore_judge",
    "imgedit": "gcr.judges.vlm:imgedit_judge",
    "clip": "gcr.judges.clip:clip_judge",
    "pickscore": "gcr.judges.clip:pickscore_judge",
    "image-reward": "gcr.judges.plugins:image_reward_judge",
    "hpsv3": "gcr.judges.plugins:hpsv3_judge",
}
_registered: dict[str, JudgeFactory] = {}


def register_judge(kind: str, factory: JudgeFactory, *, replace: bool = False) -> None:
    """Make ``factory`` available as judge kind ``kind`` in this process (tests, notebooks, plugins)."""
    key = _normalize(kind)
    if not replace and (key in _registered or key in _BUILTINS):
        raise ConfigError(f"a judge kind named {key!r} is already registered; pass replace=True to override")
    _registered[key] = factory


def unregister_judge(kind: str) -> None:
    """Forget a judge kind added with :func:`register_judge`."""
    _registered.pop(_normalize(kind), None)


def available_judges() -> list[str]:
    """Every known judge kind: built-ins, registered in-process, and from entry points."""
    return sorted({*_BUILTINS, *_registered, *(ep.name for ep in _entry_points())})


def get_judge_factory(kind: str) -> JudgeFactory:
    """The factory of judge kind ``kind``; an unknown kind lists the known ones."""
    key = _normalize(kind)
    if key in _registered:
        return _registered[key]
    if key in _BUILTINS:
        module, _, attr = _BUILTINS[key].partition(":")
        return getattr(importlib.import_module(module), attr)
    for ep in _entry_points():
        if ep.name == key:
            try:
                factory = ep.load()
            except Exception as exc:  # a broken plugin must not look like an unknown kind
                raise ConfigError(f"judge plugin {key!r} ({ep.value}) failed to load: {exc}") from exc
            if not callable(factory):
                raise ConfigError(f"judge plugin {key!r} ({ep.value}) is not a class or function")
            return factory
    raise InputError(f"unknown judge kind {kind!r}: known kinds are {', '.join(available_judges())}")


def load_judge(spec: str, **overrides: Any) -> Judge:
    """Build the judge named by ``spec`` (``KIND:TARGET[,key=value...]``, see docs/judges.md).

    ``overrides`` are extra options given in code (they win over the spec's own).
    """
    parsed = parse_judge_spec(spec)
    factory = get_judge_factory(parsed.kind)
    judge = factory(parsed.target, **{**parsed.options, **overrides})
    if not isinstance(judge, Judge) or not isinstance(getattr(judge, "identity", None), str):
        raise ConfigError(
            f"judge kind {parsed.kind!r} returned a {type(judge).__name__}, which lacks an identity string "
            "or an async judge() method"
        )
    return judge


def _entry_points() -> list[Any]:
    return list(entry_points(group=ENTRY_POINT_GROUP))


def _normalize(kind: str) -> str:
    return kind.strip().lower()
