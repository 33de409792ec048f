"""Group-relative advantages, NFT weights and the mask, against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gcr.training.rl.advantages import compute_advantages, nft_weight, population_std


def test_advantages_use_group_means_and_the_global_std() -> None:
    rewards = np.array([1.0, 2.0, 3.0, 4.0])
    groups = np.array([0, 0, 1, 1])
    result = compute_advantages(rewards, groups, safeguard_mean=10.0)
    std = math.sqrt(1.25)  # population std of 1, 2, 3, 4
    expected = np.array([-0.5, 0.5, -0.5, 0.5]) / (std + 1e-4)
    np.testing.assert_allclose(result.advantages, expected)
    np.testing.assert_allclose(result.group_mean, [1.5, 3.5])
    np.testing.assert_allclose(result.group_std, [0.5, 0.5])
    assert result.global_std == pytest.approx(std)
    np.testing.assert_allclose(result.nft_weight, 0.5 + expected / 5.0 / 2.0)
    assert result.mask.all() and result.trained_samples == 4


def test_a_given_global_std_is_used() -> None:
    result = compute_advantages(np.array([0.0, 1.0]), np.array([0, 0]), global_std=2.0)
    np.testing.assert_allclose(result.advantages, [-0.5 / 2.0001, 0.5 / 2.0001])


def test_nft_weight_clips_and_rescales() -> None:
    a = np.array([-10.0, -5.0, -2.5, 0.0, 2.5, 5.0, 10.0])
    np.testing.assert_allclose(nft_weight(a, 5.0), [0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.0])
    np.testing.assert_allclose(nft_weight(np.array([1.0, -3.0]), 2.0), [0.75, 0.0])


def test_failed_samples_are_left_out_and_masked() -> None:
    rewards = np.array([0.2, math.nan, 0.6, 0.4, 0.8, math.nan])
    groups = np.array([0, 0, 0, 1, 1, 1])
    result = compute_advantages(rewards, groups)
    assert result.failed_samples == 2
    np.testing.assert_array_equal(result.mask, [True, False, True, True, True, False])
    finite = np.array([0.2, 0.6, 0.4, 0.8])
    std = finite.std()
    assert result.global_std == pytest.approx(std)
    np.testing.assert_allclose(result.group_mean, [0.4, 0.6])
    np.testing.assert_allclose(
        result.advantages,
        [-0.2 / (std + 1e-4), 0.0, 0.2 / (std + 1e-4), -0.2 / (std + 1e-4), 0.2 / (std + 1e-4), 0.0],
    )
    assert result.nft_weight[1] == 0.5 and result.nft_weight[5] == 0.5


def test_groups_with_too_few_scored_samples_are_masked() -> None:
    rewards = np.array([0.3, math.nan, math.nan, 0.1, 0.9, 0.5])
    groups = np.array([0, 0, 0, 1, 1, 1])
    result = compute_advantages(rewards, groups, min_valid=2)
    assert result.sparse_groups == [0]
    np.testing.assert_array_equal(result.mask, [False, False, False, True, True, True])
    assert result.advantages[0] == 0.0


def test_saturated_groups_are_masked_and_reported() -> None:
    rewards = np.array([0.95, 0.96, 0.94, 0.2, 0.9, 0.5, 0.92, 0.99, 0.6])
    groups = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    result = compute_advantages(rewards, groups, safeguard_std=0.05, safeguard_mean=0.9)
    # group 0: std 0.0082 < 0.05 and mean 0.95 > 0.9 -> saturated; group 2: mean 0.837 -> kept
    assert result.saturated_groups == [0]
    np.testing.assert_array_equal(result.mask, [False] * 3 + [True] * 6)
    assert result.trained_samples == 6
    # a constant but low group is not saturated (both conditions are needed) and trains with A = 0
    low = compute_advantages(np.array([0.3, 0.3, 0.1, 0.5]), np.array([0, 0, 1, 1]))
    assert low.saturated_groups == [] and low.mask.all()
    np.testing.assert_allclose(low.advantages[:2], 0.0)


def test_population_std_ignores_nan_and_checks_shapes() -> None:
    assert population_std(np.array([1.0, math.nan, 3.0])) == pytest.approx(1.0)
    assert math.isnan(population_std(np.array([math.nan])))
    with pytest.raises(ValueError, match="1-D of one length"):
        compute_advantages(np.zeros(3), np.zeros(2, dtype=int))
