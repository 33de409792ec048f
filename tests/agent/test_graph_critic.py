"""The refine graph over gcr's real Critic, against the scripted prompt-aware server.

``test_graph.py`` runs the graph with the in-process ``PromptAwareCritic`` for speed. Here the
critic is :class:`gcr.critic.critic.Critic` loaded by URL, as ``gcr refine --critic URL`` loads it:
its prompt templates, its OpenAI-compatible HTTP backend (error mapping, retries), its parser and
its re-ask all run, and the server (tests/stubs/prompt_aware_critic.py) answers from the same
script the fake uses. Each behaviour of the critic the graph relies on is exercised here: a normal
multi-round refine, a re-ask that recovers, a candidate skipped when the re-ask fails too, answers
cut off or without a usable score, an empty answer, and a server that is down or fails mid-run.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from PIL import Image
from refine_harness import Harness, ServedHarness

from gcr.agent import build_graph
from gcr.agent.stopping import StopReason
from gcr.critic.critic import layout_reminder
from gcr.critic.loading import load_critic
from gcr.critic.schema import Critique, Dimension
from gcr.dev.mock_critic import render_critique
from gcr.errors import CriticResponseError, CriticUnavailableError
from gcr.task import Task
from stubs.critic_server import RecordedRequest, StubReply
from stubs.prompt_aware_critic import UNREADABLE, PromptAwareScript, Scene

REFINED = ["a cat", "a cat, golden light", "a cat, golden light, sharp focus"]


def run(h: Harness, prompt: str = "a cat", **settings: Any) -> dict[str, Any]:
    graph = h.builder().compile()
    return asyncio.run(graph.ainvoke({"prompt": prompt}, context=h.context(**settings)))


def candidates(out: dict[str, Any]) -> list[dict[str, Any]]:
    lines = (Path(out["run_dir"]) / "trajectory.jsonl").read_text().splitlines()
    return [c for line in lines for c in json.loads(line)["candidates"]]


def seeds_asked(h: ServedHarness) -> Counter[int]:
    """How many chat requests the server got per candidate seed."""
    scenes = [h.server.scene_of(r) for r in h.server.chat_requests]
    assert None not in scenes, "a request carried an image the generator did not make"
    return Counter(s.seed for s in scenes if s is not None)


def test_a_multi_round_refine_through_the_real_critic(served: ServedHarness, tmp_path: Path) -> None:
    out = run(served, max_rounds=10, candidates=2)

    assert [r["prompt"] for r in out["rounds"]] == REFINED
    assert out["stop_reason"] == StopReason.NOTHING_NEW
    assert [r["prompt_origin"] for r in out["rounds"]] == ["user", "critic", "critic"]
    assert out["summary"]["critic"] == "stub-critic"
    # One HTTP request per candidate, rendered from the built-in t2i template. The critic is always
    # asked about the user's own request, whichever refined prompt made the image.
    requests = served.server.chat_requests
    assert len(requests) == 6
    template = served.critic.template("pointwise", Task.T2I)
    for request in requests:
        assert request.messages[0] == {"role": "system", "content": template.system}
        assert request.user_text().startswith("User request: a cat\n")
        assert len(request.image_urls()) == 1
        assert request.body is not None and request.body["temperature"] == served.critic.sampling.temperature
    asked = sorted((s.prompt, s.seed) for s in map(served.server.scene_of, requests) if s is not None)
    assert asked == sorted(served.generator.calls)
    # What the server said is what the run kept: the raw answer and its parse, without warnings.
    for c in candidates(out):
        text = (Path(out["run_dir"]) / c["critique_text"]).read_text()
        assert text == served.script.answer(Task.T2I, Scene(c["prompt"], c["seed"]))
        critique = Critique.from_json((Path(out["run_dir"]) / c["critique_json"]).read_text())
        assert critique.warnings == [] and critique.scores == c["scores"]
    # The in-process fake the other graph tests use gives the same run: it has not drifted.
    fake = run(Harness(tmp_path / "fake"), max_rounds=10, candidates=2)
    assert [r["rewards"] for r in out["rounds"]] == [r["rewards"] for r in fake["rounds"]]
    assert [r["best_scores"] for r in out["rounds"]] == [r["best_scores"] for r in fake["rounds"]]


def test_an_unreadable_first_answer_is_asked_again_and_the_second_one_counts(served: ServedHarness) -> None:
    served.server.enqueue(UNREADABLE)  # the very first request; every later one is answered by the script
    out = run(served, max_rounds=2)

    first, again, *rest = served.server.chat_requests
    assert served.server.scene_of(first) == served.server.scene_of(again) == Scene("a cat", 0)
    # The re-ask is the same request with the required layout restated at the end.
    assert again.messages[0] == first.messages[0] and again.image_urls() == first.image_urls()
    assert again.user_text() == first.user_text() + layout_reminder("pointwise", Task.T2I)
    assert len(rest) == 1  # round 1 was read at the first try
    # The candidate was scored from the second answer; the run went on as if nothing happened.
    assert [r["prompt"] for r in out["rounds"]] == REFINED[:2]
    assert out["rounds"][0]["skipped"] == [] and out["rounds"][0]["rewards"][0] is not None
    first_candidate = candidates(out)[0]
    critique = Critique.from_json((Path(out["run_dir"]) / first_candidate["critique_json"]).read_text())
    assert critique.warnings == ["the first answer could not be parsed; this critique is from re-ask 1"]


@pytest.mark.parametrize(
    ("max_reasks", "reason"),
    [(1, "no readable critique after 1 re-ask(s)"), (0, "no readable critique and re-asking is disabled")],
)
def test_a_candidate_still_unreadable_after_the_reasks_is_skipped(
    tmp_path: Path, max_reasks: int, reason: str
) -> None:
    h = ServedHarness(tmp_path, PromptAwareScript(unreadable_seeds={1}), max_reasks=max_reasks)
    try:
        out = run(h, max_rounds=1, candidates=2)
        asked = seeds_asked(h)
    finally:
        h.close()

    assert asked == {0: 1, 1: 1 + max_reasks}
    record = out["rounds"][0]
    assert record["rewards"][0] is not None and record["rewards"][1] is None
    assert record["best_index"] == 0 and out["best"]["seed"] == 0
    assert len(record["skipped"]) == 1
    assert record["skipped"][0].startswith("candidate 1: the critic's answer has " + reason)
    skipped = [c for c in candidates(out) if c["status"] == "skipped"]
    assert [c["seed"] for c in skipped] == [1] and skipped[0]["critique_json"] is None
    assert (Path(out["run_dir"]) / skipped[0]["critique_text"]).read_text() == UNREADABLE
    assert out["summary"]["skipped_candidates"] == 1


def test_a_round_without_one_readable_critique_stops_the_run(tmp_path: Path) -> None:
    h = ServedHarness(tmp_path, PromptAwareScript(unreadable_seeds={0, 1}))
    try:
        with pytest.raises(
            CriticResponseError, match=r"no candidate of round 0 could be scored \(candidate 0:"
        ):
            run(h, max_rounds=3, candidates=2)
        assert seeds_asked(h) == {0: 2, 1: 2}
    finally:
        h.close()
    raw = sorted((tmp_path / "run1" / "rounds" / "r00").glob("*.critique.txt"))
    assert [p.read_text() for p in raw] == [UNREADABLE, UNREADABLE]


def test_an_answer_cut_off_before_any_score_skips_the_candidate_without_a_reask(
    served: ServedHarness,
) -> None:
    served.server.enqueue(StubReply.length("# User Request Analysis\nThe request asks for a cat, and"))
    out = run(served, max_rounds=1, candidates=2)

    assert len(served.server.chat_requests) == 2  # a longer answer would need more tokens, not a re-ask
    record = out["rounds"][0]
    assert sorted(r is None for r in record["rewards"]) == [False, True]
    (reason,) = record["skipped"]
    assert "cut off at max_tokens=2048 before any score; raise the token limit" in reason


def test_a_critique_with_no_score_to_reward_skips_the_candidate(served: ServedHarness) -> None:
    """The reward here is made of text faithfulness and text rendering; one answer scores neither."""
    blank = render_critique(
        Task.T2I,
        {Dimension.TEXT_FAITHFULNESS: None, Dimension.PHYSICAL_QUALITY: 3.0, Dimension.TEXT_RENDERING: None},
        why=lambda dim, score: "Judged as far as the image allows.",
        analysis="A cat.",
        summary="Only the quality could be judged.",
        comment="None.",
        refined="a cat",
    )
    served.server.enqueue(blank)
    out = run(served, max_rounds=1, candidates=2, dimensions=["text_faithfulness", "text_rendering"])

    (skipped,) = [c for c in candidates(out) if c["status"] == "skipped"]
    assert "no score for any selected dimension" in skipped["skip_reason"]
    # The critique was readable, so it is kept next to its raw text, and not asked again.
    kept = Critique.from_json((Path(out["run_dir"]) / skipped["critique_json"]).read_text())
    assert kept.scores.get("text_faithfulness") is None and kept.scores["text_rendering"] is None
    assert kept.scores["physical_quality"] == 3.0
    assert (Path(out["run_dir"]) / skipped["critique_text"]).read_text() == blank
    assert len(served.server.chat_requests) == 2
    # The other candidate's reward is its text faithfulness alone: (level - 1) / 3, level 1.75 -/+ jitter.
    (scored,) = [c for c in candidates(out) if c["status"] == "scored"]
    level = served.script.level("a cat", scored["seed"])
    assert scored["reward"] == pytest.approx((level - 1) / 3)


def test_an_empty_answer_stops_the_run_instead_of_skipping(served: ServedHarness) -> None:
    served.server.enqueue(StubReply.empty())
    with pytest.raises(CriticResponseError, match="'stub-critic' returned an empty answer"):
        run(served, max_rounds=2)
    assert len(served.server.chat_requests) == 1  # an empty answer is a server fault: no re-ask


def test_a_critic_server_that_is_down_is_a_clear_error(served: ServedHarness) -> None:
    url = served.server.url
    served.server.stop()
    with pytest.raises(
        CriticUnavailableError, match=re.escape(f"cannot connect to the critic server at {url}")
    ):
        run(served, max_rounds=2)
    assert served.inner.calls == 1  # the image was made; nothing was scored or summarised
    assert not (served.tmp_path / "run1" / "summary.json").exists()


def test_a_passing_server_error_is_retried_by_the_client(tmp_path: Path) -> None:
    h = ServedHarness(tmp_path, max_retries=2)
    try:
        h.server.enqueue(StubReply.error(503, "warming up"), times=2)
        out = run(h, max_rounds=10, candidates=1)
        asked = seeds_asked(h)
    finally:
        h.close()
    assert [r["prompt"] for r in out["rounds"]] == REFINED and out["rounds"][0]["skipped"] == []
    assert asked == {0: 3 + 2}  # round 0 took three tries, rounds 1 and 2 one each


def test_an_outage_mid_run_stops_it_and_a_resume_asks_only_what_is_missing(served: ServedHarness) -> None:
    answer = served.server.responder
    assert answer is not None
    down = [False]

    def responder(request: RecordedRequest) -> StubReply:
        return StubReply.error(503, "the critic is overloaded") if down[0] else answer(request)

    def outage_after_round_0(request):  # the generator call of round 1 takes the critic down
        down[0] = request.prompt != "a cat"
        return generate(request)

    served.server.responder = responder
    generate = served.inner.generate
    served.inner.generate = outage_after_round_0  # type: ignore[method-assign]
    graph = served.builder().compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "outage"}}
    context = served.context(max_rounds=3)

    with pytest.raises(CriticUnavailableError, match="kept failing with HTTP 503 with retries disabled"):
        asyncio.run(graph.ainvoke({"prompt": "a cat"}, config, context=context))
    assert len(served.server.chat_requests) == 2 and served.inner.calls == 2
    stopped = graph.get_state(config)
    assert [r["prompt"] for r in stopped.values["rounds"]] == REFINED[:1]

    served.inner.generate = generate  # type: ignore[method-assign]
    down[0] = False
    out = asyncio.run(graph.ainvoke(None, config, context=context))
    assert [r["prompt"] for r in out["rounds"]] == REFINED
    assert out["stop_reason"] == StopReason.MAX_ROUNDS
    # Round 1's image was kept: the resume asked about it again and made only round 2's image.
    assert served.inner.calls == 3 and len(served.server.chat_requests) == 2 + 2
    assert all(r["skipped"] == [] for r in out["rounds"])


def test_an_edit_sends_the_source_first_and_is_judged_with_the_edit_template(tmp_path: Path) -> None:
    source = tmp_path / "source.png"
    Image.new("RGB", (16, 16), (0, 128, 255)).save(source)
    h = ServedHarness(tmp_path, task=Task.EDIT)
    try:
        graph = h.builder().compile()
        out = asyncio.run(
            graph.ainvoke(
                {"prompt": "make the sky purple", "source_images": [str(source)]},
                context=h.context(max_rounds=2),
            )
        )
        requests = h.server.chat_requests
    finally:
        h.close()
    template = h.critic.template("pointwise", Task.EDIT)
    assert len(requests) == 2
    for request in requests:
        assert request.messages[0] == {"role": "system", "content": template.system}
        assert len(request.image_urls()) == 2 and "make the sky purple" in request.user_text()
    assert [h.server.scene_of(r).prompt for r in requests] == [  # type: ignore[union-attr]
        "make the sky purple",
        "make the sky purple, golden light",
    ]
    scores = out["rounds"][0]["best_scores"]
    assert scores["image_faithfulness"] is not None and scores["text_rendering"] is None


def test_a_repeated_run_asks_the_server_nothing_unless_the_template_changes(
    served: ServedHarness, tmp_path: Path
) -> None:
    first = run(served, max_rounds=2)
    assert len(served.server.chat_requests) == 2
    second = run(served, max_rounds=2)
    assert len(served.server.chat_requests) == 2  # every critique came from the cache
    assert [r["rewards"] for r in second["rounds"]] == [r["rewards"] for r in first["rounds"]]

    custom = tmp_path / "terse.md"
    custom.write_text(
        "<!-- system -->\nYou judge images tersely.\n<!-- user -->\n"
        "Request: {request}\nImage: <image:candidate>\nJudge it in the RationalRewards layout.\n"
    )
    critic = load_critic(
        served.server.url, model="stub-critic", templates={("pointwise", "t2i"): custom}, max_retries=0
    )
    graph = build_graph(generator=served.generator, critic=critic, cache=served.cache).compile()
    third = asyncio.run(graph.ainvoke({"prompt": "a cat"}, context=served.context(max_rounds=2)))
    fresh = served.server.chat_requests[2:]
    assert len(fresh) == 2  # another prompt is another critique: the cache does not answer for it
    assert [r.messages[0]["content"] for r in fresh] == ["You judge images tersely."] * 2
    assert fresh[0].user_text().startswith("Request: a cat\nImage: ")
    assert [r["rewards"] for r in third["rounds"]] == [r["rewards"] for r in first["rounds"]]


@pytest.mark.parametrize(("max_concurrency", "in_flight"), [(8, 3), (2, 2)])
def test_the_candidates_of_a_round_are_judged_at_once_up_to_the_critics_bound(
    tmp_path: Path, max_concurrency: int, in_flight: int
) -> None:
    h = ServedHarness(tmp_path, max_concurrency=max_concurrency)
    answer = h.server.responder
    assert answer is not None

    def slow(request: RecordedRequest) -> StubReply:
        reply = answer(request)
        reply.delay = 0.5  # long enough for the round's other candidates to be generated and sent
        return reply

    h.server.responder = slow
    try:
        out = run(h, max_rounds=1, candidates=3)
        assert h.server.max_in_flight == in_flight
    finally:
        h.close()
    assert len(out["rounds"][0]["rewards"]) == 3 and out["rounds"][0]["skipped"] == []
