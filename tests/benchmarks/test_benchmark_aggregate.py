"""GEdit-Bench and ImgEdit-Bench averaging, on numbers worked out by hand."""

from __future__ import annotations

import math

import pytest

from gcr.benchmarks.aggregate import (
    PUBLISHED,
    GEditScore,
    gedit_report,
    imgedit_item_score,
    imgedit_report,
    with_published,
)
from gcr.errors import InputError


def test_gedit_averages_per_task_type_then_over_task_types_per_language() -> None:
    items = [
        GEditScore("background_change", "en", 8, 2, intersection=True),  # O = sqrt(16) = 4
        GEditScore("background_change", "en", 6, 6, intersection=False),  # O = 6
        GEditScore("subject-add", "en", 9, 4, intersection=True),  # O = 6
        GEditScore("background_change", "cn", 4, 9, intersection=True),  # O = 6
    ]
    report = gedit_report(items)
    en = report["en"]
    assert en["groups"]["background_change"] == {"semantics": 7.0, "quality": 4.0, "overall": 5.0, "n": 2}
    assert en["groups"]["subject-add"] == {"semantics": 9.0, "quality": 4.0, "overall": 6.0, "n": 1}
    # Every task type weighs the same: SC (7 + 9) / 2 = 8, not the item mean 23 / 3.
    assert en["average"] == {"semantics": 8.0, "quality": 4.0, "overall": 5.5}
    assert en["intersection"]["average"] == {"semantics": 8.5, "quality": 3.0, "overall": 5.0}
    assert en["items"] == 3 and "color_alter" in en["missing"] and "subject-add" not in en["missing"]
    assert report["cn"]["average"] == {"semantics": 4.0, "quality": 9.0, "overall": 6.0}
    # The overall is recomputed from SC and PQ, never averaged from SC and PQ means: sqrt(7 * 4) != 5.
    assert not math.isclose(math.sqrt(7 * 4), en["groups"]["background_change"]["overall"])


def test_gedit_rejects_scores_that_are_not_numbers() -> None:
    with pytest.raises(InputError, match="semantics score nan"):
        gedit_report([GEditScore("subject-add", "en", float("nan"), 3)])


def test_imgedit_rounds_items_and_types_to_two_decimals_as_its_scripts_do() -> None:
    assert imgedit_item_score([4, 4, 5]) == 4.33 and imgedit_item_score([5, 5, 4]) == 4.67
    items = [("alter", 4.33), ("alter", 4.67), ("style", 4.67), ("style", imgedit_item_score([1, 5, 5]))]
    report = imgedit_report(items)
    assert report["types"] == {"alter": {"score": 4.5, "n": 2}, "style": {"score": 4.17, "n": 2}}
    assert report["overall"] == pytest.approx((4.5 + 4.17) / 2)
    assert report["items"] == 4 and "add" in report["missing"]
    with pytest.raises(InputError):
        imgedit_item_score([])


def test_published_figures_sit_beside_ours() -> None:
    row = with_published("gedit-en", {"round0": 7.0, "final": 7.5})
    assert row["published"]["round0"] == 7.56 and row["published"]["final"] == 8.33
    assert row["published_gain"] == pytest.approx(0.77) and row["gain"] == pytest.approx(0.5)
    assert PUBLISHED["imgedit"]["round0"] == 4.27 and PUBLISHED["imgedit"]["final"] == 4.43
    assert "gain" not in with_published("imgedit", {"round0": 4.0, "final": None})
