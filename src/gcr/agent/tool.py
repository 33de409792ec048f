"""gcr's refinement as one LangChain tool, for ReAct-style agents.

::

    from gcr.agent import RefineContext, as_tool

    tool = as_tool(generator=my_generator, critic=my_critic, defaults=RefineContext(max_rounds=3))
    agent = create_react_agent(chat_model, [tool])

Each call runs the refine graph in a new run folder (checkpointed, see
:mod:`gcr.agent.outcome`). The model reads a short JSON answer; the full
:class:`~gcr.agent.outcome.RefineResult` is the tool message's ``artifact``.
Mistakes the model can fix (an empty prompt, a missing source image, a setting
out of range) come back to it as the tool's answer, with gcr's message.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from gcr.agent.cache import ArtifactCache
from gcr.agent.context import RefineContext
from gcr.agent.graph import build_graph
from gcr.agent.guard import PromptGuard
from gcr.agent.outcome import RefineResult, refine_once
from gcr.agent.protocols import CriticProtocol
from gcr.agent.refiner import Refiner
from gcr.agent.stopping import StoppingPolicy
from gcr.errors import GCRError
from gcr.generators.base import Generator

DEFAULT_DESCRIPTION = (
    "Make an image for a request and improve it over generate-critique-refine rounds: a reward "
    "model critiques each image and the prompt is rewritten until the image scores well. Returns "
    "the path of the best image, its reward (0-1), the prompt that made it and the run folder. "
    "Give source_images (file paths) to edit existing images instead."
)


class RefineToolInput(BaseModel):
    """What the agent passes to the refine tool."""

    prompt: str = Field(description="What the image should show, or how to edit the source images")
    source_images: list[str] = Field(default_factory=list, description="Paths of images to edit (optional)")
    max_rounds: int | None = Field(default=None, ge=1, description="Most rounds (default: the tool's)")
    candidates: int | None = Field(default=None, ge=1, description="Images per round (default: the tool's)")


def model_answer(result: RefineResult) -> str:
    """The short JSON the model reads after a refine call."""
    return json.dumps(
        {
            "best_image": result.best_image,
            "best_reward": result.best_reward,
            "best_prompt": result.best_prompt,
            "rounds": len(result.trajectory),
            "stop_reason": result.stop_reason,
            "run_dir": result.run_dir,
        },
        ensure_ascii=False,
    )


def as_tool(
    *,
    generator: Generator,
    critic: CriticProtocol,
    refiner: Refiner | None = None,
    cache: ArtifactCache | None = None,
    guard: PromptGuard | None = None,
    stopping: StoppingPolicy | None = None,
    defaults: RefineContext | None = None,
    runs_dir: str | Path | None = None,
    name: str = "refine_image",
    description: str = DEFAULT_DESCRIPTION,
) -> Any:
    """A LangChain ``StructuredTool`` that runs one refinement per call.

    Args:
        generator, critic, refiner, cache, guard, stopping: as for :func:`gcr.agent.build_graph`
            (``**load_components(spec).graph_kwargs()`` fits).
        defaults: run settings; the agent may override ``max_rounds`` and ``candidates``.
            Interactive review is not available inside a tool.
        runs_dir: where run folders go (default ``$GCR_RUNS_DIR`` or ``./gcr-runs``).
        name, description: what the model sees.
    """
    from langchain_core.tools import StructuredTool, ToolException

    builder = build_graph(
        generator=generator, critic=critic, refiner=refiner, cache=cache, guard=guard, stopping=stopping
    )
    base = defaults if defaults is not None else RefineContext()

    async def refine(
        prompt: str,
        source_images: list[str] | None = None,
        max_rounds: int | None = None,
        candidates: int | None = None,
    ) -> tuple[str, dict[str, Any]]:
        chosen = {"max_rounds": max_rounds, "candidates": candidates}
        try:
            if not prompt.strip():
                raise ToolException("the prompt is empty: say what the image should show")
            settings = dataclasses.replace(base, **{k: v for k, v in chosen.items() if v is not None})
            result = await refine_once(
                builder, prompt, source_images=list(source_images or []), context=settings, root=runs_dir
            )
        except GCRError as exc:
            raise ToolException(str(exc)) from exc
        if result.best_image is None:
            raise ToolException(f"no image could be scored ({result.stop_reason}); see {result.run_dir}")
        return model_answer(result), result.model_dump(mode="json")

    def refine_sync(**kwargs: Any) -> tuple[str, dict[str, Any]]:
        return asyncio.run(refine(**kwargs))

    return StructuredTool.from_function(
        func=refine_sync,
        coroutine=refine,
        name=name,
        description=description,
        args_schema=RefineToolInput,
        response_format="content_and_artifact",
        handle_tool_error=True,
        handle_validation_error=_argument_error,
    )


def _argument_error(exc: Exception) -> str:
    """What the model reads when its arguments do not fit the schema: each field and what is wrong."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in errors()]
        return "invalid arguments: " + "; ".join(parts)
    return f"invalid arguments: {exc}"
