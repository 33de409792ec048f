"""Rewards: callables and the critic, weights, per-dimension logging, failures counted not zeroed."""

from __future__ import annotations

import math

import pytest
from PIL import Image
from rl_testkit import FakeCritic, image_brightness

from gcr.errors import ConfigError
from gcr.training.rl.config import RewardConfig
from gcr.training.rl.rewards import (
    CombinedReward,
    CriticReward,
    RewardBatch,
    WeightedReward,
    brightness,
    build_reward,
    import_object,
    summarize,
)


def _images(*levels: int) -> list[Image.Image]:
    return [Image.new("RGB", (8, 8), (v, v, v)) for v in levels]


def _args(images: list[Image.Image]) -> tuple[list[Image.Image], list[str], list[list[Image.Image]]]:
    return images, [f"prompt {i}" for i in range(len(images))], [[] for _ in images]


def test_brightness_is_the_mean_grey_level() -> None:
    values = brightness(*_args(_images(0, 51, 255)))
    assert values == pytest.approx([0.0, 0.2, 1.0])


def test_weighted_sum_and_each_reward_logged() -> None:
    def constant(images, prompts, sources):
        return [0.5] * len(images)

    combined = CombinedReward(
        [WeightedReward("bright", 2.0, brightness), WeightedReward("half", -1.0, constant)]
    )
    batch = combined(*_args(_images(0, 255)))
    assert batch.total == pytest.approx([2 * 0.0 - 0.5, 2 * 1.0 - 0.5])
    assert batch.per_reward == {"bright": [0.0, 1.0], "half": [0.5, 0.5]}
    assert batch.failures == {"bright": 0, "half": 0}
    stats = summarize(batch)
    assert stats["reward/mean"] == pytest.approx(0.5)
    assert stats["reward/bright"] == pytest.approx(0.5) and stats["reward/half"] == pytest.approx(0.5)


def test_a_none_is_a_counted_failure_not_a_zero() -> None:
    def picky(images, prompts, sources):
        return [None if i == 1 else 1.0 for i in range(len(images))]

    combined = CombinedReward(
        [WeightedReward("bright", 1.0, brightness), WeightedReward("picky", 1.0, picky)]
    )
    batch = combined(*_args(_images(0, 255, 255)))
    assert batch.total[1] is None
    assert batch.total[0] == pytest.approx(1.0) and batch.total[2] == pytest.approx(2.0)
    assert batch.failed == 1
    assert batch.failures == {"bright": 0, "picky": 1}
    assert batch.failure_kinds == {"picky/no score": 1}
    assert math.isnan(batch.as_array()[1])
    assert summarize(batch)["reward/mean"] == pytest.approx(1.5)  # mean of the scored samples only


def test_non_finite_or_wrong_length_rewards_are_errors() -> None:
    with pytest.raises(ConfigError, match="return None for a sample"):
        CombinedReward([WeightedReward("nan", 1.0, lambda i, p, s: [math.nan] * len(i))])(*_args(_images(0)))
    with pytest.raises(ConfigError, match="returned 1 values for 2 images"):
        CombinedReward([WeightedReward("short", 1.0, lambda i, p, s: [1.0])])(*_args(_images(0, 1)))
    with pytest.raises(ConfigError, match="must be numbers or None"):
        CombinedReward([WeightedReward("text", 1.0, lambda i, p, s: ["good"] * len(i))])(*_args(_images(0)))
    with pytest.raises(ConfigError, match="unique"):
        CombinedReward([WeightedReward("a", 1.0, brightness), WeightedReward("a", 1.0, brightness)])


def test_critic_reward_scores_dimensions_and_masks_failures() -> None:
    critic = FakeCritic(fail=lambda i: i == 2)
    reward = CriticReward(critic, max_concurrency=3)
    images = _images(0, 60, 120, 180, 240, 255)
    result = reward.evaluate(*_args(images))
    faithfulness = [1.0 + 3.0 * image_brightness(img) for img in images]
    # default spec: every scored dimension, equal weights; text rendering is N/A and left out
    expected = [((f + 2.5) / 2 - 1.0) / 3.0 for f in faithfulness]
    assert result.values[2] is None
    assert [v for i, v in enumerate(result.values) if i != 2] == pytest.approx(
        [e for i, e in enumerate(expected) if i != 2]
    )
    assert result.errors[2].startswith("CritiqueParseError")
    assert result.details["text_faithfulness"][0] == pytest.approx(1.0)
    assert result.details["text_faithfulness"][2] is None
    assert result.details["physical_quality"] == [2.5, 2.5, None, 2.5, 2.5, 2.5]
    assert "text_rendering" not in result.details  # N/A everywhere: nothing to log
    assert critic.calls == 6
    assert 1 < critic.max_in_flight <= 3  # concurrent, within the limit
    reward.close()
    assert critic.closed


def test_critic_dimension_weights_from_config() -> None:
    made: dict = {}

    def loader(spec, **kwargs):
        made.update(spec=spec, **kwargs)
        return FakeCritic()

    config = RewardConfig(
        name="critic",
        critic="http://127.0.0.1:9/v1",
        critic_model="rr",
        dimensions={"text_faithfulness": 3.0, "physical_quality": 1.0},
        max_concurrency=4,
    )
    weighted = build_reward(config, critic_loader=loader)
    assert made["spec"] == "http://127.0.0.1:9/v1" and made["model"] == "rr" and made["max_concurrency"] == 4
    assert "reward_spec" not in made  # the spec is set once, on the reward below, not on the critic
    combined = CombinedReward([weighted])
    batch = combined(*_args(_images(255)))  # faithfulness 4.0, quality 2.5
    assert batch.total[0] == pytest.approx(((3 * 4.0 + 1 * 2.5) / 4 - 1) / 3)
    assert batch.details["critic/text_faithfulness"] == [pytest.approx(4.0)]
    assert summarize(batch)["reward/critic/physical_quality"] == pytest.approx(2.5)
    combined.close()


def test_failures_across_batches_concatenate() -> None:
    def picky(images, prompts, sources):
        return [None] * len(images)

    combined = CombinedReward([WeightedReward("picky", 1.0, picky)])
    joined = RewardBatch.concat(
        [combined(*_args(_images(0))), combined(*_args(_images(0, 0))), combined.empty_batch()]
    )
    assert joined.failures == {"picky": 3} and joined.failed == 3 and len(joined.total) == 3


def test_function_rewards_import_by_path_and_factories_take_kwargs() -> None:
    plain = build_reward(RewardConfig(name="b", function="gcr.training.rl.rewards:brightness"))
    assert plain.fn is brightness
    made = build_reward(
        RewardConfig(
            name="c",
            function="gcr.training.rl.rewards:CombinedReward",
            kwargs={"rewards": [WeightedReward("x", 1.0, brightness)]},
        )
    )
    assert isinstance(made.fn, CombinedReward)
    with pytest.raises(ConfigError, match="cannot import module"):
        import_object("gcr.no_such_module:thing")
    with pytest.raises(ConfigError, match="has no attribute"):
        import_object("gcr.training.rl.rewards:no_such_reward")
