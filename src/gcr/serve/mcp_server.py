"""gcr as a Model Context Protocol server: refine, critique and generate images as MCP tools.

Built on the official MCP Python SDK (``mcp`` on PyPI, 2.x: ``MCPServer``, the
renamed FastMCP). Tools:

``refine_image``
    Generate-Critique-Refine rounds on a prompt (optionally editing source
    images); one progress notification per finished round; returns the best
    image as image content, plus its path, scores, the prompt trajectory and
    the run folder (structured content, schema :class:`~gcr.agent.outcome.RefineResult`).
    Cancelling the call stops the run; its folder keeps the checkpoints and
    ``resume_run_dir`` continues it.
``critique_image``
    The critic's typed critique of one image, or its comparison of two.
``generate_image``
    Images straight from the generator, saved to disk and returned.

The generator and the critic are loaded on first use and shared by every call
of the process (:class:`~gcr.serve.models.SharedModels`). Images come in as
server file paths or ``data:`` URLs (:mod:`gcr.serve.inputs`). Errors a caller
can fix come back as tool errors with gcr's message; anything else stays in the
server's log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Coroutine, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from mcp.server.mcpserver import Context, Image, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, ContentBlock, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from gcr.agent.context import RefineContext
from gcr.agent.outcome import RefineResult, new_run_folder, refine_once, resume_once, runs_root
from gcr.critic.schema import Critique, PairwiseCritique
from gcr.critic.scoring import normalized_reward
from gcr.errors import GCRError, RewardError
from gcr.generators.base import GenerationRequest
from gcr.serve.inputs import image_path, read_image
from gcr.serve.models import SharedModels
from gcr.task import Task

logger = logging.getLogger(__name__)

#: Limits on one call, so a single request cannot occupy the server for hours.
MAX_ROUNDS = 16
MAX_CANDIDATES = 8
MAX_IMAGES = 4

INSTRUCTIONS = (
    "gcr improves generated images: refine_image runs generate-critique-refine rounds and returns "
    "the best image with its scores; critique_image judges one image (or compares two) against a "
    "request; generate_image makes images without critique. Images are server file paths or "
    "data:image/...;base64 URLs. Scores are 1-4 per dimension; rewards are normalized to 0-1."
)


class CritiqueResult(BaseModel):
    """The critic's verdict on one image (``critique``) or on a pair (``comparison``)."""

    mode: Literal["pointwise", "pairwise"]
    critic: str = Field(description="The critic model's name")
    critique: Critique | None = None
    reward: float | None = Field(default=None, description="Normalized reward in [0, 1] (pointwise)")
    reward_error: str | None = Field(default=None, description="Why no reward could be computed")
    comparison: PairwiseCritique | None = None
    preference: Literal["A", "B", "tie"] | None = Field(default=None, description="Pairwise: who wins")
    totals: list[float] | None = Field(default=None, description="Pairwise: summed scores of A and B")


class GenerateResult(BaseModel):
    """Images made by the generator, with what reproduces them."""

    images: list[str] = Field(description="Paths of the saved PNG files")
    seeds: list[int]
    model: str
    params: dict[str, Any]


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """gcr's own errors reach the client with their message; anything else stays a server crash."""
    try:
        yield
    except GCRError as exc:
        raise ToolError(str(exc)) from exc


def _text(data: Any) -> TextContent:
    return TextContent(type="text", text=json.dumps(data, indent=2, ensure_ascii=False))


def _image(path: str | Path) -> ContentBlock:
    return Image(path=path).to_image_content()


