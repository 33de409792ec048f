"""``refine``: propose the next prompt from the round's best critique, through the guard.

The refiner works from the critique of the latest round's best image (what the
current prompt produced). A proposal the guard turns down keeps the previous
prompt. If the resulting prompt was already tried, the run stops: with the same
seeds it would only reproduce an earlier round. In interactive mode the
decision is left to ``review``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from langgraph.runtime import Runtime

from gcr.agent.context import RefineContext
from gcr.agent.events import event
from gcr.agent.guard import GuardVerdict
from gcr.agent.nodes.base import NodeDeps
from gcr.agent.refiner import RefineRequest
from gcr.agent.state import Refinement, RefineState
from gcr.agent.stopping import StopReason
from gcr.critic.schema import Critique
from gcr.limits import prompt_too_long

RefineNode = Callable[[RefineState, Runtime[RefineContext]], Awaitable[dict[str, Any]]]


def make_refine(deps: NodeDeps) -> RefineNode:
    async def refine(state: RefineState, runtime: Runtime[RefineContext]) -> dict[str, Any]:
        settings = deps.settings(runtime)
        rounds = list(state["rounds"])
        last = rounds[-1]
        candidates = list(state.get("candidates") or [])
        best = next(c for c in candidates if c["round"] == last["round"] and c["index"] == last["best_index"])
        folder = await deps.afolder(settings, state["run_dir"])
        path = await asyncio.to_thread(folder.resolve, best["critique_json"])  # type: ignore[arg-type]
        critique = Critique.from_json(await asyncio.to_thread(path.read_text, "utf-8"))
        tried = [r["prompt"] for r in rounds]
        started = time.perf_counter()
        proposal = await deps.refiner.propose(
            RefineRequest(
                user_prompt=state["prompt"],
                current_prompt=state["current_prompt"],
                critique=critique,
                task=deps.task,
                tried_prompts=tuple(tried),
            )
        )
        too_long = prompt_too_long(" ".join((proposal.prompt or "").split()))
        if too_long is not None:
            verdict = GuardVerdict(False, None, f"the proposal {too_long}")
        else:
            verdict = deps.guard.check(state["prompt"], proposal.prompt)
        seconds = time.perf_counter() - started
        if verdict.accepted and verdict.prompt is not None:
            next_prompt, reason = verdict.prompt, proposal.note
        else:
            next_prompt = state["current_prompt"]
            why = "; ".join(r for r in (proposal.note, verdict.reason) if r)
            reason = f"{why}; the previous prompt is kept"
        is_new = next_prompt not in tried
        refinement = Refinement(
            refiner=deps.refiner.name,
            proposed=proposal.prompt,
            accepted=verdict.accepted,
            reason=reason,
            next_prompt=next_prompt,
            is_new=is_new,
            refine_s=seconds,
        )
        rounds[-1] = {**last, "refinement": refinement}
        await asyncio.to_thread(folder.write_trajectory, rounds, candidates)
        deps.emit(
            runtime,
            event(
                "refined",
                round=last["round"],
                refiner=refinement["refiner"],
                proposed=refinement["proposed"],
                accepted=refinement["accepted"],
                reason=refinement["reason"],
                next_prompt=next_prompt,
                is_new=is_new,
            ),
        )
        update: dict[str, Any] = {"rounds": rounds}
        if settings.interactive:
            update["pending"] = refinement
        elif not is_new:
            update["stop_reason"] = StopReason.NOTHING_NEW.value
            update["stop_detail"] = nothing_new_detail(refinement, tried)
        else:
            update["current_prompt"] = next_prompt
            update["prompt_origin"] = deps.refiner.name
        return update

    return refine


def nothing_new_detail(refinement: Refinement, tried: list[str]) -> str:
    """Why a refinement brought nothing to try."""
    if not refinement["accepted"]:
        return f"the refiner's proposal was turned down ({refinement['reason']})"
    round_index = tried.index(refinement["next_prompt"])
    return f"the refiner proposed the prompt of round {round_index} again"
