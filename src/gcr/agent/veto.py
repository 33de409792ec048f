"""The cross-judge veto: a second opinion before the loop replaces its best image.

When a round's best image beats the run's best by the critic's reward, the
loop would keep it. With a veto judge (``--veto-judge SPEC --veto-drop D``), the
judge first scores both images against the user's original prompt; the new
image is accepted only if the judge's score does not fall by more than ``D``
(judge scores are in [0, 1]) against the current best::

    accepted  ⇔  judge(new) ≥ judge(current) − D

A vetoed round keeps the current best and, for the stopping rules, counts as a
round without a gain (so a critic the judge disagrees with cannot run the loop
to its target). Every check is recorded in the round (``veto`` in the
trajectory and the report).

Verdicts go through :class:`~gcr.judges.runner.JudgePanel` (bounded, cached by
content with the judge's identity in the key, so a resumed run asks nothing
twice). A judge that cannot be reached stops the run like an unreachable critic
does (the run is resumable). A judge whose answer cannot be read does not get to
decide: the check is recorded as ``failed`` with the error and the critic's
choice stands; it never counts as a score of 0.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, TypedDict

from PIL import Image

from gcr.errors import ConfigError, JudgeUnavailableError
from gcr.images import load_image
from gcr.judges.base import Judge
from gcr.judges.runner import JudgePanel, JudgeVerdict

logger = logging.getLogger(__name__)

VetoStatus = Literal["accepted", "vetoed", "failed"]
#: Float slack so that "falls by exactly D" is not vetoed through rounding.
_EPSILON = 1e-9


class VetoRecord(TypedDict):
    """One veto check, stored in the round that triggered it."""

    judge: str
    drop: float
    status: VetoStatus
    #: Critic rewards of the current best and of the round's best (which asked to replace it).
    current_reward: float
    candidate_reward: float
    #: Judge scores in [0, 1]; None when the judge failed on that image.
    current_score: float | None
    candidate_score: float | None
    #: (round, index) of the current best and of the challenger.
    current: list[int]
    candidate: list[int]
    error: str | None


class Veto:
    """A veto judge and the cached, bounded path its verdicts go through."""

    def __init__(self, judge: Judge, *, cache_dir: str | Path | None = None) -> None:
        self.judge = judge
        self.panel = JudgePanel([judge], cache_dir=cache_dir, concurrency=2)

    @property
    def identity(self) -> str:
        return self.judge.identity

    async def check(
        self,
        prompt: str,
        source_images: Sequence[str],
        current: dict,
        candidate: dict,
        drop: float,
    ) -> VetoRecord:
        """Judge ``current`` and ``candidate`` (candidate records with ``image`` paths) and decide."""
        if not 0.0 <= drop <= 1.0:
            raise ConfigError(f"veto_drop is a fall in judge score, between 0 and 1 (got {drop})")
        sources, cur_img, cand_img = await asyncio.to_thread(
            _load, source_images, current["image"], candidate["image"]
        )
        cur, cand = await asyncio.gather(
            self.panel.verdict(self.judge, prompt, cur_img, sources),
            self.panel.verdict(self.judge, prompt, cand_img, sources),
        )
        failed = [v for v in (cur, cand) if not v.ok]
        for verdict in failed:
            if (verdict.error or {}).get("type") == JudgeUnavailableError.__name__:
                raise JudgeUnavailableError(f"veto judge {self.identity}: {verdict.error['message']}")
        status: VetoStatus
        if failed:
            status = "failed"
            logger.warning("veto judge failed (%s); the critic's choice stands", _message(failed))
        elif cand.score < cur.score - drop - _EPSILON:  # type: ignore[operator]
            status = "vetoed"
        else:
            status = "accepted"
        return VetoRecord(
            judge=self.identity,
            drop=drop,
            status=status,
            current_reward=float(current["reward"]),
            candidate_reward=float(candidate["reward"]),
            current_score=cur.score,
            candidate_score=cand.score,
            current=[int(current["round"]), int(current["index"])],
            candidate=[int(candidate["round"]), int(candidate["index"])],
            error=_message(failed) if failed else None,
        )

    async def aclose(self) -> None:
        await self.panel.aclose()


def _load(sources: Sequence[str], a: str, b: str) -> tuple[list[Image.Image], Image.Image, Image.Image]:
    return [load_image(p) for p in sources], load_image(a), load_image(b)


def _message(verdicts: Sequence[JudgeVerdict]) -> str:
    return "; ".join(f"{(v.error or {}).get('type')}: {(v.error or {}).get('message')}" for v in verdicts)
