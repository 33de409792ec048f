"""Rubric judges (VIEScore, ImgEdit, user rubrics) against the scripted chat server: exact scores."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest
from PIL import Image

from gcr.errors import ConfigError, InputError, JudgeError, JudgeResponseError, JudgeUnavailableError
from gcr.judges import JudgePanel, JudgeResult, load_judge
from gcr.judges.base import Judge
from stubs.critic_server import StubCriticServer, StubReply
from stubs.judge_server import ScriptedJudge

RED, GREEN, GREY = (200, 30, 30), (30, 200, 30), (128, 128, 128)


def solid(colour: tuple[int, int, int]) -> Image.Image:
    return Image.new("RGB", (16, 16), colour)


def run(coro):
    return asyncio.run(coro)


async def judge_once(judge: Judge, prompt: str, image: Image.Image, sources=()) -> JudgeResult:
    try:
        return await judge.judge(prompt, image, sources)
    finally:
        await judge.aclose()  # type: ignore[attr-defined]


def test_viescore_t2i_is_sqrt_of_min_sc_times_min_pq(critic_stub: StubCriticServer) -> None:
    critic_stub.responder = ScriptedJudge({RED: {"prompt_following": 8, "naturalness": 6, "artifacts": 9}})
    judge = load_judge(f"viescore:{critic_stub.url}")
    result = run(judge_once(judge, "a red square", solid(RED)))

    assert result.subscores == {
        "semantic_consistency": 8.0,
        "perceptual_quality": 6.0,  # min(6, 9)
        "overall": pytest.approx(math.sqrt(8 * 6)),
    }
    assert result.score == pytest.approx(math.sqrt(48) / 10)
    assert result.judge == judge.identity
    assert "rubric=viescore#" in judge.identity and "temperature=0" in judge.identity
    assert "stub-critic" in judge.identity
    # Two questions, each one request; each request carries only the images it needs.
    reqs = critic_stub.chat_requests
    assert len(reqs) == 2 and all(len(r.image_urls()) == 1 for r in reqs)
    assert any("a red square" in r.user_text() for r in reqs)
    assert "## semantic_consistency" in result.raw and "## perceptual_quality" in result.raw


def test_viescore_edit_sees_source_for_sc_and_only_the_edit_for_pq(critic_stub: StubCriticServer) -> None:
    scripted = ScriptedJudge(
        {GREEN: {"instruction_following": 9, "minimal_change": 4, "naturalness": 7, "artifacts": 8}}
    )
    critic_stub.responder = scripted
    judge = load_judge(f"viescore:{critic_stub.url},temperature=0.3")
    result = run(judge_once(judge, "make it green", solid(GREEN), [solid(GREY)]))

    assert result.subscores["semantic_consistency"] == 4.0  # min(9, 4): over-editing caps it
    assert result.subscores["perceptual_quality"] == 7.0
    assert result.score == pytest.approx(math.sqrt(28) / 10)
    by_images = sorted(len(r.image_urls()) for r in critic_stub.chat_requests)
    assert by_images == [1, 2]
    assert {r.body["temperature"] for r in critic_stub.chat_requests} == {0.3}


def test_imgedit_is_the_mean_of_three_1_to_5_criteria(critic_stub: StubCriticServer) -> None:
    critic_stub.responder = ScriptedJudge(
        {GREEN: {"instruction_compliance": 5, "visual_naturalness": 3, "physical_integrity": 4}}
    )
    judge = load_judge(f"imgedit:{critic_stub.url}")
    result = run(judge_once(judge, "make it green", solid(GREEN), [solid(GREY)]))

    assert result.subscores == {
        "instruction_compliance": 5.0,
        "visual_naturalness": 3.0,
        "physical_integrity": 4.0,
        "overall": 4.0,
    }
    assert result.score == pytest.approx((4.0 - 1) / 4)
    assert len(critic_stub.chat_requests) == 1


def test_imgedit_refuses_text_to_image(critic_stub: StubCriticServer) -> None:
    judge = load_judge(f"imgedit:{critic_stub.url}")
    with pytest.raises(InputError, match="rubric 'imgedit' has no prompts for t2i"):
        run(judge_once(judge, "a cat", solid(RED)))


def test_unreadable_answer_is_asked_again_then_an_error_never_zero(critic_stub: StubCriticServer) -> None:
    critic_stub.responder = ScriptedJudge({}, default=None)
    judge = load_judge(f"viescore:{critic_stub.url}")
    with pytest.raises(JudgeResponseError, match="no readable scores") as info:
        run(judge_once(judge, "a cat", solid(RED)))
    assert "lovely" in info.value.raw_text
    # Two questions, each asked twice (one re-ask with the format restated).
    assert len(critic_stub.chat_requests) == 4
    assert "could not be read" in critic_stub.chat_requests[-1].user_text()


def test_reask_recovers_and_out_of_range_scores_are_refused(critic_stub: StubCriticServer) -> None:
    critic_stub.enqueue(
        '{"reasoning": "x", "scores": {"instruction_compliance": 7, "visual_naturalness": 3, '
        '"physical_integrity": 4}}',
        '```json\n{"reasoning": "ok", "scores": {"instruction_compliance": 2, "visual_naturalness": 2, '
        '"physical_integrity": 2}}\n```',
    )
    judge = load_judge(f"imgedit:{critic_stub.url}")
    result = run(judge_once(judge, "make it green", solid(GREEN), [solid(GREY)]))
    assert result.subscores["overall"] == 2.0 and result.score == pytest.approx(0.25)


def test_unreachable_judge_is_a_judge_error(critic_stub: StubCriticServer) -> None:
    judge = load_judge(f"viescore:{critic_stub.url},max_retries=0")
    critic_stub.enqueue(StubReply.error(503), StubReply.error(503), times=2)
    with pytest.raises(JudgeUnavailableError, match="judge server"):
        run(judge_once(judge, "a cat", solid(RED)))


def test_panel_caches_by_content_and_records_failures(critic_stub: StubCriticServer, tmp_path: Path) -> None:
    critic_stub.responder = ScriptedJudge({RED: {"prompt_following": 10, "naturalness": 10, "artifacts": 10}})
    judge = load_judge(f"viescore:{critic_stub.url}")
    panel = JudgePanel([judge], cache_dir=tmp_path)

    async def go():
        try:
            first = await panel.verdicts("a red square", solid(RED))
            again = await panel.verdicts("a red square", solid(RED))
            failed = await panel.verdicts("a red square", solid(GREEN))  # unscripted: unreadable
            return first, again, failed
        finally:
            await panel.aclose()

    first, again, failed = run(go())
    (v1,), (v2,), (v3,) = first.values(), again.values(), failed.values()
    assert v1.ok and v1.score == 1.0 and not v1.cached
    assert v2.cached and v2.result == v1.result
    assert not v3.ok and v3.score is None and v3.error["type"] == "JudgeResponseError"
    assert v3.to_dict()["status"] == "failed" and "score" not in v3.to_dict()
    # 2 questions for the scored image; 2 questions x 2 asks for the unreadable one; none for the hit.
    assert len(critic_stub.chat_requests) == 2 + 4
    # A judge with another identity (temperature) does not share the cache entry.
    other = load_judge(f"viescore:{critic_stub.url},temperature=0.5")
    assert other.identity != judge.identity


def test_user_rubric_file(critic_stub: StubCriticServer, tmp_path: Path) -> None:
    rubric = tmp_path / "mine.md"
    rubric.write_text(
        "---\nname: mine\nscale: [1, 4]\noverall: min\nkeep_criteria: true\nquestions:\n"
        "  - key: looks\n    reduce: mean\n    criteria: [sharpness, colour]\n"
        "  - key: fits\n    reduce: min\n    criteria: [prompt_match]\n---\n"
        "<!-- question: looks, task: any -->\n<!-- user -->\nRate the looks.\n<image:candidate>\n"
        "<!-- question: fits, task: t2i -->\n<!-- user -->\nDoes it show {request}?\n<image:candidate>\n",
        encoding="utf-8",
    )
    critic_stub.responder = ScriptedJudge({RED: {"sharpness": 4, "colour": 3, "prompt_match": 2}})
    judge = load_judge(f"vlm:{critic_stub.url},rubric={rubric}")
    result = run(judge_once(judge, "a red square", solid(RED)))
    assert result.subscores == {
        "sharpness": 4.0, "colour": 3.0, "looks": 3.5, "prompt_match": 2.0, "fits": 2.0, "overall": 2.0
    }
    assert result.score == pytest.approx((2 - 1) / 3)
    assert "rubric=mine#" in judge.identity


def test_rubric_kinds_need_a_target_and_known_options(critic_stub: StubCriticServer) -> None:
    with pytest.raises(ConfigError, match="give the judge model"):
        load_judge("vlm:")
    with pytest.raises(ConfigError, match="unknown option"):
        load_judge(f"viescore:{critic_stub.url},colour=blue")
    with pytest.raises(ConfigError, match="fixes the rubric"):
        load_judge(f"viescore:{critic_stub.url},rubric=imgedit")
    with pytest.raises(ConfigError, match="not a number"):
        load_judge(f"viescore:{critic_stub.url},temperature=hot")


def test_judge_errors_share_one_base() -> None:
    assert issubclass(JudgeResponseError, JudgeError) and issubclass(JudgeUnavailableError, JudgeError)


def test_a_server_with_several_models_needs_the_model_option() -> None:
    with StubCriticServer(models=("a", "b")) as server:
        with pytest.raises(ConfigError, match=r"several models \(a, b\).*model=NAME option"):
            load_judge(f"viescore:{server.url}")
        judge = load_judge(f"viescore:{server.url},model=b")
        assert "vlm:b@" in judge.identity
