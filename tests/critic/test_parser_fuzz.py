"""Fuzzing: whatever text comes in, the parser returns a well-formed critique or raises CritiqueParseError."""

from __future__ import annotations

import contextlib
import time

import pytest
from critique_corpus import load_corpus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gcr.critic.parser import parse_critique, parse_pairwise
from gcr.critic.schema import SCORE_MAX, SCORE_MIN, TASK_DIMENSIONS, Critique, Dimension, PairwiseCritique
from gcr.errors import CritiqueParseError

CASES = [c for c in load_corpus() if "error" not in c.expected]
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Lines that look like structure, so that insertions exercise the tokenizer rather than plain prose.
STRUCTURAL = [
    "# Detailed Judgement",
    "# Summary: fine",
    "# User Request Refinement:",
    "## Refined Request:",
    "## Refinement Comments: more detail",
    "1. Text Faithfulness:",
    "2. Image Faithfulness:",
    "**Physical & Visual Quality**",
    "### Text Rendering",
    "## Score: 3.5",
    "## Score: N/A",
    "## Score: 7",
    "## Score:",
    "## Score A: 2 | Score B: 4 | Winner: B",
    "## Winner: Image A",
    "## Winner: N/A",
    "## Justification:",
    "---",
    "<think>",
    "</think>",
    "```",
    "Score: A=3, B=N/A",
]


def _check(result: Critique | PairwiseCritique, text: str, task: str) -> None:
    """Invariants every parsed critique must hold."""
    assert result.raw_text == text
    allowed = TASK_DIMENSIONS[result.task]
    assert result.task.value == task
    dims = [j.dimension for j in result.judgements]
    assert len(dims) == len(set(dims))
    assert dims == [d for d in allowed if d in dims], "judgements must follow the answer order"
    if isinstance(result, Critique):
        scores = [j.score for j in result.judgements]
        assert any(s is not None for s in scores)
        for j in result.judgements:
            assert _valid(j.score, j.dimension)
        assert (
            result.refined_request is None or result.refined_request.strip() == result.refined_request != ""
        )
    else:
        for j in result.judgements:
            for s in (j.score_a, j.score_b):
                assert _valid(s, j.dimension)
            assert j.winner in ("A", "B", "tie", None)
        assert result.preference() in ("A", "B", "tie")
    result.model_validate_json(result.model_dump_json())


def _valid(score: float | None, dim: Dimension) -> bool:
    """A score is in [1, 4], or N/A on the one dimension that allows it."""
    return dim.allows_na if score is None else SCORE_MIN <= score <= SCORE_MAX


def _parse_or_error(mode: str, text: str, task: str) -> None:
    fn = parse_critique if mode == "pointwise" else parse_pairwise
    try:
        result = fn(text, task)
    except CritiqueParseError as exc:
        assert exc.raw_text == text
        return
    _check(result, text, task)


@FUZZ
@given(
    text=st.text(max_size=2000),
    mode=st.sampled_from(["pointwise", "pairwise"]),
    task=st.sampled_from(["t2i", "edit"]),
)
def test_arbitrary_text(text: str, mode: str, task: str) -> None:
    _parse_or_error(mode, text, task)


@FUZZ
@given(
    lines=st.lists(st.one_of(st.sampled_from(STRUCTURAL), st.text(max_size=60)), max_size=60),
    mode=st.sampled_from(["pointwise", "pairwise"]),
    task=st.sampled_from(["t2i", "edit"]),
)
def test_structural_soup(lines: list[str], mode: str, task: str) -> None:
    _parse_or_error(mode, "\n".join(lines), task)


@st.composite
def mutated_case(draw: st.DrawFn) -> tuple[str, str, str]:
    case = draw(st.sampled_from(CASES))
    lines = case.text.replace("\r\n", "\n").split("\n")
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["delete", "insert", "shuffle", "truncate", "noise", "duplicate"]))
        n = len(lines)
        if op == "delete" and n > 1:
            i = draw(st.integers(0, n - 1))
            del lines[i : i + draw(st.integers(1, 4))]
        elif op == "insert":
            new = draw(st.one_of(st.sampled_from(STRUCTURAL), st.text(max_size=80)))
            lines.insert(draw(st.integers(0, n)), new)
        elif op == "shuffle" and n > 1:
            heads = [
                i
                for i, ln in enumerate(lines)
                if ln.lstrip().startswith(("#", "**")) or ln[:2].rstrip(". ").isdigit()
            ]
            if len(heads) > 1:
                order = draw(st.permutations([lines[i] for i in heads]))
                for i, ln in zip(heads, order, strict=True):
                    lines[i] = ln
        elif op == "truncate":
            text = "\n".join(lines)
            lines = text[: draw(st.integers(0, len(text)))].split("\n")
        elif op == "noise" and n:
            i = draw(st.integers(0, n - 1))
            j = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:j] + draw(st.text(max_size=8)) + lines[i][j:]
        elif op == "duplicate" and n:
            i = draw(st.integers(0, n - 1))
            lines[i:i] = lines[i : i + draw(st.integers(1, 8))]
    return case.mode, "\n".join(lines), case.task


@FUZZ
@given(mutated_case())
def test_mutated_corpus(mutated: tuple[str, str, str]) -> None:
    mode, text, task = mutated
    _parse_or_error(mode, text, task)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_every_prefix_of_a_corpus_answer(case) -> None:
    """Cutting an answer anywhere (as max_tokens would) never breaks the parser."""
    text = case.text
    for cut in range(0, len(text), max(1, len(text) // 40)):
        _parse_or_error(case.mode, text[:cut], case.task)


@pytest.mark.parametrize(
    "text",
    [
        "## Score A:" + " " * 50_000 + "x",
        "<think>" * 5_000 + "1. Text Faithfulness:\n## Score: 3",
        "Score" + " *" * 20_000,
        ("1. Text Faithfulness:\n## Justification: ok\n## Score: 3\n" * 3_000),
        "# Summary\n" + "### sub\n" * 5_000,
        "- - " * 20_000,
    ],
    ids=["long-inline", "many-think-tags", "decor-run", "repetition-loop", "many-subheaders", "dash-run"],
)
def test_pathological_inputs_stay_fast(text: str) -> None:
    for fn in (parse_critique, parse_pairwise):
        start = time.perf_counter()
        with contextlib.suppress(CritiqueParseError):
            fn(text, "t2i")
        assert time.perf_counter() - start < 3.0, fn.__name__


def test_repetition_loop_warns_once_per_dimension() -> None:
    text = "# Detailed Judgement\n" + "1. Text Faithfulness:\n## Justification: ok.\n## Score: 3\n" * 50
    critique = parse_critique(text, "t2i")
    assert critique.scores == {"text_faithfulness": 3.0}
    assert "text_faithfulness: judged 50 times; kept the first usable judgement" in critique.warnings
