"""``generate``: make one candidate image, or find it already made.

Lookup order: the run folder (a re-run of this very task after a resume), then
the content-keyed cache (a repeated run), then the generator. Generator calls
run on ``NodeDeps.generator_executor`` (its worker count bounds them); lookups
and PNG work run in the loop's worker threads, so the event loop stays free and
a candidate waiting for the generator holds no thread. The image is encoded
once (a fast, lossless PNG) and goes to the run folder; its path, never its
bytes, travels on to ``critique``, which finds pixels and bytes in
``NodeDeps.images`` instead of decoding the file again.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Command, Send

from gcr.agent.cache import generation_key
from gcr.agent.context import RefineContext
from gcr.agent.events import event
from gcr.agent.image_store import ImageStore
from gcr.agent.image_writer import active_writer, write_file_atomically
from gcr.agent.nodes.base import NodeDeps, kept_work
from gcr.agent.run_folder import RunFolder
from gcr.agent.state import CandidateTask, CritiqueTask
from gcr.errors import GeneratorError, GeneratorOOMError
from gcr.generators.base import GenerationRequest, GenerationResult
from gcr.image_input import ImageInput
from gcr.images import image_digest, load_image
from gcr.io import copy_file_atomic

GenerateNode = Callable[[CandidateTask, Runtime[RefineContext]], Awaitable[Command[Any]]]


def make_generate(deps: NodeDeps) -> GenerateNode:
    async def generate(task: CandidateTask, runtime: Runtime[RefineContext]) -> Command[Any]:
        settings = deps.settings(runtime)
        folder = await deps.afolder(settings, task["run_dir"])
        target = folder.image_path(task["round"], task["index"])
        sidecar = target.with_suffix(".generation.json")
        params = settings.generation_params()
        key = generation_key(
            model_id=deps.generator.model_id,
            params=params,
            prompt=task["prompt"],
            seed=task["seed"],
            source_digests=task["source_digests"],
        )
        digest, seconds, cached = await _produce(deps, task, folder, params, key, target, sidecar)
        image = await kept_work(_note_generation, folder, target, sidecar, key, digest, task["seed"])
        deps.emit(
            runtime,
            event(
                "candidate_generated",
                round=task["round"],
                index=task["index"],
                seed=task["seed"],
                image=str(target),
                cached=cached,
                seconds=seconds,
            ),
        )
        payload = CritiqueTask(
            **task,
            image=image,
            image_digest=digest,
            generate_s=seconds,
            cached_generation=cached,
        )
        return Command(goto=Send("critique", payload))

    return generate


async def _produce(
    deps: NodeDeps,
    task: CandidateTask,
    folder: RunFolder,
    params: dict[str, Any],
    key: str,
    target: Path,
    sidecar: Path,
) -> tuple[str, float, bool]:
    """Find or make the candidate's image at ``target``: (pixel digest, generator seconds, cached)."""
    found = await asyncio.to_thread(_find, deps, key, target, sidecar)
    if found is not None:
        return found, 0.0, True
    request = await asyncio.to_thread(_request, task, folder, params, deps.images)
    loop = asyncio.get_running_loop()
    result, seconds = await loop.run_in_executor(deps.generator_executor, _call_generator, deps, request)
    digest = await kept_work(_store, deps, task, key, target, result, seconds)
    return digest, seconds, False


def _note_generation(folder: RunFolder, target: Path, sidecar: Path, key: str, digest: str, seed: int) -> str:
    """Write the sidecar that lets a resume recognise the image; return the image's recorded path."""
    folder.write_text(sidecar, json.dumps({"key": key, "image_digest": digest, "seed": seed}))
    return folder.relative(target)


def _find(deps: NodeDeps, key: str, target: Path, sidecar: Path) -> str | None:
    return _from_run_folder(target, sidecar, key) or _from_cache(deps, key, target)


def _request(
    task: CandidateTask, folder: RunFolder, params: dict[str, Any], images: ImageStore
) -> GenerationRequest:
    return GenerationRequest(
        prompt=task["prompt"],
        seed=task["seed"],
        num_images=1,
        source_images=[images.open(folder.resolve(p)).pixels() for p in task["source_images"]],
        **params,
    )


def _store(
    deps: NodeDeps, task: CandidateTask, key: str, target: Path, result: GenerationResult, seconds: float
) -> str:
    """Write the generated image to the run folder (and the cache); return its pixel digest."""
    if not result.images:
        raise GeneratorError(f"{deps.generator.model_id} returned no image for seed {task['seed']}")
    image = result.images[0]
    digest = image_digest(image)  # from the array in memory
    held = ImageInput.from_pil(image)
    deps.images.put(target, held)
    cache_copy = None
    if deps.cache is not None:
        meta = {
            "image_digest": digest,
            "model_id": result.model_id,
            "params": result.params,
            "seed": task["seed"],
            "prompt": task["prompt"],
            "generate_s": seconds,
        }
        cache, cache_copy = deps.cache, lambda: cache.put_image_file(key, target, meta)
    writer = active_writer()
    if writer is not None:
        # Behind the critical path; the run's checkpointer saves nothing until it is on disk.
        writer.submit(held, target, then=cache_copy)
    else:
        write_file_atomically(held.encoded()[0], target)
        held.record_file(target)
        if cache_copy is not None:
            cache_copy()
    return digest


def _from_run_folder(target: Path, sidecar: Path, key: str) -> str | None:
    """The digest of an image this very task already wrote, if its key matches."""
    if not (target.exists() and sidecar.exists()):
        return None
    try:
        meta = json.loads(sidecar.read_text("utf-8"))
    except ValueError:
        return None
    return meta.get("image_digest") if meta.get("key") == key else None


def _from_cache(deps: NodeDeps, key: str, target: Path) -> str | None:
    if deps.cache is None:
        return None
    hit = deps.cache.get_image(key)
    if hit is None:
        return None
    path, meta = hit
    copy_file_atomic(path, target)
    return str(meta.get("image_digest") or image_digest(load_image(target)))


def _call_generator(deps: NodeDeps, request: GenerationRequest) -> tuple[GenerationResult, float]:
    """Generate (on the generator executor); the time returned excludes waiting in its queue."""
    started = time.perf_counter()
    try:
        return deps.generator.generate(request), time.perf_counter() - started
    except GeneratorError:
        raise
    except Exception as exc:
        if _is_out_of_memory(exc):
            size = f"{request.width or 'default'}x{request.height or 'default'}"
            raise GeneratorOOMError(
                f"{deps.generator.model_id} ran out of accelerator memory at size {size}: use a smaller "
                "--size, fewer --candidates, or CPU offload for the generator"
            ) from exc
        raise


def _is_out_of_memory(exc: BaseException) -> bool:
    return type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower()
