"""Rollouts: groups of images per prompt from a flow-matching model, with what training needs.

The denoising loop is the pipeline's own: its scheduler (a private copy, set with
the pipeline's sigmas and shift) steps with the family's velocity call. Each
rollout records the clean latents x0 and the times t of the schedule, on which
DiffusionNFT trains by re-noising x0 with fresh noise (x_t = (1 − t)·x0 + t·ε).
Noise comes from an explicit CPU generator, so a seed fixes a rollout on any device.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from PIL import Image

from gcr.training.rl.families import Conditioning, FlowFamily, TransformerCall


@dataclass
class Rollout:
    """Samples of one epoch (or one evaluation) on this process."""

    latents: torch.Tensor  # (N, ...) clean latents x0
    times: torch.Tensor  # (T,) schedule times in (0, 1], descending
    prompt_index: torch.Tensor  # (N,) index of each sample's prompt in the conditioning
    images: list[Image.Image]

    def __len__(self) -> int:
        return self.latents.shape[0]


def seeded_generator(*key: int) -> torch.Generator:
    """A CPU generator seeded from a tuple of integers (e.g. seed, epoch, process)."""
    import numpy as np

    state = np.random.SeedSequence([abs(int(k)) for k in key]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator(device="cpu").manual_seed(int(state) & 0x7FFF_FFFF_FFFF_FFFF)


@torch.no_grad()
def denoise(
    family: FlowFamily,
    model: TransformerCall,
    cond: Conditioning,
    noise: torch.Tensor,
    num_steps: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the sampler from ``noise``; return the clean latents and the schedule's times."""
    scheduler = family.make_scheduler(num_steps)
    scale = float(scheduler.config.num_train_timesteps)
    x = noise
    for timestep in scheduler.timesteps:
        t = (timestep / scale).expand(x.shape[0])
        v = family.velocity(model, x, t, cond)
        x = scheduler.step(v, timestep, x, return_dict=False)[0]
    times = torch.unique_consecutive(scheduler.timesteps.float().cpu()) / scale
    return x, times


@torch.no_grad()
def sample_groups(
    family: FlowFamily,
    model: TransformerCall,
    cond: Conditioning,
    *,
    group_size: int,
    num_steps: int,
    batch_size: int,
    generator: torch.Generator,
    decode_batch_size: int | None = None,
    on_images: Callable[[list[Image.Image], torch.Tensor], None] | None = None,
) -> Rollout:
    """``group_size`` samples for every prompt of ``cond`` (sample i belongs to prompt i // group_size).

    With ``on_images``, each batch is decoded as soon as it is sampled and handed over
    as ``on_images(images, prompt_index_of_those_images)``, so a caller can start scoring
    it while the next batch samples; the noise drawn, and so every sample, is the same.
    """
    prompt_index = torch.arange(len(cond)).repeat_interleave(group_size)
    latents: list[torch.Tensor] = []
    images: list[Image.Image] = []
    times: torch.Tensor | None = None
    for chunk in prompt_index.split(batch_size):
        noise = family.initial_noise(len(chunk), generator)
        x0, times = denoise(family, model, cond.take(chunk), noise, num_steps)
        latents.append(x0)
        if on_images is not None:
            decoded = _decode(family, x0, decode_batch_size or batch_size)
            images.extend(decoded)
            on_images(decoded, chunk)
    assert times is not None  # at least one prompt, so at least one chunk
    x0_all = torch.cat(latents)
    if on_images is None:
        images = _decode(family, x0_all, decode_batch_size or batch_size)
    return Rollout(latents=x0_all, times=times, prompt_index=prompt_index, images=images)


def _decode(family: FlowFamily, x0: torch.Tensor, batch_size: int) -> list[Image.Image]:
    images: list[Image.Image] = []
    for part in x0.split(batch_size):
        images.extend(family.decode(part))
    return images
