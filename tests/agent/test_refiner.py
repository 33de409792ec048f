"""Refiners: the critic's refined request, and an OpenAI-compatible LLM rewrite with its own template."""

from __future__ import annotations

import asyncio

import pytest

from gcr.agent.refiner import (
    CritiqueRefiner,
    LLMRefiner,
    RefineRequest,
    load_template,
    make_refiner,
    parse_rewrite,
    render_critique,
)
from gcr.critic.schema import Critique, Dimension, DimensionJudgement
from gcr.errors import ConfigError, RefinerError
from gcr.task import Task
from stubs.critic_server import StubCriticServer, StubReply

CRITIQUE = Critique(
    task=Task.T2I,
    judgements=[
        DimensionJudgement(
            dimension=Dimension.TEXT_FAITHFULNESS, score=2.5, justification="The cat is orange."
        ),
        DimensionJudgement(dimension=Dimension.PHYSICAL_QUALITY, score=3.0, justification="Soft but fine."),
        DimensionJudgement(dimension=Dimension.TEXT_RENDERING, score=None, justification="No text."),
    ],
    summary="Mostly right; wrong colour.",
    refinement_comments="Insist on red fur.",
    refined_request="a cat with bright red fur on a wooden table",
)
REQUEST = RefineRequest(
    user_prompt="a red cat on a wooden table",
    current_prompt="a red cat on a wooden table",
    critique=CRITIQUE,
    task=Task.T2I,
    tried_prompts=("a red cat on a wooden table",),
)


def test_critique_refiner_takes_the_refined_request():
    proposal = asyncio.run(CritiqueRefiner().propose(REQUEST))
    assert proposal.prompt == "a cat with bright red fur on a wooden table" and proposal.note is None
    empty = RefineRequest(
        **{**REQUEST.__dict__, "critique": CRITIQUE.model_copy(update={"refined_request": None})}
    )
    none = asyncio.run(CritiqueRefiner().propose(empty))
    assert none.prompt is None and none.note == "the critique has no refined request"


def test_render_critique_lists_every_dimension_and_the_advice():
    text = render_critique(CRITIQUE)
    assert "- Text Faithfulness (2.5/4): The cat is orange." in text
    assert "- Text Rendering (N/A): No text." in text
    assert "Critic's advice: Insist on red fur." in text
    assert "Critic's own suggested prompt: a cat with bright red fur" in text


@pytest.mark.parametrize(
    ("answer", "prompt", "note"),
    [
        ("Sure.\n<prompt>a red cat, crisp fur</prompt>", "a red cat, crisp fur", None),
        ("<think>hmm <prompt>draft</prompt></think>\n<prompt>final one</prompt>", "final one", None),
        (
            "a red cat with crisp fur",
            "a red cat with crisp fur",
            "the answer had no <prompt> block; used it whole",
        ),
        ("<prompt>  </prompt>", None, "the <prompt> block is empty"),
        ("First idea.\n\nSecond idea.", None, "the rewriter's answer has no <prompt> block"),
    ],
)
def test_parse_rewrite(answer, prompt, note):
    proposal = parse_rewrite(answer)
    assert (proposal.prompt, proposal.note) == (prompt, note)


def test_llm_refiner_sends_the_template_and_reads_the_answer():
    with StubCriticServer(models=("writer",)) as server:
        server.enqueue("<prompt>a red cat with bright red fur on a wooden table</prompt>")
        refiner = LLMRefiner(server.url, "writer", temperature=0.2, max_tokens=300)

        async def ask():
            try:
                return await refiner.propose(REQUEST)
            finally:
                await refiner.aclose()

        proposal = asyncio.run(ask())
    assert proposal.prompt == "a red cat with bright red fur on a wooden table"
    body = server.chat_requests[0].body
    assert (
        body["model"] == "writer" and body["temperature"] == pytest.approx(0.2) and body["max_tokens"] == 300
    )
    system, user = body["messages"]
    assert system["role"] == "system" and "<prompt> and </prompt>" in system["content"]
    assert "<user_request>\na red cat on a wooden table\n</user_request>" in user["content"]
    assert "Text Faithfulness (2.5/4)" in user["content"]
    assert "text-to-image" in user["content"]
    assert "- a red cat on a wooden table" in user["content"]  # the prompts already tried


def test_llm_refiner_failures_are_refiner_errors():
    with StubCriticServer(models=("writer",)) as server:
        url = server.url
        server.enqueue(StubReply.error(400, "bad request"))
        refiner = LLMRefiner(url, "writer", max_retries=0)
        with pytest.raises(RefinerError, match="answered HTTP 400"):
            asyncio.run(refiner.propose(REQUEST))
    refiner = LLMRefiner(url, "writer", max_retries=0, timeout=2)
    with pytest.raises(RefinerError, match="cannot reach the prompt rewriter"):
        asyncio.run(refiner.propose(REQUEST))


def test_custom_template(tmp_path):
    good = tmp_path / "mine.md"
    good.write_text("# System\nBe brief.\n# User\nRewrite: $current_prompt\n")
    refiner = LLMRefiner("http://127.0.0.1:9/v1", "m", template=good)
    assert refiner.messages(REQUEST) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Rewrite: a red cat on a wooden table"},
    ]
    unknown = tmp_path / "unknown.md"
    unknown.write_text("# System\nx\n# User\n$no_such_field\n")
    with pytest.raises(ConfigError, match="unknown or malformed placeholder"):
        LLMRefiner("http://127.0.0.1:9/v1", "m", template=unknown).messages(REQUEST)
    headless = tmp_path / "headless.md"
    headless.write_text("just text")
    with pytest.raises(ConfigError, match="'# System' section followed by a '# User' section"):
        load_template(headless)
    with pytest.raises(ConfigError, match="not found"):
        load_template(tmp_path / "missing.md")


def test_packaged_template_has_every_placeholder():
    system, user = load_template()
    assert "Never drop or swap" in system.template
    for field in ("task_description", "user_prompt", "current_prompt", "critique", "tried_prompts"):
        assert f"${field}" in user.template


def test_make_refiner():
    assert isinstance(make_refiner("critic"), CritiqueRefiner)
    with pytest.raises(ConfigError, match="needs a server URL"):
        make_refiner("llm")
    with pytest.raises(ConfigError, match="unknown refiner 'magic'"):
        make_refiner("magic")
