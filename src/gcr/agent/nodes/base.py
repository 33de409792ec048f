"""What every node closes over: the live collaborators and the fallback settings."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from langgraph.runtime import Runtime

from gcr.agent.cache import ArtifactCache
from gcr.agent.context import RefineContext
from gcr.agent.guard import PromptGuard
from gcr.agent.image_store import ImageStore
from gcr.agent.protocols import CriticProtocol
from gcr.agent.refiner import Refiner
from gcr.agent.run_folder import RunFolder
from gcr.agent.stopping import StoppingPolicy, StopRules
from gcr.agent.veto import Veto
from gcr.critic.scoring import RewardSpec
from gcr.generators.base import Generator
from gcr.task import Task

T = TypeVar("T")


@dataclass
class NodeDeps:
    """Live objects given to :func:`gcr.agent.build_graph`, shared by the nodes of one graph.

    ``defaults`` are the settings used when a run's context is not a
    :class:`RefineContext` (for example when the graph is mounted in a host graph
    with a context schema of its own). ``generator_executor`` runs every generator
    call; its worker count bounds how many run at once (diffusers pipelines are not
    thread-safe). Calls waiting for it queue inside the executor, so they never hold
    the event loop's default worker threads that image decoding and encoding need.
    ``images`` keeps the images this process wrote or read, so no node decodes them again.
    """

    generator: Generator
    critic: CriticProtocol
    refiner: Refiner
    guard: PromptGuard
    stopping: StoppingPolicy | None
    cache: ArtifactCache | None
    defaults: RefineContext
    #: The cross-judge veto (None: the critic alone decides which image is best).
    veto: Veto | None = None
    generator_executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="gcr-generator")
    )
    images: ImageStore = field(default_factory=ImageStore)

    @property
    def task(self) -> Task:
        return Task.parse(self.generator.task)

    def settings(self, runtime: Runtime[Any] | None) -> RefineContext:
        context = getattr(runtime, "context", None)
        return context if isinstance(context, RefineContext) else self.defaults

    @staticmethod
    def folder(settings: RefineContext, recorded: str) -> RunFolder:
        """The run folder: the one the run is given now (``settings.run_dir``), else the one the state
        recorded. The settings win so a run folder moved between a stop and a resume is used where
        it is; paths in the state are relative to it."""
        return RunFolder(settings.run_dir or recorded)

    async def afolder(self, settings: RefineContext, recorded: str) -> RunFolder:
        """:meth:`folder` from an async node: resolving the path touches the file system, which
        stays off the event loop (LangGraph's dev server refuses blocking calls there)."""
        return await asyncio.to_thread(self.folder, settings, recorded)

    def policy(self, settings: RefineContext) -> StoppingPolicy:
        if self.stopping is not None:
            return self.stopping
        return StopRules.from_context(settings)

    @staticmethod
    def reward_spec(settings: RefineContext) -> RewardSpec:
        return settings.reward_spec()

    @staticmethod
    def emit(runtime: Runtime[Any] | None, payload: dict[str, Any]) -> None:
        writer = getattr(runtime, "stream_writer", None)
        if writer is not None:
            writer(payload)


async def kept_work(func: Callable[..., T], *args: Any) -> T:
    """Run ``func(*args)`` in a worker thread, to the end even if the node is cancelled meanwhile.

    For saving what has already been paid for (a generated image, a critic's answer) into the
    run folder and the cache: when a sibling task fails and LangGraph cancels this one, the node
    still ends cancelled (its state update is dropped), but the file and cache writes finish, so
    the resume finds the image or critique instead of asking the generator or critic again.
    """
    return await asyncio.shield(asyncio.to_thread(func, *args))

