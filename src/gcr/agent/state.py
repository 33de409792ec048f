"""The refine graph's state, its narrow input and output, and the fan-out payloads.

Everything is plain JSON-like data: images are referenced by their *paths* in
the run folder (never bytes), critiques by the path of their JSON file, so a
checkpoint stays small and any checkpointer can store it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired, TypedDict

from gcr.agent.veto import VetoRecord

CandidateStatus = Literal["scored", "skipped"]
#: Where a round's prompt came from: ``user`` (round 0), ``edited`` (a person, interactive
#: mode) or the refiner's name (``critic``, ``llm``, or a custom refiner's).
PromptOrigin = str


class CandidateRecord(TypedDict):
    """One generated image and what the critic made of it."""

    round: int
    index: int
    seed: int
    prompt: str
    image: str
    image_digest: str
    status: CandidateStatus
    reward: float | None
    scores: dict[str, float | None]
    critique_summary: str | None
    refined_request: str | None
    critique_json: str | None
    critique_text: str | None
    skip_reason: str | None
    generate_s: float
    critique_s: float
    cached_generation: bool
    cached_critique: bool


class Refinement(TypedDict):
    """What the refiner proposed after a round and what became of it."""

    refiner: str
    proposed: str | None
    accepted: bool
    reason: str | None
    next_prompt: str
    is_new: bool
    refine_s: float


class Review(TypedDict):
    """A person's answer in interactive mode."""

    action: Literal["accept", "edit", "reject"]
    prompt: str | None


class RoundRecord(TypedDict):
    """A finished round: its prompt, its candidates' rewards, its best one."""

    round: int
    prompt: str
    prompt_origin: PromptOrigin
    seeds: list[int]
    rewards: list[float | None]
    skipped: list[str]
    best_index: int
    best_reward: float
    best_scores: dict[str, float | None]
    new_best: bool
    generate_s: float
    critique_s: float
    elapsed_s: float
    refinement: NotRequired[Refinement]
    review: NotRequired[Review]
    #: The cross-judge veto's check, when the round's best challenged the run's best.
    veto: NotRequired[VetoRecord]


class CandidateTask(TypedDict):
    """Payload sent to the ``generate`` node, one per candidate."""

    round: int
    index: int
    seed: int
    prompt: str
    user_prompt: str
    run_dir: str
    source_images: list[str]
    source_digests: list[str]


class CritiqueTask(CandidateTask):
    """Payload sent from ``generate`` to ``critique`` for the same candidate."""

    image: str
    image_digest: str
    generate_s: float
    cached_generation: bool


def merge_candidates(left: list[CandidateRecord], right: list[CandidateRecord]) -> list[CandidateRecord]:
    """Reducer: add candidates, a re-run replacing its earlier record; ordered by round and index."""
    merged = {(c["round"], c["index"]): c for c in left}
    for c in right:
        merged[(c["round"], c["index"])] = c
    return [merged[k] for k in sorted(merged)]


class RefineInput(TypedDict):
    """What a caller gives the graph: the request and, for editing, source image paths."""

    prompt: str
    source_images: NotRequired[list[str]]


class RefineOutput(TypedDict):
    """What the graph returns: the best image of the whole run and the evidence."""

    run_dir: str
    best: CandidateRecord | None
    rounds: list[RoundRecord]
    stop_reason: str | None
    stop_detail: str | None
    summary: dict[str, Any] | None


class RefineState(TypedDict):
    """The full working state.

    ``round`` is the index of the round being run; ``current_prompt`` the prompt
    it generates from. ``pending`` holds a refinement awaiting a person's review.
    """

    prompt: str
    source_images: NotRequired[list[str]]
    source_digests: NotRequired[list[str]]
    run_dir: NotRequired[str]
    started_at: NotRequired[float]
    round: NotRequired[int]
    round_started_at: NotRequired[float]
    round_seeds: NotRequired[list[int]]
    current_prompt: NotRequired[str]
    prompt_origin: NotRequired[PromptOrigin]
    candidates: NotRequired[Annotated[list[CandidateRecord], merge_candidates]]
    rounds: NotRequired[list[RoundRecord]]
    best: NotRequired[CandidateRecord | None]
    pending: NotRequired[Refinement | None]
    stop_reason: NotRequired[str | None]
    stop_detail: NotRequired[str | None]
    summary: NotRequired[dict[str, Any] | None]
