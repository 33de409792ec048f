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

from collections.abc import Callable
from typing import Any

from gcr.errors import ConfigError
from gcr.judges.base import Judge, parse_judge_spec
from gcr.plugins import FactoryRegistry

ENTRY_POINT_GROUP = "gcr.judges"

JudgeFactory = Callable[..., Judge]

# Built-ins by import path, so that naming one does not import another's dependencies.
REGISTRY = FactoryRegistry(
    "judge kind",
    ENTRY_POINT_GROUP,
    {
        "critic": "gcr.judges.critic_judge:critic_judge",
        "vlm": "gcr.judges.vlm:rubric_judge",
        "viescore": "gcr.judges.vlm:viescore_judge",
        "imgedit": "gcr.judges.vlm:imgedit_judge",
        "clip": "gcr.judges.clip:clip_judge",
        "pickscore": "gcr.judges.clip:pickscore_judge",
        "image-reward": "gcr.judges.plugins:image_reward_judge",
        "hpsv3": "gcr.judges.plugins:hpsv3_judge",
    },
    plural="kinds",
)


def register_judge(kind: str, factory: JudgeFactory, *, replace: bool = False) -> None:
    """Make ``factory`` available as judge kind ``kind`` in this process (tests, notebooks, plugins)."""
    REGISTRY.register(kind, factory, replace=replace)


def unregister_judge(kind: str) -> None:
    """Forget a judge kind added with :func:`register_judge`."""
    REGISTRY.unregister(kind)


def available_judges() -> list[str]:
    """Every known judge kind: built-ins, registered in-process, and from entry points."""
    return REGISTRY.available()


def get_judge_factory(kind: str) -> JudgeFactory:
    """The factory of judge kind ``kind``; an unknown kind lists the known ones."""
    return REGISTRY.get(kind)


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
