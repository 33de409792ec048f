"""Progress events the graph writes to LangGraph's ``custom`` stream.

Stream with ``graph.astream(..., stream_mode="custom")`` (or together with other
modes) to receive them. Within a run they arrive in this order: ``run_started``;
per round ``round_started``, then per candidate ``candidate_generated`` followed
later by ``candidate_scored`` or ``candidate_skipped`` (candidates of one round
interleave in any order), ``round_finished``, then ``refined`` (and ``reviewed``
in interactive mode) unless the run stops there; finally ``stopped``.

Every event is a plain dict with a ``type`` key and these fields:

==================== ===========================================================
run_started          run_dir, prompt, task, candidates, max_rounds
round_started        round, prompt, prompt_origin, seeds
candidate_generated  round, index, seed, image, cached, seconds
candidate_scored     round, index, reward, scores, cached, seconds
candidate_skipped    round, index, reason
round_finished       round, prompt, best_index, best_reward, best_scores, rewards,
                     run_best_reward, new_best, elapsed_s (and veto, the
                     :class:`~gcr.agent.veto.VetoRecord`, when a veto judge checked)
refined              round, refiner, proposed, accepted, reason, next_prompt, is_new
reviewed             round, action, prompt
stopped              reason, detail, rounds, best_image, best_reward, best_prompt
==================== ===========================================================
"""

from __future__ import annotations

from typing import Any, Literal

EventType = Literal[
    "run_started",
    "round_started",
    "candidate_generated",
    "candidate_scored",
    "candidate_skipped",
    "round_finished",
    "refined",
    "reviewed",
    "stopped",
]


def event(kind: EventType, **fields: Any) -> dict[str, Any]:
    """A stream event of type ``kind`` carrying ``fields``."""
    return {"type": kind, **fields}
