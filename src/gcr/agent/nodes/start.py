"""``start`` checks the request and opens the run folder; ``launch`` begins each round.

The fan-out :func:`dispatch` sends one ``generate`` task per candidate.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Overwrite, Send

from gcr.agent.context import RefineContext, new_run_dir
from gcr.agent.events import event
from gcr.agent.nodes.base import NodeDeps
from gcr.agent.run_folder import RunFolder
from gcr.agent.state import CandidateTask, RefineState
from gcr.errors import InputError
from gcr.image_input import ImageInput, encode_png
from gcr.images import image_digest, load_image
from gcr.io import write_bytes_atomic
from gcr.limits import check_prompt
from gcr.task import Task

Node = Callable[[RefineState, Runtime[RefineContext]], dict[str, Any]]


def make_start(deps: NodeDeps) -> Node:
    def start(state: RefineState, runtime: Runtime[RefineContext]) -> dict[str, Any]:
        settings = deps.settings(runtime)
        prompt = " ".join(str(state.get("prompt") or "").split())
        if not prompt:
            raise InputError("the prompt is empty: say what the image should show (or how to edit it)")
        check_prompt(prompt)
        sources = [str(s) for s in state.get("source_images") or []]
        task = deps.task
        if task is Task.EDIT and not sources:
            raise InputError(
                f"{deps.generator.model_id} edits images: give the source image to edit (--image)"
            )
        if task is Task.T2I and sources:
            raise InputError(
                f"{deps.generator.model_id} is a text-to-image model and takes no source image; "
                "drop --image or choose an editing model"
            )
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        run_dir = settings.run_dir or str(new_run_dir(prompt, stamp))
        folder = RunFolder(run_dir).create()
        copies, digests = [], []
        for index, source in enumerate(sources):
            image = load_image(source)
            target = folder.source_path(index)
            if Path(source).expanduser().resolve() != target:
                data = encode_png(image)
                write_bytes_atomic(target, data)
                deps.images.put(target, ImageInput.from_pil(image, data=data, path=target))
            copies.append(folder.relative(target))
            digests.append(image_digest(image))
        deps.emit(
            runtime,
            event(
                "run_started",
                run_dir=str(folder.path),
                prompt=prompt,
                task=task.value,
                candidates=settings.candidates,
                max_rounds=settings.max_rounds,
            ),
        )
        return {
            "prompt": prompt,
            "source_images": copies,
            "source_digests": digests,
            "run_dir": str(folder.path),
            "started_at": time.time(),
            "current_prompt": prompt,
            "prompt_origin": "user",
            "candidates": Overwrite([]),
            "rounds": [],
            "best": None,
            "pending": None,
            "stop_reason": None,
            "stop_detail": None,
            "summary": None,
        }

    return start


def make_launch(deps: NodeDeps) -> Node:
    def launch(state: RefineState, runtime: Runtime[RefineContext]) -> dict[str, Any]:
        settings = deps.settings(runtime)
        index = len(state.get("rounds") or [])
        seeds = [settings.seed_for(index, i) for i in range(settings.candidates)]
        deps.emit(
            runtime,
            event(
                "round_started",
                round=index,
                prompt=state["current_prompt"],
                prompt_origin=state.get("prompt_origin", "user"),
                seeds=seeds,
            ),
        )
        return {"round": index, "round_seeds": seeds, "round_started_at": time.time(), "pending": None}

    return launch


def dispatch(state: RefineState) -> list[Send]:
    """One ``generate`` task per candidate of the current round that has no record yet.

    A fresh round has none; a round dispatched again to retry its failed critiques
    (see :func:`gcr.agent.runner.run_refine`) keeps the candidates that were scored.
    """
    present = {c["index"] for c in state.get("candidates") or [] if c["round"] == state["round"]}
    return [
        Send(
            "generate",
            CandidateTask(
                round=state["round"],
                index=i,
                seed=seed,
                prompt=state["current_prompt"],
                user_prompt=state["prompt"],
                run_dir=state["run_dir"],
                source_images=list(state.get("source_images") or []),
                source_digests=list(state.get("source_digests") or []),
            ),
        )
        for i, seed in enumerate(state["round_seeds"])
        if i not in present
    ]
