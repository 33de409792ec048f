"""Table-driven checks of single fields: score formats, winner phrases, section ends, reasoning blocks."""

from __future__ import annotations

import pytest

from gcr.critic.parser import parse_critique, parse_pairwise
from gcr.errors import CritiqueParseError, InputError


def pointwise(tr_score: str, tf_score: str = "3") -> str:
    return (
        "# User Request Analysis\nA cat.\n# Detailed Judgement\n"
        f"1. Text Faithfulness:\n## Justification: fine.\n## Score: {tf_score}\n"
        "2. Physical and Visual Quality:\n## Justification: fine.\n## Score: 3\n"
        f"3. Text Rendering:\n## Justification: fine.\n## Score: {tr_score}\n"
        "# Summary: ok.\n# User Request Refinement:\n## Refined Request: a cat\n"
    )


@pytest.mark.parametrize(
    ("written", "value"),
    [
        ("3.5", 3.5),
        ("3.5/4", 3.5),
        ("3.5 / 4.0", 3.5),
        ("3.5 out of 4", 3.5),
        ("3 (minor issues)", 3.0),
        ("**3.25**", 3.25),
        ("[2.75]", 2.75),
        ("`2`", 2.0),
        ("3,5", 3.5),
        ("Three", 3.0),
        (".5", 1.0),  # clamped
        ("4.0/4.0", 4.0),
        ("N/A", None),
        ("NA", None),
        ("n/a", None),
        ("N / A", None),
        ("Not applicable", None),
        ("N/A (no text was requested)", None),
        ("**N/A**", None),
    ],
)
def test_score_formats(written: str, value: float | None) -> None:
    critique = parse_critique(pointwise(written), "t2i")
    assert critique.score("text_rendering") == value
    assert critique.judgement("text_rendering") is not None


@pytest.mark.parametrize("written", ["", "[float]", "to be decided"])
def test_unreadable_score_is_missing_not_zero(written: str) -> None:
    critique = parse_critique(pointwise(written), "t2i")
    assert critique.judgement("text_rendering") is None
    assert "text_rendering: no readable score" in critique.warnings


def test_na_where_not_allowed_is_missing_with_a_warning() -> None:
    critique = parse_critique(pointwise("3", tf_score="N/A"), "t2i")
    assert critique.judgement("text_faithfulness") is None
    assert critique.missing_dimensions == ("text_faithfulness",)
    assert critique.warnings == [
        "text_faithfulness: N/A is not allowed for this dimension; treated as missing"
    ]


def pairwise(winner: str, a: str = "3", b: str = "3") -> str:
    return (
        "# User Request Analysis\nx\n# Detailed Judgement\n"
        "1. Text Faithfulness:\n## Justification: j.\n"
        f"## Score A: {a}\n## Score B: {b}\n## Winner: {winner}\n"
        "# Summary: s.\n"
    )


@pytest.mark.parametrize(
    ("written", "winner"),
    [
        ("Image A", "A"),
        ("A", "A"),
        ("**Image B**", "B"),
        ("B", "B"),
        ("(A)", "A"),
        ("Candidate B", "B"),
        ("B is better", "B"),
        ("A wins.", "A"),
        ("Image A (slightly)", "A"),
        ("Tie", "tie"),
        ("It's a tie", "tie"),
        ("A tie", "tie"),
        ("tie.", "tie"),
        ("Both equal", "tie"),
        ("Equal", "tie"),
        ("Neither", "tie"),
        ("Both Image A and Image B are equally good", "tie"),
        ("No clear winner", "tie"),
    ],
)
def test_winner_phrases(written: str, winner: str) -> None:
    comparison = parse_pairwise(pairwise(written), "t2i")
    judgement = comparison.judgement("text_faithfulness")
    assert judgement is not None
    assert judgement.winner == winner


def test_unreadable_winner_is_derived_from_scores_with_a_warning() -> None:
    comparison = parse_pairwise(pairwise("the left one", a="2", b="3.5"), "t2i")
    assert comparison.judgement("text_faithfulness").winner == "B"  # type: ignore[union-attr]
    assert any("unreadable winner 'the left one'; derived 'B'" in w for w in comparison.warnings)


def test_na_winner_with_scores_is_derived() -> None:
    comparison = parse_pairwise(pairwise("N/A", a="3.5", b="3"), "t2i")
    assert comparison.judgement("text_faithfulness").winner == "A"  # type: ignore[union-attr]
    assert any("winner N/A despite scores" in w for w in comparison.warnings)


def test_refined_request_runs_to_the_next_header_of_the_same_or_higher_level() -> None:
    text = pointwise("N/A").replace(
        "## Refined Request: a cat\n",
        "## Refined Request:\nA tabby cat on a sofa.\n### Lighting\nSoft window light.\n# Notes\nThanks!\n",
    )
    critique = parse_critique(text, "t2i")
    assert critique.refined_request == "A tabby cat on a sofa.\n### Lighting\nSoft window light."


def test_refined_request_in_a_code_fence_and_quotes() -> None:
    text = pointwise("N/A").replace(
        "## Refined Request: a cat\n", '## Refined Request:\n```\n"A tabby cat, sitting upright"\n```\n'
    )
    assert parse_critique(text, "t2i").refined_request == "A tabby cat, sitting upright"


def test_prompt_opened_think_block_is_dropped() -> None:
    # Chat templates that open <think> in the prompt leave only the closing tag in the answer.
    text = "Reasoning: 1. Text Faithfulness: ## Score: 1\n</think>\n" + pointwise("N/A")
    critique = parse_critique(text, "t2i")
    assert critique.score("text_faithfulness") == 3.0
    assert critique.warnings == []


def test_answer_that_never_leaves_its_think_block_is_unparseable() -> None:
    with pytest.raises(CritiqueParseError, match="ended inside its <think> block"):
        parse_critique("<think>\nThe image shows " + pointwise("N/A"), "t2i")
    with pytest.raises(CritiqueParseError, match="ended inside its <think> block"):
        parse_pairwise("<think>\nComparing " + pairwise("A"), "edit")


def test_pairwise_answer_given_to_the_pointwise_parser_names_the_mix_up() -> None:
    with pytest.raises(CritiqueParseError, match="looks like a pairwise answer"):
        parse_critique(pairwise("A"), "t2i")


def test_task_may_be_text_but_must_be_known() -> None:
    assert parse_critique(pointwise("N/A"), " T2I ").task.value == "t2i"
    with pytest.raises(InputError, match="unknown task 'video'"):
        parse_critique(pointwise("N/A"), "video")
