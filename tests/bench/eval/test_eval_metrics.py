"""The accuracy metric: ties, failures, unknown labels, categories and the Wilson interval."""

from __future__ import annotations

import math

import pytest

from gcr.bench.eval.metrics import pairwise_accuracy, preference_from_totals, wilson_interval
from gcr.critic.schema import PairwiseCritique, PairwiseJudgement
from gcr.errors import InputError
from gcr.task import Task


def test_counts_ties_failures_and_unknown_labels() -> None:
    predictions = ["A", "B", "tie", "tie", "A", None, "B", "A"]
    labels = ["A", "A", "tie", "A", "tie", "B", "unknown", None]
    report = pairwise_accuracy(predictions, labels)
    acc = report.overall
    # evaluated: the first five; correct: A=A, tie=tie.
    assert (acc.total, acc.evaluated, acc.correct) == (8, 5, 2)
    assert (acc.failed, acc.unknown_labels) == (1, 2)
    assert (acc.label_ties, acc.predicted_ties) == (2, 2)
    assert acc.accuracy == pytest.approx(0.4)
    # Without the two tie-labelled pairs: A=A right, B≠A wrong, tie≠A wrong.
    assert acc.accuracy_without_label_ties == pytest.approx(1 / 3)
    assert report.by_category == {}


def test_per_category_breakdown() -> None:
    report = pairwise_accuracy(
        ["A", "B", "A", None, "B"],
        ["A", "A", "B", "A", "B"],
        categories=["x", "x", "y", "y", None],
    )
    assert report.overall.correct == 2 and report.overall.evaluated == 4
    x, y = report.by_category["x"], report.by_category["y"]
    assert (x.correct, x.evaluated, x.accuracy) == (1, 2, 0.5)
    assert (y.correct, y.evaluated, y.failed, y.accuracy) == (0, 1, 1, 0.0)
    assert set(report.by_category) == {"x", "y"}
    assert report.to_dict()["by_category"]["x"]["correct"] == 1


def test_nothing_evaluated_gives_no_accuracy() -> None:
    acc = pairwise_accuracy([None, "A"], ["A", "unknown"]).overall
    assert acc.accuracy is None and acc.ci_low is None and acc.ci_high is None
    assert (acc.failed, acc.unknown_labels) == (1, 1)


def test_wilson_interval_reference_values() -> None:
    low, high = wilson_interval(5, 8)
    assert (low, high) == (pytest.approx(0.3057, abs=1e-4), pytest.approx(0.8632, abs=1e-4))
    assert wilson_interval(0, 10)[0] == pytest.approx(0.0, abs=1e-12)
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert wilson_interval(0, 0) is None
    # Wider at 99% than at 95%, centred on the shrunken proportion.
    l99, h99 = wilson_interval(60, 100, confidence=0.99)
    l95, h95 = wilson_interval(60, 100)
    assert l99 < l95 < 0.6 < h95 < h99
    acc = pairwise_accuracy(["A"] * 5 + ["B"] * 3, ["A"] * 8).overall
    assert (acc.ci_low, acc.ci_high) == (pytest.approx(low), pytest.approx(high))


def test_preference_from_totals_follows_the_tie_rule() -> None:
    assert preference_from_totals(9.5, 7.5) == "A"
    assert preference_from_totals(7.5, 9.5) == "B"
    assert preference_from_totals(8.0, 8.0) == "tie"
    assert preference_from_totals(3.3 + 2.7, 3.0 + 3.0) == "tie"  # float rounding is not a preference
    assert preference_from_totals(8.5, 8.75) == "B"
    assert preference_from_totals(8.5, 8.75, tie_tolerance=0.25) == "tie"
    assert preference_from_totals(8.5, 9.0, tie_tolerance=0.25) == "B"
    with pytest.raises(InputError, match="tie tolerance must be 0 or more"):
        preference_from_totals(1, 2, tie_tolerance=-1)


def test_same_rule_as_the_schema_for_na_scores() -> None:
    critique = PairwiseCritique(
        task=Task.T2I,
        judgements=[
            PairwiseJudgement(dimension="text_faithfulness", score_a=3.0, score_b=3.5),
            PairwiseJudgement(dimension="physical_quality", score_a=3.5, score_b=3.0),
            PairwiseJudgement(dimension="text_rendering", score_a=None, score_b=None),
        ],
    )
    total_a, total_b = critique.totals()
    assert (total_a, total_b) == (9.0, 9.0)
    assert preference_from_totals(total_a, total_b) == critique.preference() == "tie"


def test_bad_inputs_are_rejected() -> None:
    with pytest.raises(InputError, match="2 predictions but 1 labels"):
        pairwise_accuracy(["A", "B"], ["A"])
    with pytest.raises(InputError, match="prediction 0 is 'left'"):
        pairwise_accuracy(["left"], ["A"])
    with pytest.raises(InputError, match="label 1 is 'C'"):
        pairwise_accuracy(["A", "A"], ["A", "C"])
    with pytest.raises(InputError, match="1 categories but 2 labels"):
        pairwise_accuracy(["A", "A"], ["A", "B"], categories=["x"])
    with pytest.raises(InputError):
        wilson_interval(3, 2)
    assert math.isclose(pairwise_accuracy(["A"], ["A"]).overall.accuracy or 0, 1.0)
