"""``finish``: write summary, trajectory and report, and announce why the run stopped."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from langgraph.runtime import Runtime

from gcr.agent.context import RefineContext
from gcr.agent.events import event
from gcr.agent.nodes.base import NodeDeps
from gcr.agent.report import write_report
from gcr.agent.run_folder import RunFolder, build_summary
from gcr.agent.state import RefineState

logger = logging.getLogger(__name__)

FinishNode = Callable[[RefineState, Runtime[RefineContext]], dict[str, Any]]


def make_finish(deps: NodeDeps) -> FinishNode:
    def finish(state: RefineState, runtime: Runtime[RefineContext]) -> dict[str, Any]:
        settings = deps.settings(runtime)
        folder = deps.folder(settings, state["run_dir"])
        summary = build_summary(
            state,
            task=deps.task.value,
            generator=deps.generator.model_id,
            critic=deps.critic.model_id,
            refiner=deps.refiner.name,
            finished_at=time.time(),
            folder=folder,
        )
        folder.write_json(RunFolder.SUMMARY, summary)
        folder.write_trajectory(state.get("rounds") or [], state.get("candidates") or [])
        if settings.write_report:
            write_report(folder, summary, state.get("rounds") or [], state.get("candidates") or [])
        best = state.get("best")
        logger.info(
            "run %s stopped: %s (%s)", folder.path, state.get("stop_reason"), state.get("stop_detail")
        )
        deps.emit(
            runtime,
            event(
                "stopped",
                reason=state.get("stop_reason"),
                detail=state.get("stop_detail"),
                rounds=len(state.get("rounds") or []),
                best_image=summary["best"]["image"] if summary["best"] else None,
                best_reward=None if best is None else best["reward"],
                best_prompt=None if best is None else best["prompt"],
            ),
        )
        return {"summary": summary}

    return finish
