"""One refine run from a caller that is not the CLI: a fresh run folder in, a typed result out.

The MCP server (:mod:`gcr.serve.mcp_server`) and the LangChain tool
(:func:`gcr.agent.tool.as_tool`) both run refinements as one call. They share
this module: it picks a new run folder, runs the graph there with
:func:`gcr.agent.runner.run_refine` (so every run is checkpointed and a
cancelled one can be resumed), and condenses the final state into a
:class:`RefineResult`, the same fields whichever way the run was started.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from langgraph.graph import StateGraph
from pydantic import BaseModel, Field

from gcr.agent.context import DEFAULT_RUNS_ROOT, RefineContext, new_run_dir
from gcr.agent.run_folder import RunFolder
from gcr.agent.runner import EventHandler, RunSpec, run_refine
from gcr.errors import ConfigError, InputError, RunError

logger = logging.getLogger(__name__)


class RoundResult(BaseModel):
    """One finished round: the prompt it generated from and how its best image scored."""

    round: int
    prompt: str
    prompt_origin: str = Field(description="'user' for round 0, else the refiner's name or 'edited'")
    best_reward: float
    best_scores: dict[str, float | None]
    rewards: list[float | None] = Field(description="Reward of each candidate; None where it was skipped")
    new_best: bool


class RefineResult(BaseModel):
    """The outcome of one refine run: the best image of the whole run and how it got there."""

    run_dir: str = Field(description="Folder holding every image, critique, summary.json and report.html")
    best_image: str | None = Field(description="Path of the best image (None when nothing was scored)")
    best_prompt: str | None
    best_reward: float | None = Field(description="Normalized reward in [0, 1] of the best image")
    best_scores: dict[str, float | None] = Field(
        default_factory=dict, description="Per-dimension scores (1-4, None for N/A) of the best image"
    )
    best_round: int | None = None
    start_reward: float | None = Field(description="Best reward of the first round")
    trajectory: list[RoundResult] = Field(description="The rounds in order, first to last")
    stop_reason: str | None
    stop_detail: str | None = None
    finished: bool = Field(description="False when the run paused (an interactive review) or was cut short")


def result_from_values(values: Mapping[str, Any], *, finished: bool = True) -> RefineResult:
    """Condense the graph's final state values (or ``RefineOutput``) into a :class:`RefineResult`."""
    rounds = list(values.get("rounds") or [])
    best = values.get("best")
    run_dir = str(values.get("run_dir") or "")
    return RefineResult(
        run_dir=run_dir,
        # The state records paths relative to the run folder; callers get one they can open.
        best_image=None if best is None else str(Path(run_dir) / best["image"]),
        best_prompt=None if best is None else best["prompt"],
        best_reward=None if best is None else best["reward"],
        best_scores={} if best is None else dict(best["scores"]),
        best_round=None if best is None else best["round"],
        start_reward=rounds[0]["best_reward"] if rounds else None,
        trajectory=[
            RoundResult(
                round=r["round"],
                prompt=r["prompt"],
                prompt_origin=r["prompt_origin"],
                best_reward=r["best_reward"],
                best_scores=dict(r["best_scores"]),
                rewards=list(r["rewards"]),
                new_best=r["new_best"],
            )
            for r in rounds
        ],
        stop_reason=values.get("stop_reason"),
        stop_detail=values.get("stop_detail"),
        finished=finished,
    )


def runs_root(root: str | Path | None = None) -> Path:
    """Where new run folders go: ``root``, else ``$GCR_RUNS_DIR``, else ``./gcr-runs``."""
    chosen = root if root is not None else os.environ.get("GCR_RUNS_DIR") or DEFAULT_RUNS_ROOT
    return Path(chosen).expanduser().resolve()


def new_run_folder(prompt: str, root: str | Path | None = None) -> RunFolder:
    """Create a fresh, empty run folder for ``prompt`` under ``root`` (see :func:`runs_root`)."""
    base = runs_root(root)
    now = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    # new_run_dir names the folder (time + prompt slug, numbered when taken) under $GCR_RUNS_DIR;
    # only its name is kept, so the caller's root wins.
    candidate = base / new_run_dir(prompt, now).name
    n = 1
    while True:
        try:
            candidate.mkdir(parents=True, exist_ok=False)
            return RunFolder(candidate)
        except FileExistsError:
            n += 1
            candidate = base / f"{new_run_dir(prompt, now).name}-{n}"
        except OSError as exc:  # e.g. a server started in a read-only working directory
            raise RunError(
                f"cannot create a run folder under {base} ({exc.strerror or exc}); "
                "point GCR_RUNS_DIR (or --runs-dir) at a writable folder"
            ) from None


async def refine_once(
    builder: StateGraph[Any, Any, Any, Any],
    prompt: str,
    *,
    source_images: Sequence[str] = (),
    context: RefineContext | Mapping[str, Any] | None = None,
    root: str | Path | None = None,
    on_event: EventHandler | None = None,
) -> RefineResult:
    """Run ``builder``'s graph on ``prompt`` in a new run folder under ``root``; return the result.

    Interactive review is not available here (there is nobody to ask): a context asking
    for it is refused. Cancelling the awaiting task stops the run; the folder keeps its
    checkpoints, and :func:`resume_once` continues it.
    """
    settings = _settings(context)
    if settings.interactive:
        raise RunError("interactive review needs a person at a terminal; run `gcr refine --interactive`")
    folder = new_run_folder(prompt, root)
    try:
        context = dataclasses.replace(settings, run_dir=str(folder.path))
        spec = RunSpec(prompt=prompt, source_images=list(source_images), context=context)
        outcome = await run_refine(builder, folder, spec, on_event=on_event)
    except (InputError, ConfigError):
        _drop_if_nothing_made(folder)
        raise
    return result_from_values(outcome.values, finished=outcome.finished)


def _drop_if_nothing_made(folder: RunFolder) -> None:
    """Remove the new run folder of a call refused for its input before any image was made.

    A server answering many calls would otherwise keep one folder of settings and an empty
    checkpoint store per refused call; a folder holding any round is kept for its resume.
    """
    if (folder.path / "rounds").exists():
        return
    logger.info("removing %s: the run was refused before it made anything", folder.path)
    shutil.rmtree(folder.path, ignore_errors=True)


async def resume_once(
    builder: StateGraph[Any, Any, Any, Any],
    run_dir: str | Path,
    *,
    root: str | Path | None = None,
    on_event: EventHandler | None = None,
) -> RefineResult:
    """Continue the run in ``run_dir`` (made by :func:`refine_once`) from its last checkpoint.

    With ``root`` given, ``run_dir`` must lie inside it: a caller over the network cannot
    point the server at other folders.
    """
    folder = RunFolder(run_dir)
    if root is not None and not folder.path.is_relative_to(runs_root(root)):
        raise RunError(f"{folder.path} is not a run folder of this server (runs live in {runs_root(root)})")
    if not folder.file(RunFolder.SETTINGS).is_file():
        raise RunError(f"{folder.path} holds no gcr run (run.json is missing)")
    spec = RunSpec.load(folder)
    outcome = await run_refine(builder, folder, spec, resume=True, on_event=on_event)
    return result_from_values(outcome.values, finished=outcome.finished)


def _settings(context: RefineContext | Mapping[str, Any] | None) -> RefineContext:
    if context is None:
        return RefineContext()
    if isinstance(context, RefineContext):
        return context
    return RefineContext.from_dict(dict(context))
