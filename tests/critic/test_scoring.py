"""Reward scoring with hand-computed values, and the reward spec's validation and CLI parsing."""

from __future__ import annotations

import math

import pytest

from gcr.critic.schema import Critique, Dimension, DimensionJudgement
from gcr.critic.scoring import RewardSpec, normalized_reward
from gcr.errors import ConfigError, CriticError, GCRError, RewardError
from gcr.task import Task

TF, IF, PQ, TR = (
    Dimension.TEXT_FAITHFULNESS,
    Dimension.IMAGE_FAITHFULNESS,
    Dimension.PHYSICAL_QUALITY,
    Dimension.TEXT_RENDERING,
)


def critique(task: Task, **scores: float | None) -> Critique:
    return Critique(
        task=task,
        judgements=[DimensionJudgement(dimension=Dimension(k), score=v) for k, v in scores.items()],
    )


T2I = critique(Task.T2I, text_faithfulness=3.5, physical_quality=2.75, text_rendering=None)
EDIT = critique(Task.EDIT, text_faithfulness=4, image_faithfulness=2, physical_quality=3, text_rendering=None)


def test_default_is_the_equal_mean_of_available_dimensions() -> None:
    # (3.5 + 2.75) / 2 = 3.125 -> (3.125 - 1) / 3
    assert normalized_reward(T2I) == pytest.approx(2.125 / 3)
    # (4 + 2 + 3) / 3 = 3 -> 2 / 3; N/A text rendering is left out, image faithfulness is in.
    assert normalized_reward(EDIT) == pytest.approx(2 / 3)


def test_upstream_rl_selection_leaves_image_faithfulness_out() -> None:
    spec = RewardSpec(dimensions=(TF, PQ, TR))
    # (4 + 3) / 2 = 3.5 -> 2.5 / 3
    assert normalized_reward(EDIT, spec) == pytest.approx(2.5 / 3)
    assert RewardSpec.parse("text_faithfulness,physical_quality,text_rendering") == spec


def test_weights() -> None:
    spec = RewardSpec.parse("text_faithfulness=2,physical_quality=1")
    # (2 * 3.5 + 1 * 2.75) / 3 = 3.25 -> 0.75
    assert normalized_reward(T2I, spec) == pytest.approx(0.75)
    # A selected dimension with no weight entry counts 1: (3 * 4 + 2 + 3) / 5 = 3.4 -> 0.8
    assert normalized_reward(EDIT, RewardSpec(weights={TF: 3})) == pytest.approx(0.8)


def test_extremes_and_clamping() -> None:
    assert normalized_reward(critique(Task.T2I, text_faithfulness=4, physical_quality=4)) == 1.0
    assert normalized_reward(critique(Task.T2I, text_faithfulness=1, physical_quality=1)) == 0.0
    # Scores outside [1, 4] (possible when a Critique is built by hand) are clamped: (4 + 1) / 2 = 2.5 -> 0.5
    assert normalized_reward(critique(Task.T2I, text_faithfulness=7, physical_quality=-2)) == pytest.approx(
        0.5
    )


def test_text_rendering_counts_when_scored() -> None:
    c = critique(Task.T2I, text_faithfulness=4, physical_quality=3, text_rendering=2)
    assert normalized_reward(c) == pytest.approx(2 / 3)  # mean 3


def test_no_score_for_the_selection_is_an_error_not_zero() -> None:
    with pytest.raises(RewardError, match="no score for any selected dimension"):
        normalized_reward(T2I, RewardSpec(dimensions=(TR,)))
    with pytest.raises(RewardError):
        normalized_reward(T2I, RewardSpec(dimensions=(IF,)))  # not judged for t2i at all
    assert issubclass(RewardError, CriticError) and issubclass(RewardError, GCRError)


def test_only_zero_weight_dimensions_scored_is_an_error() -> None:
    spec = RewardSpec(dimensions=(TF, TR), weights={TF: 0, TR: 1})
    with pytest.raises(RewardError):
        normalized_reward(T2I, spec)  # TR is N/A and TF weighs nothing
    assert normalized_reward(critique(Task.T2I, text_faithfulness=1, text_rendering=4), spec) == 1.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"weights": {TF: -1}}, "must be finite and >= 0"),
        ({"weights": {TF: math.nan}}, "must be finite and >= 0"),
        ({"weights": {TF: "heavy"}}, "is not a number"),
        ({"dimensions": (TF,), "weights": {TF: 0}}, "sum to zero"),
        ({"weights": {TF: 0, IF: 0, PQ: 0, TR: 0}}, "sum to zero"),
        (
            {"dimensions": (TF,), "weights": {PQ: 1}},
            "physical_quality has a weight but is not a selected dimension",
        ),
        ({"dimensions": ()}, "selects no dimension"),
        ({"dimensions": ("colour",)}, "unknown dimension 'colour'"),
    ],
)
def test_invalid_specs_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RewardSpec(**kwargs)


def test_spec_accepts_names_and_headers() -> None:
    spec = RewardSpec(dimensions=("tf", "Physical and Visual Quality"), weights={"tf": 2})  # type: ignore[arg-type]
    assert spec.dimensions == (TF, PQ)
    assert dict(spec.weights or {}) == {TF: 2.0}
    assert spec.weight(PQ) == 1.0
    with pytest.raises(TypeError):
        spec.weights[TF] = 5  # type: ignore[index]


def test_equal_specs_compare_and_hash_equal() -> None:
    explicit = RewardSpec(dimensions=(TF, PQ), weights={TF: 1.0, PQ: 1})
    assert explicit == RewardSpec(dimensions=(TF, PQ)) == RewardSpec.parse("tf,pq")
    assert len({explicit, RewardSpec(dimensions=(TF, PQ)), RewardSpec.parse("tf=2,pq")}) == 2


@pytest.mark.parametrize(
    ("text", "dimensions", "weights"),
    [
        ("text_faithfulness=2,physical_quality=1", (TF, PQ), {TF: 2.0, PQ: 1.0}),
        (" tf = 2 , pq ", (TF, PQ), {TF: 2.0, PQ: 1.0}),
        ("Physical and Visual Quality=0.5,if=1.5", (PQ, IF), {PQ: 0.5, IF: 1.5}),
    ],
)
def test_parse(text: str, dimensions: tuple, weights: dict) -> None:
    spec = RewardSpec.parse(text)
    assert spec.dimensions == dimensions
    assert {d: spec.weight(d) for d in spec.selected} == weights


@pytest.mark.parametrize("text", ["", "all", " ALL "])
def test_parse_default(text: str) -> None:
    assert RewardSpec.parse(text) == RewardSpec()
    assert str(RewardSpec.parse(text)) == "all dimensions, equal weights"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tf=abc", "weight 'abc' is not a number"),
        ("tf=1,tf=2", "text_faithfulness is named twice"),
        ("sharpness=1", "unknown dimension 'sharpness'"),
        ("tf=1,,pq=1", "empty item"),
        ("tf=-1", "must be finite and >= 0"),
        ("tf=0", "sum to zero"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RewardSpec.parse(text)


def test_str_round_trips_through_parse() -> None:
    spec = RewardSpec.parse("tf=2,pq=1")
    assert str(spec) == "text_faithfulness=2,physical_quality=1"
    assert RewardSpec.parse(str(spec)) == spec
