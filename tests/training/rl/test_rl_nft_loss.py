"""The NFT objective against a tiny example worked out by hand."""

from __future__ import annotations

import pytest
import torch

from gcr.training.rl.nft_loss import nft_loss


def _example(beta: float) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    v_theta = torch.tensor([[1.0, 0.0]], requires_grad=True)
    inputs = {
        "v_old": torch.tensor([[0.0, 0.0]]),
        "v_ref": torch.tensor([[0.5, 0.5]]),
        "x_t": torch.tensor([[0.5, 0.5]]),
        "x0": torch.tensor([[1.0, -1.0]]),
        "t": torch.tensor([0.5]),
        "r": torch.tensor([0.75]),
    }
    return inputs, v_theta


def test_beta_one_by_hand() -> None:
    inputs, v_theta = _example(1.0)
    out = nft_loss(v_theta, **inputs, beta=1.0, kl_weight=1e-4)
    # v+ = v_θ = [1, 0]        -> x̂0+ = [0, 0.5],  x̂0+ − x0 = [-1, 1.5]: w+ = 1.25, mean sq = 1.625
    # v- = 2·v_old − v_θ = [-1, 0] -> x̂0- = [1, 0.5], x̂0- − x0 = [0, 1.5]:  w- = 0.75, mean sq = 1.125
    assert out.weight_pos.item() == pytest.approx(1.25)
    assert out.weight_neg.item() == pytest.approx(0.75)
    assert out.policy.item() == pytest.approx(0.75 * 1.625 / 1.25 + 0.25 * 1.125 / 0.75)  # 1.35
    assert out.kl.item() == pytest.approx(0.25)
    assert out.loss.item() == pytest.approx(1.35 + 1e-4 * 0.25)
    out.loss.sum().backward()
    # d/dv_θ: r/w+·(2/n)(x̂0+ − x0)(−t) + (1−r)/w-·(2/n)(x̂0- − x0)(t) + kl_w·(2/n)(v_θ − v_ref)
    expected = torch.tensor([[0.3 + 0.0 + 5e-5, -0.45 + 0.25 - 5e-5]])
    torch.testing.assert_close(v_theta.grad, expected)


def test_beta_half_by_hand() -> None:
    inputs, v_theta = _example(0.5)
    out = nft_loss(v_theta, **inputs, beta=0.5, kl_weight=0.0)
    # v+ = [0.5, 0] -> diff [-0.75, 1.5]: w+ = 1.125, mean sq = 1.40625
    # v- = [-0.5, 0] -> diff [-0.25, 1.5]: w- = 0.875, mean sq = 1.15625
    expected = (0.75 * 1.40625 / 1.125 + 0.25 * 1.15625 / 0.875) / 0.5
    assert out.policy.item() == pytest.approx(expected)
    assert out.loss.item() == pytest.approx(expected)


def test_policy_scale_and_per_sample_shape() -> None:
    inputs, v_theta = _example(1.0)
    scaled = nft_loss(v_theta, **inputs, beta=1.0, kl_weight=0.0, policy_scale=5.0)
    assert scaled.loss.item() == pytest.approx(5 * 1.35)
    batch = {k: torch.cat([v, v]) for k, v in inputs.items()}
    out = nft_loss(torch.cat([v_theta, v_theta]), **batch)
    assert out.loss.shape == (2,)


def test_a_perfect_positive_prediction_costs_little_when_r_is_one() -> None:
    x0 = torch.randn(3, 4, 5)
    noise = torch.randn(3, 4, 5)
    t = torch.tensor([0.2, 0.5, 0.9])
    tb = t.view(-1, 1, 1)
    x_t = (1 - tb) * x0 + tb * noise
    v_true = noise - x0
    v_theta = (v_true + 1e-3 * torch.randn_like(v_true)).requires_grad_(True)
    good = nft_loss(v_theta, v_true, v_true, x_t, x0, t, torch.ones(3))
    bad = nft_loss(v_theta, v_true, v_true, x_t, x0, t, torch.zeros(3))
    assert torch.all(good.policy < 0.01)  # ‖·‖²/w is of the size of the error, not of x0
    assert torch.all(good.loss.isfinite()) and torch.all(bad.loss.isfinite())


def test_shapes_are_checked() -> None:
    inputs, v_theta = _example(1.0)
    with pytest.raises(ValueError, match="shapes differ"):
        nft_loss(v_theta, **{**inputs, "x0": torch.zeros(1, 3)})
    with pytest.raises(ValueError, match="t and r must have shape"):
        nft_loss(v_theta, **{**inputs, "t": torch.zeros(2)})
    with pytest.raises(ValueError, match="beta must be positive"):
        nft_loss(v_theta, **inputs, beta=0.0)