class GcrTools:
    """The tool implementations, bound to one process's shared models and folders."""

    def __init__(self, models: SharedModels, *, runs_dir: str | Path | None = None,
                 image_roots: list[Path] | None = None) -> None:  # fmt: skip
        self.models = models
        self.root = runs_root(runs_dir)
        self.image_roots = (
            None if image_roots is None else [Path(r).expanduser().resolve() for r in image_roots]
        )

    def _sources(self, values: list[str]) -> list[str]:
        uploads = self.root / "uploads"
        return [image_path(v, self.image_roots, f"source_images[{i}]", uploads) for i, v in enumerate(values)]

    async def refine_image(
        self,
        ctx: Context,
        prompt: Annotated[str, Field(description="What the image should show, or how to edit the sources")],
        source_images: Annotated[
            list[str], Field(description="Images to edit (paths or data URLs); empty for text-to-image")
        ] = [],  # noqa: B006 - the SDK reads defaults from the signature; the list is never mutated
        max_rounds: Annotated[int, Field(ge=1, le=MAX_ROUNDS, description="Most rounds")] = 4,
        candidates: Annotated[int, Field(ge=1, le=MAX_CANDIDATES, description="Images per round")] = 1,
        target_reward: Annotated[
            float | None, Field(ge=0, le=1, description="Stop at this reward (0-1); null: no target")
        ] = 0.9,
        patience: Annotated[int, Field(ge=1, description="Stop after this many rounds without gain")] = 2,
        seed: Annotated[int, Field(ge=0, description="Base seed; candidate i uses seed + i")] = 0,
        steps: Annotated[int | None, Field(ge=1, description="Denoising steps; null: the model's")] = None,
        width: Annotated[int | None, Field(ge=1, description="Image width; null: the model's")] = None,
        height: Annotated[int | None, Field(ge=1, description="Image height; null: the model's")] = None,
        guidance: Annotated[float | None, Field(ge=0, description="Guidance scale")] = None,
        negative_prompt: str | None = None,
        resume_run_dir: Annotated[
            str | None,
            Field(description="run_dir of an earlier, cut-short call to continue with its own settings"),
        ] = None,
    ) -> Annotated[CallToolResult, RefineResult]:
        """Improve an image over generate-critique-refine rounds; return the best one and its trajectory."""
        with _user_errors():
            if resume_run_dir is None and not prompt.strip():
                raise ToolError("the prompt is empty: say what the image should show (or how to edit it)")
            settings = RefineContext(
                max_rounds=max_rounds, candidates=candidates, target_reward=target_reward,
                patience=patience, seed=seed, steps=steps, width=width, height=height,
                guidance=guidance, negative_prompt=negative_prompt,
            )  # fmt: skip
            sources = await asyncio.to_thread(self._sources, source_images)
            loaded = await self.models.get()
            # A resumed run keeps its own max_rounds, which this call does not know.
            progress = _RoundProgress(ctx, None if resume_run_dir is not None else max_rounds)
            async with progress:
                if resume_run_dir is not None:
                    run = resume_once(
                        loaded.builder, resume_run_dir, root=self.root, on_event=progress.on_event
                    )
                else:
                    run = refine_once(
                        loaded.builder, prompt, source_images=sources, context=settings,
                        root=self.root, on_event=progress.on_event,
                    )  # fmt: skip
                result = await _cancellable(run)
        if result.best_image is None:
            raise ToolError(
                f"the run ended without a scored image ({result.stop_reason}); see {result.run_dir}"
            )
        data = result.model_dump(mode="json")
        return CallToolResult(content=[_image(result.best_image), _text(data)], structured_content=data)

    async def critique_image(
        self,
        prompt: Annotated[str, Field(description="The request the image was made for")],
        image: Annotated[str, Field(description="The image to judge (path or data URL); image A of a pair")],
        other_image: Annotated[
            str | None, Field(description="A second candidate (B): compare the two instead")
        ] = None,
        source_images: Annotated[
            list[str], Field(description="Source images of an edit (paths or data URLs)")
        ] = [],  # noqa: B006
        task: Annotated[
            Literal["t2i", "edit"] | None, Field(description="Default: edit when source images are given")
        ] = None,
    ) -> Annotated[CallToolResult, CritiqueResult]:
        """The critic's structured critique of one image (or comparison of two) for a request."""
        with _user_errors():
            if not prompt.strip():
                raise ToolError("the prompt is empty: give the request the image was made for")
            roots = self.image_roots
            candidate = await asyncio.to_thread(read_image, image, roots, "image")
            other = None if other_image is None else await asyncio.to_thread(
                read_image, other_image, roots, "other_image"
            )  # fmt: skip
            sources = [await asyncio.to_thread(read_image, s, roots, f"source_images[{i}]")
                       for i, s in enumerate(source_images)]  # fmt: skip
            resolved = Task.parse(task) if task is not None else (Task.EDIT if sources else Task.T2I)
            critic = (await self.models.get()).critic
            if other is not None:
                compare = getattr(critic, "acompare", None)
                if compare is None:
                    raise ToolError(f"the critic {critic.model_id} cannot compare two images")
                comparison = await compare(prompt, candidate, other, sources=sources, task=resolved)
                result = CritiqueResult(
                    mode="pairwise", critic=critic.model_id, comparison=comparison,
                    preference=comparison.preference(), totals=list(comparison.totals()),
                )  # fmt: skip
            else:
                critique = await critic.acritique(prompt, candidate, sources=sources, task=resolved)
                result = CritiqueResult(mode="pointwise", critic=critic.model_id, critique=critique)
                try:  # every dimension, equal weights: the reward refine_image runs score with
                    result.reward = normalized_reward(critique)
                except RewardError as exc:
                    result.reward_error = str(exc)
        data = result.model_dump(mode="json")
        return CallToolResult(content=[_text(data)], structured_content=data)

    async def generate_image(
        self,
        prompt: Annotated[str, Field(description="What the image should show, or how to edit the sources")],
        source_images: Annotated[
            list[str], Field(description="Images to edit (paths or data URLs); empty for text-to-image")
        ] = [],  # noqa: B006
        num_images: Annotated[int, Field(ge=1, le=MAX_IMAGES, description="Images (seeds) to make")] = 1,
        seed: Annotated[int, Field(ge=0, description="Seed of the first image; image i uses seed + i")] = 0,
        steps: Annotated[int | None, Field(ge=1)] = None,
        width: Annotated[int | None, Field(ge=1)] = None,
        height: Annotated[int | None, Field(ge=1)] = None,
        guidance: Annotated[float | None, Field(ge=0)] = None,
        negative_prompt: str | None = None,
    ) -> Annotated[CallToolResult, GenerateResult]:
        """Generate images without critique; save them and return them."""
        with _user_errors():
            sources = [await asyncio.to_thread(read_image, s, self.image_roots, f"source_images[{i}]")
                       for i, s in enumerate(source_images)]  # fmt: skip
            request = GenerationRequest(
                prompt=prompt, negative_prompt=negative_prompt, seed=seed, width=width, height=height,
                steps=steps, guidance=guidance, num_images=num_images, source_images=sources,
            )  # fmt: skip
            request.validate()
            generator = (await self.models.get()).generator
            made = await asyncio.to_thread(generator.generate, request)
            folder = new_run_folder(prompt, self.root / "generated")
            paths: list[str] = []
            for i, picture in enumerate(made.images):
                target = folder.path / f"image-{made.seeds[i]}.png"
                await asyncio.to_thread(picture.save, target, format="PNG")
                folder.write_json(f"image-{made.seeds[i]}.json", made.metadata(i))
                paths.append(str(target))
        result = GenerateResult(images=paths, seeds=list(made.seeds), model=made.model_id,
                                params=json.loads(json.dumps(made.params, default=str)))  # fmt: skip
        data = result.model_dump(mode="json")
        return CallToolResult(content=[*(_image(p) for p in paths), _text(data)], structured_content=data)


