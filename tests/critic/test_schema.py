"""Critique objects: JSON round trips, lookups, and the pairwise preference rule."""

from __future__ import annotations

import pytest
from critique_corpus import load_corpus

from gcr.critic.parser import parse_critique, parse_pairwise
from gcr.critic.schema import Critique, Dimension, DimensionJudgement, PairwiseCritique, PairwiseJudgement
from gcr.critic.scoring import normalized_reward
from gcr.task import Task

CASES = [c for c in load_corpus() if "error" not in c.expected]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_parsed_critiques_round_trip_through_json(case) -> None:
    if case.mode == "pointwise":
        critique = parse_critique(case.text, case.task)
        again = Critique.from_json(critique.to_json())
    else:
        critique = parse_pairwise(case.text, case.task)
        again = PairwiseCritique.from_json(critique.to_json())
    assert again == critique
    assert again.raw_text == case.text
    assert again.warnings == critique.warnings


def test_critique_lookups_and_missing_dimensions() -> None:
    c = Critique(
        task=Task.EDIT,
        judgements=[
            DimensionJudgement(dimension=Dimension.TEXT_FAITHFULNESS, score=3.5, justification="ok"),
            DimensionJudgement(dimension=Dimension.TEXT_RENDERING, score=None),
        ],
    )
    assert c.score("text_faithfulness") == 3.5
    assert c.score("Text Rendering") is None
    assert c.judgement(Dimension.TEXT_RENDERING).is_na  # type: ignore[union-attr]
    assert c.judgement("physical_quality") is None
    assert c.scores == {"text_faithfulness": 3.5, "text_rendering": None}
    # N/A is an answer, not a missing dimension.
    assert c.missing_dimensions == (Dimension.IMAGE_FAITHFULNESS, Dimension.PHYSICAL_QUALITY)
    assert normalized_reward(c) == pytest.approx(2.5 / 3)


def pair(*rows: tuple[Dimension, float | None, float | None]) -> PairwiseCritique:
    return PairwiseCritique(
        task=Task.T2I,
        judgements=[PairwiseJudgement(dimension=d, score_a=a, score_b=b) for d, a, b in rows],
    )


def test_totals_count_na_as_2_5_on_both_sides() -> None:
    c = pair(
        (Dimension.TEXT_FAITHFULNESS, 3.0, 3.5),
        (Dimension.PHYSICAL_QUALITY, 3.0, 3.0),
        (Dimension.TEXT_RENDERING, None, 3.0),
    )
    assert c.totals() == (8.5, 9.5)
    assert c.preference() == "B"
    assert c.preference(tie_tolerance=0.5) == "B"
    assert c.preference(tie_tolerance=1.0) == "tie"


def test_exact_equality_is_a_tie_and_a_wins_when_ahead() -> None:
    assert (
        pair((Dimension.TEXT_FAITHFULNESS, 3.25, 3.25), (Dimension.TEXT_RENDERING, None, None)).preference()
        == "tie"
    )
    assert pair((Dimension.TEXT_FAITHFULNESS, 3.5, 3.25)).preference() == "A"
    assert pair((Dimension.TEXT_FAITHFULNESS, 3.5, 3.25)).preference(tie_tolerance=0.25) == "tie"


def test_pairwise_json_round_trip_keeps_winners_and_none() -> None:
    c = PairwiseCritique(
        task=Task.EDIT,
        judgements=[
            PairwiseJudgement(dimension=Dimension.IMAGE_FAITHFULNESS, score_a=4, score_b=2, winner="A"),
            PairwiseJudgement(dimension=Dimension.TEXT_RENDERING, score_a=None, score_b=None, winner=None),
        ],
        summary="A keeps the source.",
        warnings=["a warning"],
        truncated=True,
    )
    again = PairwiseCritique.from_json(c.to_json())
    assert again == c
    assert again.judgement("text_rendering").winner is None  # type: ignore[union-attr]
    assert again.truncated and again.warnings == ["a warning"]
