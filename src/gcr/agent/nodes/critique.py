"""``critique``: have the critic judge one candidate against the user's request.

The critic always sees the user's *original* request, whatever prompt produced
the image, so scores stay comparable across rounds and the best image is the
one that best serves what the user asked for.

An answer that cannot be read (after the critic's own re-ask) or that scores no
selected dimension skips this candidate with the reason recorded; the round
goes on with the others. Any other critic failure (server unreachable, HTTP
errors, an empty answer) raises, leaving the run resumable: finished candidates
are kept in the checkpoint and the cache, and a resume asks again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime
from PIL import Image

from gcr.agent.cache import ArtifactCache, critique_key
from gcr.agent.context import RefineContext
from gcr.agent.events import event
from gcr.agent.image_writer import active_writer
from gcr.agent.nodes.base import NodeDeps, kept_work
from gcr.agent.run_folder import RunFolder
from gcr.agent.state import CandidateRecord, CritiqueTask
from gcr.critic.schema import Critique
from gcr.critic.scoring import normalized_reward
from gcr.errors import CritiqueParseError, RewardError
from gcr.image_input import ImageInput

CritiqueNode = Callable[[CritiqueTask, Runtime[RefineContext]], Awaitable[dict[str, Any]]]


def make_critique(deps: NodeDeps) -> CritiqueNode:
    async def critique(task: CritiqueTask, runtime: Runtime[RefineContext]) -> dict[str, Any]:
        settings = deps.settings(runtime)
        folder = await deps.afolder(settings, task["run_dir"])
        json_path, text_path = folder.critique_paths(task["round"], task["index"])
        kind = deps.task
        key = critique_key(
            critic_identity=deps.critic.cache_identity("pointwise", kind),
            task=kind.value,
            prompt=task["user_prompt"],
            image_digest=task["image_digest"],
            source_digests=task["source_digests"],
        )
        result: Critique | None = None
        if deps.cache is not None:
            result = await asyncio.to_thread(deps.cache.get_critique, key)
        cached, seconds = result is not None, 0.0
        if result is None:
            # The images generate kept (pixels and PNG bytes), else the files; anything that
            # still has to be read or decoded happens off the event loop.
            image, sources = await asyncio.to_thread(_images_for_critic, deps, task, folder)
            started = time.perf_counter()
            try:
                result = await deps.critic.acritique(task["user_prompt"], image, sources=sources, task=kind)
            except CritiqueParseError as exc:
                seconds = time.perf_counter() - started
                raw = getattr(exc, "raw_text", "")
                kept = await kept_work(_keep_raw_answer, folder, text_path, raw) if raw else None
                return _skip(deps, runtime, task, str(exc), seconds, kept)
            seconds = time.perf_counter() - started
        cache = deps.cache if not cached else None
        json_rel, text_rel = await kept_work(
            _save_critique, folder, json_path, text_path, result, cache, key
        )
        try:
            reward = normalized_reward(result, deps.reward_spec(settings))
        except RewardError as exc:
            return _skip(
                deps,
                runtime,
                task,
                str(exc),
                seconds,
                text_rel,
                json_path=json_rel,
            )
        record = _record(task, seconds, cached)
        record.update(
            status="scored",
            reward=reward,
            scores=result.scores,
            critique_summary=result.summary,
            refined_request=result.refined_request,
            critique_json=json_rel,
            critique_text=text_rel,
        )
        deps.emit(
            runtime,
            event(
                "candidate_scored",
                round=task["round"],
                index=task["index"],
                reward=reward,
                scores=result.scores,
                cached=cached,
                seconds=seconds,
            ),
        )
        return {"candidates": [record]}

    return critique


def _keep_raw_answer(folder: RunFolder, text_path: Path, raw: str) -> str:
    """Keep an unreadable answer next to where its critique would be; return its recorded path."""
    folder.write_text(text_path, raw)
    return folder.relative(text_path)


def _save_critique(
    folder: RunFolder,
    json_path: Path,
    text_path: Path,
    result: Critique,
    cache: ArtifactCache | None,
    key: str,
) -> tuple[str, str]:
    """Store a critique (in ``cache`` too when given); return the recorded paths of its two files."""
    if cache is not None:
        cache.put_critique(key, result)
    folder.write_text(json_path, result.model_dump_json(indent=2))
    folder.write_text(text_path, result.raw_text)
    return folder.relative(json_path), folder.relative(text_path)


def _images_for_critic(
    deps: NodeDeps, task: CritiqueTask, folder: RunFolder
) -> tuple[Image.Image | ImageInput, list[Image.Image | ImageInput]]:
    """The candidate and the sources as the critic takes them.

    gcr's :class:`~gcr.critic.critic.Critic` takes :class:`ImageInput` (it sends the bytes
    already written, or a ``file://`` URL, and decodes nothing); any other critic gets
    PIL pixels, from memory when this process made the image.
    """
    image = _open(deps, folder.resolve(task["image"]))
    sources = [_open(deps, folder.resolve(p)) for p in task["source_images"]]
    if getattr(deps.critic, "accepts_image_inputs", False):
        return image, list(sources)
    return image.pixels(), [s.pixels() for s in sources]


def _open(deps: NodeDeps, path: str | Path) -> ImageInput:
    """The image this process holds for ``path``, else the file (waiting for queued writes first)."""
    found = deps.images.get(path)
    if found is None:
        writer = active_writer()
        if writer is not None:  # evicted before its file was written: wait until it is
            writer.flush()
        found = deps.images.open(path)
    return found


def _record(task: CritiqueTask, seconds: float, cached: bool) -> CandidateRecord:
    return CandidateRecord(
        round=task["round"],
        index=task["index"],
        seed=task["seed"],
        prompt=task["prompt"],
        image=task["image"],
        image_digest=task["image_digest"],
        status="skipped",
        reward=None,
        scores={},
        critique_summary=None,
        refined_request=None,
        critique_json=None,
        critique_text=None,
        skip_reason=None,
        generate_s=task["generate_s"],
        critique_s=seconds,
        cached_generation=task["cached_generation"],
        cached_critique=cached,
    )


def _skip(
    deps: NodeDeps,
    runtime: Runtime[Any],
    task: CritiqueTask,
    reason: str,
    seconds: float,
    text_path: object,
    json_path: str | None = None,
) -> dict[str, Any]:
    record = _record(task, seconds, cached=False)
    record.update(
        skip_reason=reason,
        critique_text=None if text_path is None else str(text_path),
        critique_json=json_path,
    )
    deps.emit(runtime, event("candidate_skipped", round=task["round"], index=task["index"], reason=reason))
    return {"candidates": [record]}
