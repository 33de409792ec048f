"""The parser against the hand-written corpus of realistic (and messy) critic answers."""

from __future__ import annotations

import pytest
from critique_corpus import Case, load_corpus

from gcr.critic.parser import parse_critique, parse_pairwise
from gcr.critic.schema import Critique, PairwiseCritique
from gcr.errors import CritiqueParseError

CASES = load_corpus()


def _parse(case: Case, text: str | None = None) -> Critique | PairwiseCritique:
    fn = parse_critique if case.mode == "pointwise" else parse_pairwise
    return fn(case.text if text is None else text, case.task)


def _scores(result: Critique | PairwiseCritique) -> dict:
    def show(v: float | None) -> float | str:
        return "N/A" if v is None else v

    if isinstance(result, Critique):
        return {j.dimension.value: show(j.score) for j in result.judgements}
    return {j.dimension.value: [show(j.score_a), show(j.score_b)] for j in result.judgements}


def test_corpus_is_large_and_covers_every_mode_and_task() -> None:
    assert len(CASES) >= 30
    kinds = {(c.mode, c.task) for c in CASES}
    assert kinds == {("pointwise", "t2i"), ("pointwise", "edit"), ("pairwise", "t2i"), ("pairwise", "edit")}
    assert any(c.expected.get("truncated") for c in CASES)
    assert any("error" in c.expected for c in CASES)
    assert any("\r\n" in c.text for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_corpus_case(case: Case) -> None:
    exp = case.expected
    if "error" in exp:
        with pytest.raises(CritiqueParseError) as info:
            _parse(case)
        assert exp["error"] in str(info.value)
        assert info.value.raw_text == case.text
        return
    result = _parse(case)
    assert result.raw_text == case.text
    assert result.task.value == case.task
    assert _scores(result) == exp["scores"], result.warnings
    assert result.truncated is exp.get("truncated", False), result.warnings
    if "winners" in exp:
        assert isinstance(result, PairwiseCritique)
        for dim, winner in exp["winners"].items():
            judgement = result.judgement(dim)
            assert judgement is not None, dim
            assert judgement.winner == winner, dim
    if "preference" in exp:
        assert isinstance(result, PairwiseCritique)
        assert result.preference() == exp["preference"]
    if "refined_request" in exp:
        assert isinstance(result, Critique)
        assert result.refined_request == exp["refined_request"]
    if "summary_startswith" in exp:
        assert result.summary is not None
        assert result.summary.startswith(exp["summary_startswith"])
    if "analysis_startswith" in exp:
        assert result.request_analysis is not None
        assert result.request_analysis.startswith(exp["analysis_startswith"])
    for dim, fragment in exp.get("justification_contains", {}).items():
        judgement = result.judgement(dim)
        assert judgement is not None
        assert fragment in judgement.justification
    for dim, start in exp.get("justification_startswith", {}).items():
        judgement = result.judgement(dim)
        assert judgement is not None
        assert judgement.justification.startswith(start), judgement.justification
    for fragment in exp.get("warnings_contain", []):
        assert any(fragment in w for w in result.warnings), (fragment, result.warnings)
    if "warning_count" in exp:
        assert len(result.warnings) == exp["warning_count"], result.warnings


@pytest.mark.parametrize("case", [c for c in CASES if "error" not in c.expected], ids=lambda c: c.name)
def test_line_endings_and_trailing_spaces_do_not_matter(case: Case) -> None:
    base = _parse(case)
    lf = case.text.replace("\r\n", "\n")
    for variant in (lf.replace("\n", "\r\n"), lf.replace("\n", "  \n"), lf.replace("\n", "\r")):
        other = _parse(case, variant)
        assert _scores(other) == _scores(base)
        assert other.truncated == base.truncated
        assert len(other.warnings) == len(base.warnings)
        if isinstance(base, Critique):
            assert isinstance(other, Critique)
            assert other.refined_request == base.refined_request
