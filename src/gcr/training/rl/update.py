"""The gradient steps of DiffusionNFT on one epoch's rollout.

For every kept sample and each of its training times t (a random subset of the
rollout schedule, ``timestep_fraction`` of it): fresh noise ε, x_t = (1 − t)·x0 +
t·ε, velocities of the old adapter and of the reference (no gradient) and of the
trained adapter, then the NFT loss (:mod:`gcr.training.rl.nft_loss`). Losses are
averaged over the kept samples and times of one optimizer step; gradients are
accumulated without DDP synchronisation until the step's last backward pass.

Processes may keep different numbers of samples (failures, masking). Every
process therefore runs as many rows as the busiest one, filling up with
zero-weight copies of its own samples, so all take the same backward passes.
"""

from __future__ import annotations

import contextlib
import logging
import math
from typing import Any

import numpy as np
import torch

from gcr.training.rl.adapters import use_old_adapter, use_reference
from gcr.training.rl.advantages import AdvantageResult
from gcr.training.rl.config import RLConfig
from gcr.training.rl.families import Conditioning, FlowFamily
from gcr.training.rl.nft_loss import nft_loss
from gcr.training.rl.runtime import gather_all
from gcr.training.rl.sampling import Rollout, seeded_generator

logger = logging.getLogger(__name__)


class NFTUpdater:
    """Runs the optimizer steps of one epoch; holds no run state of its own."""

    def __init__(
        self,
        config: RLConfig,
        accelerator: Any,
        family: FlowFamily,
        transformer: torch.nn.Module,
        model: Any,
        optimizer: Any,
        params: list[torch.nn.Parameter],
    ) -> None:
        self.config = config
        self.accelerator = accelerator
        self.family = family
        self.transformer = transformer  # the bare module: old and reference passes
        self.model = model  # the prepared (possibly DDP-wrapped) module: the trained pass
        self.optimizer = optimizer
        self.params = params

    def train_on(
        self, rollout: Rollout, cond: Conditioning, adv: AdvantageResult, epoch: int
    ) -> tuple[dict[str, float], int]:
        """Train on the samples ``adv.mask`` keeps; return loss statistics and optimizer steps taken."""
        cfg, acc = self.config, self.accelerator
        valid = np.flatnonzero(adv.mask)
        n_rows = max(gather_all(acc, len(valid)))
        if n_rows == 0:
            logger.warning("epoch %d: no sample can be trained on (all failed, masked or saturated)", epoch)
            return {"loss": math.nan, "loss/policy": math.nan, "loss/kl": math.nan, "grad_norm": math.nan}, 0
        n_times = len(rollout.times)
        per_sample_t = max(1, int(n_times * cfg.timestep_fraction))
        totals = {"loss": 0.0, "loss/policy": 0.0, "loss/kl": 0.0}
        weight_sum = 0.0
        grad_norms: list[float] = []
        steps = 0
        self.model.train()
        for inner in range(cfg.inner_epochs):
            gen = seeded_generator(cfg.seed, epoch, acc.process_index, 1 + inner)
            order = valid[torch.randperm(len(valid), generator=gen).numpy()] if len(valid) else valid
            rows = [int(i) for i in order]
            pad = [int(order[k % len(order)]) if len(order) else 0 for k in range(n_rows - len(rows))]
            sample_ids = torch.tensor(rows + pad, dtype=torch.long)
            row_weight = torch.tensor([1.0] * len(rows) + [0.0] * len(pad))
            time_ids = torch.stack(
                [torch.randperm(n_times, generator=gen)[:per_sample_t] for _ in range(n_rows)]
            )
            for step_rows in np.array_split(np.arange(n_rows), cfg.gradient_steps_per_epoch):
                if len(step_rows) == 0:
                    continue
                norm = max(float(row_weight[step_rows].sum()), 1.0) * per_sample_t
                micro = [
                    (step_rows[i : i + cfg.train_batch_size], j)
                    for i in range(0, len(step_rows), cfg.train_batch_size)
                    for j in range(per_sample_t)
                ]
                for m, (chunk, j) in enumerate(micro):
                    chunk_t = torch.as_tensor(chunk)
                    sync = contextlib.nullcontext() if m == len(micro) - 1 else acc.no_sync(self.model)
                    with sync:
                        stats = self._micro_step(
                            rollout,
                            cond,
                            adv,
                            sample_ids[chunk_t],
                            rollout.times[time_ids[chunk_t, j]],
                            row_weight[chunk_t],
                            norm,
                            gen,
                        )
                    for key in totals:
                        totals[key] += stats[key]
                    weight_sum += stats["weight"]
                grad_norm = acc.clip_grad_norm_(self.params, cfg.max_grad_norm)
                grad_norms.append(float(grad_norm))
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
                steps += 1
        self.model.eval()
        out = {k: v / max(weight_sum, 1.0) for k, v in totals.items()}
        out["grad_norm"] = float(np.mean(grad_norms))
        out["advantage/abs_mean"] = float(np.abs(adv.advantages[adv.mask]).mean()) if adv.mask.any() else 0.0
        return out, steps

    def _micro_step(
        self,
        rollout: Rollout,
        cond: Conditioning,
        adv: AdvantageResult,
        ids: torch.Tensor,
        t: torch.Tensor,
        row_weight: torch.Tensor,
        norm: float,
        gen: torch.Generator,
    ) -> dict[str, float]:
        cfg, acc = self.config, self.accelerator
        device = acc.device
        x0 = rollout.latents[ids.to(rollout.latents.device)].to(device).float()
        t = t.to(device=device, dtype=torch.float32)
        noise = torch.randn(x0.shape, generator=gen, dtype=torch.float32).to(device)
        t_b = t.view(-1, *([1] * (x0.ndim - 1)))
        x_t = (1.0 - t_b) * x0 + t_b * noise
        model_in = x_t.to(self.family.dtype)
        c = cond.take(rollout.prompt_index[ids])
        r = torch.as_tensor(adv.nft_weight[ids.numpy()], dtype=torch.float32, device=device)
        with acc.autocast():
            with torch.no_grad():
                with use_old_adapter(self.transformer):
                    v_old = self.family.velocity(self.transformer, model_in, t, c)
                with use_reference(self.transformer):
                    v_ref = self.family.velocity(self.transformer, model_in, t, c)
            v_theta = self.family.velocity(self.model, model_in, t, c)
        terms = nft_loss(
            v_theta,
            v_old,
            v_ref,
            x_t,
            x0,
            t,
            r,
            beta=cfg.beta,
            kl_weight=cfg.kl_weight,
            policy_scale=cfg.policy_loss_scale,
        )
        w = row_weight.to(device)
        acc.backward((terms.loss * w).sum() / norm)
        return {
            "loss": float((terms.loss.detach() * w).sum()),
            "loss/policy": float((terms.policy * w).sum()),
            "loss/kl": float((terms.kl * w).sum()),
            "weight": float(w.sum()),
        }
