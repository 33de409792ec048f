"""``review`` (interactive mode): a person accepts, edits or rejects the next prompt.

The node pauses the graph with :func:`langgraph.types.interrupt`; the caller
resumes it with ``Command(resume=...)`` carrying a :class:`ReviewAnswer`, or a
plain string: ``"accept"``, ``"reject"``, or any other text, taken as the
edited prompt. Rejecting ends the run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from langgraph.runtime import Runtime
from langgraph.types import interrupt
from pydantic import BaseModel, model_validator

from gcr.agent.context import RefineContext
from gcr.agent.events import event
from gcr.agent.nodes.base import NodeDeps
from gcr.agent.state import RefineState, Review
from gcr.agent.stopping import StopReason
from gcr.limits import prompt_too_long


class ReviewAnswer(BaseModel):
    """A person's answer to a proposed prompt."""

    action: Literal["accept", "edit", "reject"]
    prompt: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            word = value.strip().lower()
            if word in ("accept", "reject"):
                return {"action": word}
            return {"action": "edit", "prompt": value}
        return value

    @model_validator(mode="after")
    def _edit_needs_prompt(self) -> ReviewAnswer:
        if self.action == "edit":
            text = " ".join((self.prompt or "").split())
            if not text:
                raise ValueError("an edit needs the new prompt text")
            too_long = prompt_too_long(text)
            if too_long is not None:
                raise ValueError(f"the edited prompt {too_long}")
            self.prompt = text
        return self


ReviewNode = Callable[[RefineState, Runtime[RefineContext]], dict[str, Any]]


def make_review(deps: NodeDeps) -> ReviewNode:
    def review(state: RefineState, runtime: Runtime[RefineContext]) -> dict[str, Any]:
        pending = state.get("pending")
        if not pending:
            raise RuntimeError("review reached without a pending refinement")
        rounds = list(state["rounds"])
        last = rounds[-1]
        answer: ReviewAnswer = interrupt(
            {
                "round": last["round"],
                "user_prompt": state["prompt"],
                "current_prompt": state["current_prompt"],
                "proposed": pending["proposed"],
                "next_prompt": pending["next_prompt"],
                "accepted_by_guard": pending["accepted"],
                "reason": pending["reason"],
                "is_new": pending["is_new"],
                "best_reward": last["best_reward"],
                "best_scores": last["best_scores"],
            },
            response_schema=ReviewAnswer,
        )
        tried = [r["prompt"] for r in rounds]
        update: dict[str, Any] = {"pending": None}
        if answer.action == "reject":
            update.update(
                stop_reason=StopReason.USER_REJECTED.value, stop_detail="the proposed prompt was rejected"
            )
            chosen = None
        else:
            chosen = pending["next_prompt"] if answer.action == "accept" else answer.prompt
            if chosen in tried:
                update.update(
                    stop_reason=StopReason.NOTHING_NEW.value,
                    stop_detail=f"the {'accepted' if answer.action == 'accept' else 'edited'} prompt was "
                    f"already tried in round {tried.index(chosen)}",  # type: ignore[arg-type]
                )
            else:
                update.update(
                    current_prompt=chosen,
                    prompt_origin=deps.refiner.name if answer.action == "accept" else "edited",
                )
        rounds[-1] = {**last, "review": Review(action=answer.action, prompt=chosen)}
        update["rounds"] = rounds
        deps.emit(runtime, event("reviewed", round=last["round"], action=answer.action, prompt=chosen))
        return update

    return review
