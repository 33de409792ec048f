"""The DiffusionNFT objective for one batch at one timestep per sample.

With x_t = (1 − t)·x0 + t·ε and velocities v_θ (trained), v_old (sampling policy,
no gradient) and v_ref (base model, no gradient)::

    v⁺ = β·v_θ + (1 − β)·v_old          v⁻ = (1 + β)·v_old − β·v_θ
    x̂0^± = x_t − t·v^±                  w^± = mean|x̂0^± − x0|   (per sample, detached)
    policy = [ r·‖x̂0⁺ − x0‖² / w⁺ + (1 − r)·‖x̂0⁻ − x0‖² / w⁻ ] / β
    kl     = ‖v_θ − v_ref‖²
    loss   = scale·policy + kl_weight·kl

Norms: every ‖·‖² here is the mean over a sample's elements (not the sum), the
same per-element mean that defines w, so the ratio ‖·‖²/w is in units of the
latents and does not grow with resolution; upstream's code does the same
(``mean`` over all non-batch dimensions, weights clamped at 1e-5 and computed in
float64). The batch reduction is left to the caller (masked and normalised across
gradient accumulation), so this returns per-sample values.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

#: Lower bound of the adaptive weights w^± (upstream's value).
MIN_WEIGHT = 1e-5


@dataclass
class NFTLoss:
    """Per-sample terms; ``loss`` carries the gradient, the rest are detached."""

    loss: torch.Tensor  # (B,)
    policy: torch.Tensor  # (B,)
    kl: torch.Tensor  # (B,)
    weight_pos: torch.Tensor  # (B,) w⁺
    weight_neg: torch.Tensor  # (B,) w⁻


def _per_sample_mean(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).mean(dim=1)


def nft_loss(
    v_theta: torch.Tensor,
    v_old: torch.Tensor,
    v_ref: torch.Tensor,
    x_t: torch.Tensor,
    x0: torch.Tensor,
    t: torch.Tensor,
    r: torch.Tensor,
    *,
    beta: float = 1.0,
    kl_weight: float = 1e-4,
    policy_scale: float = 1.0,
) -> NFTLoss:
    """Per-sample DiffusionNFT loss; ``t`` and ``r`` have shape (B,), the rest (B, ...)."""
    if beta <= 0:
        raise ValueError(f"beta must be positive, got {beta}")
    shapes = {tuple(v.shape) for v in (v_theta, v_old, v_ref, x_t, x0)}
    if len(shapes) != 1:
        raise ValueError(f"velocity and latent shapes differ: {sorted(shapes)}")
    batch = v_theta.shape[0]
    if t.shape != (batch,) or r.shape != (batch,):
        raise ValueError(f"t and r must have shape ({batch},), got {tuple(t.shape)} and {tuple(r.shape)}")

    v_theta = v_theta.float()
    v_old = v_old.detach().float()
    x_t = x_t.float()
    x0 = x0.float()
    t_b = t.float().view(batch, *([1] * (x0.ndim - 1)))
    r = r.float()

    v_pos = beta * v_theta + (1.0 - beta) * v_old
    v_neg = (1.0 + beta) * v_old - beta * v_theta
    x0_pos = x_t - t_b * v_pos
    x0_neg = x_t - t_b * v_neg
    with torch.no_grad():
        w_pos = _per_sample_mean((x0_pos.double() - x0.double()).abs()).clamp(min=MIN_WEIGHT).float()
        w_neg = _per_sample_mean((x0_neg.double() - x0.double()).abs()).clamp(min=MIN_WEIGHT).float()
    err_pos = _per_sample_mean((x0_pos - x0) ** 2) / w_pos
    err_neg = _per_sample_mean((x0_neg - x0) ** 2) / w_neg
    policy = (r * err_pos + (1.0 - r) * err_neg) / beta
    kl = _per_sample_mean((v_theta - v_ref.detach().float()) ** 2)
    loss = policy_scale * policy + kl_weight * kl
    return NFTLoss(loss=loss, policy=policy.detach(), kl=kl.detach(), weight_pos=w_pos, weight_neg=w_neg)
