"""The reward spec of a refine run is set in one place: the run's RefineContext.

The critic is the real :class:`~gcr.critic.critic.Critic` over the scripted HTTP server,
so templates, parsing and the HTTP client are all in the path; the reward the run records
must be :func:`~gcr.critic.scoring.normalized_reward` under the context's dimensions and
weights, whatever critic answered.
"""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path

import pytest
from refine_harness import FakeGenerator

from gcr.agent import RefineContext, build_graph
from gcr.critic import Critic, load_critic
from stubs.critic_server import GOOD_T2I_ANSWER, StubCriticServer

# GOOD_T2I_ANSWER scores text faithfulness 3.5, physical quality 3.0 and text rendering N/A.
TF, PQ = 3.5, 3.0


def _best_reward(stub: StubCriticServer, tmp_path: Path, **settings: object) -> float:
    stub.enqueue(GOOD_T2I_ANSWER)

    async def go() -> dict:
        critic = load_critic(stub.url, model="stub-critic", max_retries=0, timeout=10)
        async with critic:
            graph = build_graph(generator=FakeGenerator(), critic=critic, cache=None).compile()
            context = RefineContext(
                run_dir=str(tmp_path), max_rounds=1, candidates=1, target_reward=None, **settings
            )
            return await graph.ainvoke({"prompt": "a red cube on a blue sphere"}, context=context)

    out = asyncio.run(go())
    assert len(stub.chat_requests) == 1  # the real critic asked the server once
    return out["best"]["reward"]


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({}, ((TF + PQ) / 2 - 1) / 3),  # every dimension with a score, equal weights
        ({"dimensions": ["text_faithfulness"]}, (TF - 1) / 3),
        ({"dimensions": ["physical_quality"]}, (PQ - 1) / 3),
        ({"weights": {"text_faithfulness": 3.0, "physical_quality": 1.0}}, ((3 * TF + PQ) / 4 - 1) / 3),
    ],
)
def test_the_run_context_sets_the_reward_of_a_real_critique(
    critic_stub: StubCriticServer, tmp_path: Path, settings: dict, expected: float
) -> None:
    assert _best_reward(critic_stub, tmp_path, **settings) == pytest.approx(expected)


def test_the_critic_holds_no_reward_spec_of_its_own() -> None:
    # A second place to set the spec (the critic's) would be ignored by the run; it does not exist.
    assert "reward_spec" not in inspect.signature(Critic).parameters
    assert "reward_spec" not in inspect.signature(load_critic).parameters
    assert not hasattr(Critic, "reward")
