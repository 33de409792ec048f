"""The stopping policy: each rule on hand-made histories, and a custom policy deciding a real run."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from refine_harness import FakeGenerator, Harness

from gcr.agent import RefineContext, build_graph
from gcr.agent.stopping import RoundOutcome, StopDecision, StopReason, StopRules, best_so_far
from gcr.critic.loading import load_critic
from stubs.prompt_aware_critic import (
    PromptAwareCriticServer,
    PromptAwareScript,
    RecordingGenerator,
    SceneBook,
)


def rounds(*rewards: float, **kw) -> list[RoundOutcome]:
    return [RoundOutcome(reward=r, **kw) for r in rewards]


def test_no_history_no_stop():
    assert StopRules().decide([]) is None


def test_target_reward_reached_by_an_earlier_round_counts():
    rules = StopRules(target_reward=0.8, max_rounds=10)
    assert rules.decide(rounds(0.5, 0.79)) is None
    decision = rules.decide(rounds(0.5, 0.85, 0.6))
    assert decision.reason is StopReason.TARGET_REWARD
    assert "0.850" in decision.detail


def test_target_reward_off():
    assert StopRules(target_reward=None, max_rounds=10, patience=5).decide(rounds(1.0)) is None


def test_dimension_target_needs_every_scored_dimension():
    rules = StopRules(target_reward=None, dimension_target=3.0, max_rounds=10, patience=5)
    almost = [RoundOutcome(0.7, {"text_faithfulness": 3.5, "physical_quality": 2.9, "text_rendering": None})]
    assert rules.decide(almost) is None
    done = [
        *almost,
        RoundOutcome(0.7, {"text_faithfulness": 3.0, "physical_quality": 3.25, "text_rendering": None}),
    ]
    decision = rules.decide(done)
    assert decision.reason is StopReason.DIMENSION_TARGET
    assert "round 1" in decision.detail
    # An image with only N/A dimensions never qualifies.
    assert rules.decide([RoundOutcome(0.7, {"text_rendering": None})]) is None


def test_max_rounds():
    rules = StopRules(target_reward=None, max_rounds=3, patience=10)
    assert rules.decide(rounds(0.1, 0.2)) is None
    assert rules.decide(rounds(0.1, 0.2, 0.3)).reason is StopReason.MAX_ROUNDS


def test_plateau_needs_patience_rounds_without_gain():
    rules = StopRules(target_reward=None, max_rounds=20, min_delta=0.05, patience=2)
    assert rules.decide(rounds(0.3, 0.31)) is None  # one flat round is within patience
    decision = rules.decide(rounds(0.3, 0.31, 0.33))
    assert decision.reason is StopReason.PLATEAU
    # A big gain in the window resets it.
    assert rules.decide(rounds(0.3, 0.31, 0.40)) is None
    # A worse round is no gain: the best so far stays.
    assert rules.decide(rounds(0.3, 0.6, 0.2, 0.5)).reason is StopReason.PLATEAU


def test_plateau_with_patience_one():
    rules = StopRules(target_reward=None, max_rounds=20, min_delta=0.02, patience=1)
    assert rules.decide(rounds(0.3)) is None
    assert rules.decide(rounds(0.3, 0.31)).reason is StopReason.PLATEAU
    assert rules.decide(rounds(0.3, 0.35)) is None


def test_generation_budget_stops_before_a_round_that_would_exceed_it():
    rules = StopRules(
        target_reward=None, max_rounds=20, patience=10, max_generations=7, candidates_per_round=2
    )
    history = rounds(0.1, 0.2, 0.3, generations=2)  # 6 used, another round needs 2 > 7
    decision = rules.decide(history)
    assert decision.reason is StopReason.GENERATION_BUDGET
    assert "6 of 7" in decision.detail
    assert rules.decide(rounds(0.1, 0.2, generations=2)) is None  # 4 used, 6 <= 7


def test_wall_time_budget_uses_the_slowest_round_as_estimate():
    rules = StopRules(target_reward=None, max_rounds=20, patience=10, max_wall_s=10.0)
    assert rules.decide(rounds(0.1, 0.2, elapsed_s=3.0)) is None  # 6 s + 3 s <= 10 s
    decision = rules.decide(rounds(0.1, 0.2, 0.3, elapsed_s=3.0))  # 9 s + 3 s > 10 s
    assert decision.reason is StopReason.WALL_TIME


def test_rule_order_target_before_max_rounds():
    rules = StopRules(target_reward=0.5, max_rounds=1)
    assert rules.decide(rounds(0.9)).reason is StopReason.TARGET_REWARD
    assert rules.decide(rounds(0.1)).reason is StopReason.MAX_ROUNDS


@pytest.mark.parametrize(
    ("rewards", "expected"),
    [((0.2, 0.5, 0.3, 0.6), [0.2, 0.5, 0.5, 0.6]), ((0.4,), [0.4])],
)
def test_best_so_far(rewards, expected):
    assert best_so_far(rounds(*rewards)) == expected


class StopAtRound:
    """A custom policy: stops after ``n`` rounds in its own words, and keeps every history it was shown."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.seen: list[list[float]] = []

    def decide(self, history):
        self.seen.append([h.reward for h in history])
        if len(history) >= self.n:
            return StopDecision(StopReason.MAX_ROUNDS, f"custom policy: {len(history)} rounds are enough")
        return None


