"""``decide``: close a round, keep the best image of the run, ask the stopping policy.

With a veto judge (:mod:`gcr.agent.veto`), a round's best that beats the run's best
by the critic's reward is kept only if the judge agrees closely enough.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from langgraph.runtime import Runtime

from gcr.agent.context import RefineContext
from gcr.agent.events import event
from gcr.agent.nodes.base import NodeDeps
from gcr.agent.state import CandidateRecord, RefineState, RoundRecord
from gcr.agent.stopping import RoundOutcome
from gcr.agent.veto import VetoRecord
from gcr.errors import ConfigError, CriticResponseError

DecideNode = Callable[[RefineState, Runtime[RefineContext]], Awaitable[dict[str, Any]]]


def make_decide(deps: NodeDeps) -> DecideNode:
    async def decide(state: RefineState, runtime: Runtime[RefineContext]) -> dict[str, Any]:
        settings = deps.settings(runtime)
        folder = await deps.afolder(settings, state["run_dir"])
        index = state["round"]
        candidates = list(state.get("candidates") or [])
        members = [c for c in candidates if c["round"] == index]
        scored = [c for c in members if c["status"] == "scored"]
        if not scored:
            reasons = "; ".join(f"candidate {c['index']}: {c['skip_reason']}" for c in members)
            raise CriticResponseError(
                f"no candidate of round {index} could be scored ({reasons}). The critic's raw answers are "
                f"in {folder.path / 'rounds'}; a new run reuses the cached images"
            )
        # Highest reward wins; on a tie the lower candidate index (the earlier seed).
        round_best = max(scored, key=lambda c: (c["reward"], -c["index"]))
        previous: CandidateRecord | None = state.get("best")
        # Strictly better only, so ties keep the earlier round's image.
        new_best = previous is None or round_best["reward"] > previous["reward"]  # type: ignore[operator]
        veto: VetoRecord | None = None
        # A veto judge given to build_graph is always used; one named only in the settings must be given.
        if new_best and previous is not None and (deps.veto is not None or settings.veto_judge):
            if deps.veto is None:
                raise ConfigError(
                    f"the run's settings name a veto judge ({settings.veto_judge}) but the graph was built "
                    "without one: pass veto=load_judge(...) to build_graph"
                )
            # The state's image paths are relative to the run folder; the judge reads the files.
            recorded = [*(state.get("source_images") or []), previous["image"], round_best["image"]]
            *sources, before, after = await asyncio.to_thread(
                lambda: [str(folder.resolve(p)) for p in recorded]
            )
            veto = await deps.veto.check(
                state["prompt"],
                sources,
                {**previous, "image": before},
                {**round_best, "image": after},
                settings.veto_drop,
            )
            new_best = veto["status"] != "vetoed"
        run_best = round_best if new_best else previous
        generate_s = sum(c["generate_s"] for c in members)
        critique_s = sum(c["critique_s"] for c in members)
        # Wall time of the round, bounded by the work done in it so that time spent
        # stopped (between a crash and a resume) does not count against the budget.
        elapsed = min(time.time() - state.get("round_started_at", time.time()), generate_s + critique_s)
        record = RoundRecord(
            round=index,
            prompt=state["current_prompt"],
            prompt_origin=state.get("prompt_origin", "user"),
            seeds=list(state.get("round_seeds") or [c["seed"] for c in members]),
            rewards=[c["reward"] for c in members],
            skipped=[
                f"candidate {c['index']}: {c['skip_reason']}" for c in members if c["status"] == "skipped"
            ],
            best_index=round_best["index"],
            best_reward=float(round_best["reward"]),  # type: ignore[arg-type]
            best_scores=dict(round_best["scores"]),
            new_best=new_best,
            generate_s=generate_s,
            critique_s=critique_s,
            elapsed_s=max(0.0, elapsed),
        )
        if veto is not None:
            record["veto"] = veto
        rounds = [*(state.get("rounds") or []), record]
        history = [
            RoundOutcome(
                # A vetoed round is a round without a gain: it counts with the reward it kept.
                reward=_kept_reward(r),
                scores={} if _vetoed(r) else r["best_scores"],
                generations=len(r["seeds"]),
                elapsed_s=r["elapsed_s"],
            )
            for r in rounds
        ]
        decision = deps.policy(settings).decide(history)
        await asyncio.to_thread(folder.write_trajectory, rounds, candidates)
        deps.emit(
            runtime,
            event(
                "round_finished",
                round=index,
                prompt=record["prompt"],
                best_index=record["best_index"],
                best_reward=record["best_reward"],
                best_scores=record["best_scores"],
                rewards=record["rewards"],
                run_best_reward=run_best["reward"],  # type: ignore[index]
                new_best=new_best,
                elapsed_s=record["elapsed_s"],
                **({} if veto is None else {"veto": veto}),
            ),
        )
        return {
            "rounds": rounds,
            "best": run_best,
            "stop_reason": None if decision is None else decision.reason.value,
            "stop_detail": None if decision is None else decision.detail,
        }

    return decide


def _vetoed(record: RoundRecord) -> bool:
    veto = record.get("veto")
    return veto is not None and veto["status"] == "vetoed"


def _kept_reward(record: RoundRecord) -> float:
    if _vetoed(record):
        return float(record["veto"]["current_reward"])
    return float(record["best_reward"])
