"""Group-relative advantages, the NFT optimality weight, and the training mask.

For an epoch of groups (one prompt each): A = (r − mean of the prompt's group)
/ (std of all scored rewards of the epoch + eps), with population standard
deviations (ddof 0, as upstream's ``np.std``). The std is global: pass the
std of every process's rewards when training data-parallel.

A sample is trained on only if it was scored and its group

* has at least ``min_valid`` scored samples (fewer give no relative signal), and
* is not saturated: group std < ``safeguard_std`` AND group mean > ``safeguard_mean``
  (docs/training.md). Saturated prompts are also reported so the trainer can
  drop them from later sampling.

Upstream's code differs in one detail: with prompt banning on, its loss mask
keeps a group only if the epoch's std exceeds the threshold and the group mean is
below the mean threshold (either condition masks). We follow docs/training.md: both
conditions together define saturation, for masking and for dropping alike.

Failed samples (NaN reward) are left out of every statistic and masked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass
class AdvantageResult:
    advantages: np.ndarray  # (N,) float; 0 where masked
    nft_weight: np.ndarray  # (N,) r in [0, 1]; 0.5 where masked
    mask: np.ndarray  # (N,) bool: train on this sample
    group_mean: np.ndarray  # (G,) NaN for groups without scored samples
    group_std: np.ndarray  # (G,)
    global_std: float
    saturated_groups: list[int] = field(default_factory=list)
    sparse_groups: list[int] = field(default_factory=list)
    failed_samples: int = 0

    @property
    def trained_samples(self) -> int:
        return int(self.mask.sum())


def nft_weight(advantages: np.ndarray, clip_max: float = 5.0) -> np.ndarray:
    """r = clip((clip(A, ±c) / c) / 2 + 0.5, 0, 1): the optimality probability in the NFT loss."""
    a = np.clip(np.asarray(advantages, dtype=np.float64), -clip_max, clip_max)
    return np.clip(a / clip_max / 2.0 + 0.5, 0.0, 1.0)


def population_std(rewards: np.ndarray) -> float:
    """Std (ddof 0) of the finite entries; NaN when there are none."""
    finite = np.asarray(rewards, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return float(finite.std()) if finite.size else math.nan


def compute_advantages(
    rewards: np.ndarray,
    group_ids: np.ndarray,
    *,
    global_std: float | None = None,
    eps: float = 1e-4,
    clip_max: float = 5.0,
    safeguard_std: float = 0.05,
    safeguard_mean: float = 0.9,
    min_valid: int = 2,
) -> AdvantageResult:
    """Advantages, NFT weights and the mask for ``rewards`` (NaN = failed) grouped by ``group_ids``.

    ``group_ids`` must be 0..G-1. ``global_std`` defaults to the std of these rewards.
    """
    r = np.asarray(rewards, dtype=np.float64)
    g = np.asarray(group_ids, dtype=np.int64)
    if r.shape != g.shape or r.ndim != 1:
        raise ValueError(f"rewards and group_ids must be 1-D of one length, got {r.shape} and {g.shape}")
    if g.size and (g.min() < 0):
        raise ValueError("group ids must be non-negative")
    n_groups = int(g.max()) + 1 if g.size else 0
    scored = np.isfinite(r)
    std = population_std(r) if global_std is None else float(global_std)

    advantages = np.zeros_like(r)
    mask = np.zeros(r.shape, dtype=bool)
    means = np.full(n_groups, math.nan)
    stds = np.full(n_groups, math.nan)
    saturated: list[int] = []
    sparse: list[int] = []
    for group in range(n_groups):
        members = g == group
        valid = members & scored
        count = int(valid.sum())
        if count:
            means[group] = r[valid].mean()
            stds[group] = r[valid].std()
        if count < min_valid:
            if members.any():
                sparse.append(group)
            continue
        if stds[group] < safeguard_std and means[group] > safeguard_mean:
            saturated.append(group)
            continue
        if not math.isfinite(std):
            continue
        advantages[valid] = (r[valid] - means[group]) / (std + eps)
        mask[valid] = True
    weights = np.where(mask, nft_weight(advantages, clip_max), 0.5)
    return AdvantageResult(
        advantages=advantages,
        nft_weight=weights,
        mask=mask,
        group_mean=means,
        group_std=stds,
        global_std=std,
        saturated_groups=saturated,
        sparse_groups=sparse,
        failed_samples=int((~scored).sum()),
    )