def test_build_graph_lets_a_custom_policy_decide_over_the_real_critic(tmp_path: Path) -> None:
    """The run's own rules would stop after round 1 (target reward 0.01); the custom policy runs it to 3."""
    book = SceneBook()
    policy = StopAtRound(3)
    with PromptAwareCriticServer(PromptAwareScript(), book) as server:
        critic = load_critic(server.url, model="stub-critic", max_retries=0, timeout=5)
        generator = RecordingGenerator(FakeGenerator(), book)
        graph = build_graph(generator=generator, critic=critic, stopping=policy).compile()
        context = RefineContext(run_dir=str(tmp_path / "run"), max_rounds=10, target_reward=0.01)
        out = asyncio.run(graph.ainvoke({"prompt": "a cat"}, context=context))
        asked = len(server.chat_requests)
    assert out["stop_reason"] == StopReason.MAX_ROUNDS
    assert out["stop_detail"] == "custom policy: 3 rounds are enough"
    rewards = [r["best_reward"] for r in out["rounds"]]
    assert len(rewards) == 3 and policy.seen == [rewards[:1], rewards[:2], rewards]
    # The rewards come from the real Critic parsing the scripted server's answers, and follow its advice.
    prompts = [r["prompt"] for r in out["rounds"]]
    assert prompts == ["a cat", "a cat, golden light", "a cat, golden light, sharp focus"]
    assert rewards[0] < rewards[1] < rewards[2]
    assert asked == 3  # one critique per round, each an HTTP request
    # Without the custom policy the same context stops at the target after round 1.
    with PromptAwareCriticServer(PromptAwareScript(), book) as server:
        critic = load_critic(server.url, model="stub-critic", max_retries=0, timeout=5)
        graph = build_graph(generator=generator, critic=critic).compile()
        context = RefineContext(run_dir=str(tmp_path / "run2"), max_rounds=10, target_reward=0.01)
        plain = asyncio.run(graph.ainvoke({"prompt": "a cat"}, context=context))
    assert plain["stop_reason"] == StopReason.TARGET_REWARD and len(plain["rounds"]) == 1


class Recorder:
    """A custom policy built from a function of the history; keeps every history it was shown."""

    def __init__(self, rule) -> None:
        self.rule = rule
        self.seen: list[list[RoundOutcome]] = []

    def decide(self, history):
        self.seen.append(list(history))
        return self.rule(history)


def run_with(harness: Harness, policy: Recorder, **settings):
    graph = harness.builder(stopping=policy).compile()
    stream = graph.astream(
        {"prompt": "a cat"}, context=harness.context(**settings), stream_mode=["custom", "values"]
    )

    async def collect():
        events, last = [], None
        async for mode, chunk in stream:
            if mode == "custom":
                events.append(chunk)
            else:
                last = chunk
        return events, last

    return asyncio.run(collect())


def test_a_custom_policy_ends_the_run_early_in_its_own_words(harness: Harness) -> None:
    """The context would run ten rounds; a policy judging the physical quality ends it at round 2."""

    def quality_reached(history):
        quality = history[-1].scores.get("physical_quality")
        if quality is not None and quality >= 3.0:
            return StopDecision(StopReason.DIMENSION_TARGET, f"quality {quality:.2f} is good enough")
        return None

    policy = Recorder(quality_reached)
    events, out = run_with(harness, policy, max_rounds=10, candidates=2)

    assert len(out["rounds"]) == 3 and len(policy.seen) == 3  # asked once after every round
    assert out["stop_reason"] == StopReason.DIMENSION_TARGET
    assert (
        out["stop_detail"]
        == f"quality {out['rounds'][-1]['best_scores']['physical_quality']:.2f} is good enough"
    )
    # It saw each round's best reward and scores, and the two images each round made.
    last = policy.seen[-1]
    assert [h.reward for h in last] == [r["best_reward"] for r in out["rounds"]]
    assert [h.scores for h in last] == [r["best_scores"] for r in out["rounds"]]
    assert [h.generations for h in last] == [2, 2, 2] and all(h.elapsed_s >= 0 for h in last)
    assert [h.scores["physical_quality"] < 3.0 for h in last] == [True, True, False]
    # The reason is what the run reports: summary, report and the last event.
    summary = json.loads((Path(out["run_dir"]) / "summary.json").read_text())
    assert (summary["stop_reason"], summary["stop_detail"]) == ("dimension_target", out["stop_detail"])
    assert out["stop_detail"] in (Path(out["run_dir"]) / "report.html").read_text()
    stopped = events[-1]
    assert stopped["type"] == "stopped" and stopped["reason"] == "dimension_target"
    assert stopped["detail"] == out["stop_detail"] and stopped["rounds"] == 3


def test_a_policy_that_never_stops_replaces_the_runs_rules_but_not_the_refiner(harness: Harness) -> None:
    """max_rounds=1 in the context does not apply; the run still ends when the critic has nothing new."""
    policy = Recorder(lambda history: None)
    _, out = run_with(harness, policy, max_rounds=1, target_reward=0.01)

    assert [r["prompt"] for r in out["rounds"]] == [
        "a cat",
        "a cat, golden light",
        "a cat, golden light, sharp focus",
    ]
    assert [len(h) for h in policy.seen] == [1, 2, 3]
    assert out["stop_reason"] == StopReason.NOTHING_NEW


def test_a_policy_that_stops_after_the_first_round_makes_one_round(harness: Harness) -> None:
    policy = Recorder(lambda history: StopDecision(StopReason.WALL_TIME, "out of time already"))
    _, out = run_with(harness, policy, max_rounds=10, candidates=3)

    assert len(out["rounds"]) == 1 and harness.inner.calls == 3
    assert (out["stop_reason"], out["stop_detail"]) == (StopReason.WALL_TIME, "out of time already")
    assert out["best"]["round"] == 0 and out["best"]["reward"] == max(out["rounds"][0]["rewards"])