async def _cancellable(run: Coroutine[Any, Any, RefineResult]) -> RefineResult:
    """Await ``run`` in its own task, so that a cancelled call stops it cleanly.

    The SDK cancels a tool call through an anyio cancel scope, which cancels every await
    inside it again and again, cleanup included: the run's SQLite checkpointer would be
    left open, and locked, and a resume of the run would fail. Here the run is cancelled
    once, the way asyncio cancels, and its cleanup is awaited before the call ends.
    """
    task = asyncio.create_task(run)
    try:
        return await asyncio.shield(task)
    except BaseException:
        task.cancel()
        with anyio.CancelScope(shield=True), contextlib.suppress(BaseException):
            await task
        raise


class _RoundProgress:
    """Turns the graph's ``round_finished`` events into MCP progress notifications, in order.

    Events arrive through a synchronous callback; a sender task drains them so the
    notifications go out in the order the rounds finished, all before the result.
    """

    def __init__(self, ctx: Context, total: int | None) -> None:
        self.ctx = ctx
        self.total = total
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._sender: asyncio.Task[None] | None = None

    def on_event(self, item: dict[str, Any]) -> None:
        if item.get("type") == "round_finished":
            self.queue.put_nowait(item)

    async def _send(self) -> None:
        while (item := await self.queue.get()) is not None:
            reward = item.get("best_reward")
            best = item.get("run_best_reward")
            message = (
                f"round {item['round'] + 1}: best reward {reward:.3f}, run best {best:.3f}"
                if isinstance(reward, float) and isinstance(best, float)
                else f"round {item['round'] + 1} finished"
            )
            await self.ctx.report_progress(item["round"] + 1, self.total, message)

    async def __aenter__(self) -> _RoundProgress:
        self._sender = asyncio.create_task(self._send())
        return self

    async def __aexit__(self, exc_type: object, *exc: object) -> None:
        assert self._sender is not None
        if exc_type is None:
            self.queue.put_nowait(None)
            await self._sender
        else:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender


def create_server(
    models: SharedModels,
    *,
    runs_dir: str | Path | None = None,
    image_roots: list[Path] | None = None,
    preload: bool = False,
    name: str = "gcr",
) -> MCPServer[Any]:
    """An MCP server exposing gcr's tools around ``models`` (loaded once, shared by every call).

    Args:
        models: the process's generator, critic and refine graph.
        runs_dir: where run folders and generated images go (default ``$GCR_RUNS_DIR``
            or ``./gcr-runs``).
        image_roots: folders that path arguments must lie in; ``None`` allows any
            readable path (fine over stdio, where the client is the local user).
        preload: load the models when the server starts instead of on the first call.
    """

    @asynccontextmanager
    async def lifespan(_: MCPServer[Any]) -> AsyncIterator[None]:
        if preload:
            await models.get()
        try:
            yield
        finally:
            await models.aclose()

    tools = GcrTools(models, runs_dir=runs_dir, image_roots=image_roots)
    server: MCPServer[Any] = MCPServer(name, instructions=INSTRUCTIONS, lifespan=lifespan)
    server.add_tool(tools.refine_image, name="refine_image", title="Refine an image",
                    annotations=ToolAnnotations(read_only_hint=False, open_world_hint=False))  # fmt: skip
    server.add_tool(tools.critique_image, name="critique_image", title="Critique an image",
                    annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))  # fmt: skip
    server.add_tool(tools.generate_image, name="generate_image", title="Generate an image",
                    annotations=ToolAnnotations(read_only_hint=False, open_world_hint=False))  # fmt: skip
    return server
