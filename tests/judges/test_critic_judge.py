"""A RationalRewards-format critic as a judge: served (scripted server) and in-process (tiny model)."""

from __future__ import annotations

import asyncio

import pytest
from PIL import Image

from gcr.errors import JudgeResponseError
from gcr.judges import load_judge
from stubs.critic_server import GOOD_T2I_ANSWER, StubCriticServer


def run_judge(judge, prompt="a red cube on a blue sphere", image=None, sources=()):
    async def go():
        try:
            return await judge.judge(prompt, image or Image.new("RGB", (16, 16), "red"), sources)
        finally:
            await judge.aclose()

    return asyncio.run(go())


def test_served_critic_judge_scores_the_normalized_reward(critic_stub: StubCriticServer) -> None:
    critic_stub.enqueue(GOOD_T2I_ANSWER)
    judge = load_judge(f"critic:{critic_stub.url},temperature=0.7")
    result = run_judge(judge)
    # TF 3.5 and PQ 3.0, text rendering N/A: (3.25 - 1) / 3.
    assert result.score == pytest.approx(0.75)
    assert result.subscores == {"text_faithfulness": 3.5, "physical_quality": 3.0}
    assert result.raw == GOOD_T2I_ANSWER
    assert critic_stub.chat_requests[0].body["temperature"] == 0.7
    assert "temperature=0.7" in judge.identity and "stub-critic" in judge.identity
    other = load_judge(f"critic:{critic_stub.url},temperature=0.1")
    assert other.identity != judge.identity


def test_dimension_subset_changes_score_and_identity(critic_stub: StubCriticServer) -> None:
    critic_stub.enqueue(GOOD_T2I_ANSWER)
    judge = load_judge(f"critic:{critic_stub.url},dimensions=pq")
    assert run_judge(judge).score == pytest.approx((3.0 - 1) / 3)
    assert "dimensions=physical_quality" in judge.identity


def test_weights_change_the_identity(critic_stub: StubCriticServer) -> None:
    from gcr.critic import load_critic
    from gcr.critic.scoring import RewardSpec
    from gcr.judges.critic_judge import CriticJudge

    critic = load_critic(critic_stub.url, model="stub-critic")
    specs = ("tf=2,pq=1", "tf=1,pq=2", "tf,pq")
    judges = [CriticJudge(critic, reward_spec=RewardSpec.parse(w)) for w in specs]
    critic_stub.enqueue(GOOD_T2I_ANSWER, times=3)
    # TF 3.5 and PQ 3.0: different weights give different scores, so cached verdicts must not be shared.
    scores = [run_judge(j).score for j in judges]
    assert scores == pytest.approx([((2 * 3.5 + 3.0) / 3 - 1) / 3, ((3.5 + 2 * 3.0) / 3 - 1) / 3, 0.75])
    assert len({j.identity for j in judges}) == 3
    assert judges[2].identity.endswith("dimensions=text_faithfulness,physical_quality;max_pixels=802816")


def test_unparseable_critique_is_a_judge_error(critic_stub: StubCriticServer) -> None:
    critic_stub.enqueue("no critique here", "still nothing")
    judge = load_judge(f"critic:{critic_stub.url}")
    with pytest.raises(JudgeResponseError) as info:
        run_judge(judge)
    assert info.value.raw_text == "still nothing"


def test_in_process_critic_judge_on_the_tiny_model(tiny_critic_dir) -> None:
    """The tiny random model writes noise: the judge either scores or fails loudly, never a silent 0."""
    judge = load_judge(f"critic:{tiny_critic_dir},max_tokens=24,device=cpu")
    assert f"@{tiny_critic_dir}" in judge.identity
    try:
        result = run_judge(judge)
    except JudgeResponseError as exc:
        assert exc.raw_text  # the model's text is kept
    else:
        assert 0.0 <= result.score <= 1.0 and result.subscores
