"""The graph that ``langgraph dev`` serves (see ``langgraph.json`` at the repository root).

The server calls :func:`make_graph`; the collaborators come from environment
variables (put them in a ``.env`` file next to ``langgraph.json`` or export them):

================== ===========================================================
GCR_TASK           ``t2i`` (default) or ``edit``: picks the default models
GCR_GENERATOR      generator model id/path/family (default: per task, see
                   :mod:`gcr.agent.components`)
GCR_GENERATOR_KIND generator from the registry (default ``diffusers``)
GCR_CRITIC         critic server URL, folder or Hub id (default: released
                   RationalRewards-8B for the task, in-process)
GCR_CRITIC_MODEL   model name on the critic server
GCR_REFINER        ``critic`` (default) or ``llm``
GCR_REFINER_URL    LLM refiner server URL
GCR_REFINER_MODEL  LLM refiner model name
GCR_CACHE_DIR      artifact cache folder (default ``~/.cache/gcr/artifacts``)
GCR_NO_CACHE       set to ``1`` to disable the cache
================== ===========================================================

Models load once per server process, in a worker thread (``make_graph_async``,
the factory ``langgraph.json`` names), so the server keeps answering while
weights load. Run settings (rounds, candidates, stopping
rules, ...) are the graph's context: LangGraph Studio shows them as the
assistant's configuration. The server supplies its own checkpointer.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from typing import Any

from gcr.agent.components import Components, load_components
from gcr.agent.graph import GRAPH_NAME, build_graph
from gcr.agent.runner import RunSpec


def spec_from_env(env: dict[str, str] | None = None) -> tuple[RunSpec, str]:
    """The :class:`RunSpec` (collaborators only) and the task named by ``GCR_*`` variables."""
    env = dict(os.environ if env is None else env)
    spec = RunSpec(
        prompt="",
        generator=env.get("GCR_GENERATOR") or None,
        generator_kind=env.get("GCR_GENERATOR_KIND", "diffusers"),
        critic=env.get("GCR_CRITIC") or None,
        critic_model=env.get("GCR_CRITIC_MODEL") or None,
        refiner=env.get("GCR_REFINER", "critic"),
        refiner_url=env.get("GCR_REFINER_URL") or None,
        refiner_model=env.get("GCR_REFINER_MODEL") or None,
        cache_dir=env.get("GCR_CACHE_DIR") or None,
        use_cache=env.get("GCR_NO_CACHE", "") not in ("1", "true", "yes"),
    )
    return spec, env.get("GCR_TASK", "t2i")


@functools.cache
def _components() -> Components:
    spec, task = spec_from_env()
    return load_components(spec, task=task)


def make_graph(config: dict[str, Any] | None = None) -> Any:
    """Compile the refine graph around the collaborators named in the environment."""
    return build_graph(**_components().graph_kwargs()).compile(name=GRAPH_NAME)


_load_lock = threading.Lock()
_builder: Any = None


def _shared_builder() -> Any:
    """The graph builder around the loaded models, built once: every compiled graph shares its
    generator executor, so runs on one server never call the (not thread-safe) generator at once."""
    global _builder
    with _load_lock:
        if _builder is None:
            _builder = build_graph(**_components().graph_kwargs())
        return _builder


async def make_graph_async(config: dict[str, Any] | None = None) -> Any:
    """The server's factory: :func:`make_graph`, with models loaded off the event loop."""
    builder = await asyncio.to_thread(_shared_builder)
    return builder.compile(name=GRAPH_NAME)
