"""When to stop refining: a pluggable policy over the history of rounds.

The graph asks a :class:`StoppingPolicy` after every round whether to go on.
:class:`StopRules` is the built-in policy; any object with the same ``decide``
method can replace it (pass it to :func:`gcr.agent.build_graph`). Two reasons
come from elsewhere in the graph and are listed here so that every run ends
with one of :class:`StopReason`: the refiner proposing nothing new, and a
person rejecting the proposal in interactive mode.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from gcr.agent.context import RefineContext


class StopReason(StrEnum):
    """Why a run ended."""

    TARGET_REWARD = "target_reward"
    DIMENSION_TARGET = "dimension_target"
    PLATEAU = "plateau"
    MAX_ROUNDS = "max_rounds"
    WALL_TIME = "wall_time"
    GENERATION_BUDGET = "generation_budget"
    NOTHING_NEW = "nothing_new"
    USER_REJECTED = "user_rejected"


@dataclass(frozen=True)
class RoundOutcome:
    """What the policy knows about one finished round.

    ``reward`` and ``scores`` belong to the round's best candidate; ``generations``
    is the number of images that round produced; ``elapsed_s`` its wall time.
    """

    reward: float
    scores: dict[str, float | None] = field(default_factory=dict)
    generations: int = 1
    elapsed_s: float = 0.0


@dataclass(frozen=True)
class StopDecision:
    reason: StopReason
    detail: str


@runtime_checkable
class StoppingPolicy(Protocol):
    """Decides from the rounds so far (oldest first) whether the run ends now."""

    def decide(self, history: Sequence[RoundOutcome]) -> StopDecision | None:
        """Return why to stop, or ``None`` to run another round."""
        ...


def _setting_default(name: str) -> Any:
    """The default of refine setting ``name``: the rules' defaults are :class:`RefineContext`'s."""
    return RefineContext.__dataclass_fields__[name].default


@dataclass(frozen=True)
class StopRules:
    """The built-in policy. Rules are checked in this order; the first that fires wins.

    1. ``target_reward``: the best reward so far reached the target.
    2. ``dimension_target``: one image scored at least this on every scored dimension
       (N/A dimensions are ignored; an image with no scored dimension never qualifies).
    3. ``max_rounds``: that many rounds are done.
    4. ``max_generations``: another round of ``candidates_per_round`` images would exceed it.
    5. ``max_wall_s``: another round, estimated to take as long as the slowest so far,
       would end past the budget.
    6. plateau: the best reward rose by less than ``min_delta`` in each of the last
       ``patience`` rounds.

    The defaults are those of :class:`RefineContext`; :meth:`from_context` reads a run's settings.
    """

    target_reward: float | None = _setting_default("target_reward")
    dimension_target: float | None = _setting_default("dimension_target")
    min_delta: float = _setting_default("min_delta")
    patience: int = _setting_default("patience")
    max_rounds: int = _setting_default("max_rounds")
    max_generations: int | None = _setting_default("max_generations")
    max_wall_s: float | None = _setting_default("max_wall_s")
    candidates_per_round: int = _setting_default("candidates")

    @classmethod
    def from_context(cls, settings: RefineContext) -> StopRules:
        """The rules a run with these settings stops by (every rule is a setting of the same name)."""
        names = [f.name for f in dataclasses.fields(cls) if f.name != "candidates_per_round"]
        rules = {name: getattr(settings, name) for name in names}
        return cls(**rules, candidates_per_round=settings.candidates)

    def decide(self, history: Sequence[RoundOutcome]) -> StopDecision | None:
        if not history:
            return None
        best = best_so_far(history)
        if self.target_reward is not None and best[-1] >= self.target_reward:
            return StopDecision(
                StopReason.TARGET_REWARD,
                f"best reward {best[-1]:.3f} reached the target {self.target_reward:g}",
            )
        if self.dimension_target is not None:
            for index, outcome in enumerate(history):
                scored = [s for s in outcome.scores.values() if s is not None]
                if scored and min(scored) >= self.dimension_target:
                    return StopDecision(
                        StopReason.DIMENSION_TARGET,
                        f"every dimension of round {index}'s best image scored at least "
                        f"{self.dimension_target:g}",
                    )
        rounds = len(history)
        if rounds >= self.max_rounds:
            return StopDecision(StopReason.MAX_ROUNDS, f"{rounds} of {self.max_rounds} rounds done")
        used = sum(o.generations for o in history)
        if self.max_generations is not None and used + self.candidates_per_round > self.max_generations:
            return StopDecision(
                StopReason.GENERATION_BUDGET,
                f"{used} of {self.max_generations} generations used; another round needs "
                f"{self.candidates_per_round}",
            )
        if self.max_wall_s is not None:
            elapsed = sum(o.elapsed_s for o in history)
            estimate = max(o.elapsed_s for o in history)
            if elapsed + estimate > self.max_wall_s:
                return StopDecision(
                    StopReason.WALL_TIME,
                    f"{elapsed:.1f} s used of {self.max_wall_s:g} s; another round would take about "
                    f"{estimate:.1f} s",
                )
        if rounds > self.patience:
            gains = [best[i] - best[i - 1] for i in range(rounds - self.patience, rounds)]
            if all(g < self.min_delta for g in gains):
                return StopDecision(
                    StopReason.PLATEAU,
                    f"best reward improved by less than {self.min_delta:g} in each of the last "
                    f"{self.patience} round(s)",
                )
        return None


def best_so_far(history: Sequence[RoundOutcome]) -> list[float]:
    """The running maximum of the round rewards."""
    out: list[float] = []
    for outcome in history:
        out.append(outcome.reward if not out else max(out[-1], outcome.reward))
    return out
