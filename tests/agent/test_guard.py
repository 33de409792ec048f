"""The intent guard: refinements that lose the user's request are turned down with a reason."""

from __future__ import annotations

import pytest

from gcr.agent.guard import PromptGuard, content_words, numbers, quoted_text

GUARD = PromptGuard()


def test_accepts_a_faithful_refinement_and_normalizes_whitespace():
    verdict = GUARD.check(
        "a red cat sitting on a wooden table",
        "  A red cat with glossy fur sitting\n on a wooden table, warm window light  ",
    )
    assert verdict.accepted
    assert verdict.prompt == "A red cat with glossy fur sitting on a wooden table, warm window light"
    assert verdict.reason is None


@pytest.mark.parametrize("proposal", [None, "", "   \n "])
def test_rejects_empty(proposal):
    verdict = GUARD.check("a red cat", proposal)
    assert not verdict.accepted and verdict.prompt is None
    assert verdict.reason == "the proposal is empty"


def test_rejects_runaway_length():
    original = "a red cat on a table"
    verdict = GUARD.check(original, original + " very" * 200)
    assert not verdict.accepted
    assert "characters long; at most 400 allowed" in verdict.reason
    # The allowance grows with the request, capped at max_chars.
    long_request = "a red cat on a table " * 20
    assert GUARD.check(long_request, long_request + " with soft light").accepted
    assert not PromptGuard(max_chars=100).check(long_request, long_request).accepted


def test_rejects_dropped_quoted_text():
    original = 'a poster with the words "HELLO WORLD" in bold letters'
    bad = GUARD.check(original, "a poster with the words hello world in bold red letters")
    assert not bad.accepted and 'drops the quoted text "HELLO WORLD"' in bad.reason
    good = GUARD.check(original, 'a bold poster reading "HELLO WORLD" in large red letters')
    assert good.accepted


def test_rejects_dropped_numbers_in_either_spelling():
    original = "three apples and 2 bananas in a bowl"
    assert GUARD.check(original, "3 shiny apples and two ripe bananas in a ceramic bowl").accepted
    verdict = GUARD.check(original, "some shiny apples and two ripe bananas in a ceramic bowl")
    assert not verdict.accepted and "drops the number 3" in verdict.reason


def test_rejects_a_proposal_that_drops_most_content_words():
    original = "an astronaut riding a green horse on the moon"
    verdict = GUARD.check(original, "a beautiful landscape painting at sunset")
    assert not verdict.accepted
    assert "keeps 0 of 5 words" in verdict.reason
    assert "astronaut" in verdict.reason


def test_plural_and_prefix_forms_count_as_kept():
    assert GUARD.check("two horses near a photo booth", "two brown horses beside a photograph booth").accepted
    assert GUARD.check("a horse in berries", "a galloping horse among wild berry bushes").accepted


def test_min_coverage_is_configurable():
    original = "a red cat on a wooden table"  # content: red, cat, wooden, table
    proposal = "a red cat on a sofa"  # keeps 2 of 4
    assert GUARD.check(original, proposal).accepted
    assert not PromptGuard(min_coverage=0.75).check(original, proposal).accepted


def test_helpers():
    assert quoted_text('a sign "OPEN" and “Café”') == ["OPEN", "Café"]
    assert numbers("two cats, 2 dogs and twelve birds") == ["2", "12"]
    assert content_words("Make the sky purple and add a small boat") == ["sky", "purple", "small", "boat"]
