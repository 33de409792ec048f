"""Held-out evaluation: images of the current policy for fixed noise, ready to be scored.

Each held-out prompt gets its own noise generator keyed by the run seed and the
prompt's index, so evaluation images depend on the policy alone: not on the
epoch, the number of processes or which process draws the prompt.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

import torch
from PIL import Image

from gcr.training.rl.data import PromptRecord
from gcr.training.rl.families import FlowFamily, TransformerCall
from gcr.training.rl.sampling import denoise, seeded_generator

#: Generator key that separates evaluation noise from training noise.
EVAL_STREAM = 7919


@torch.no_grad()
def sample_eval_images(
    family: FlowFamily,
    transformer: TransformerCall,
    records: Sequence[PromptRecord],
    indices: Sequence[int],
    *,
    seed: int,
    num_steps: int,
    per_prompt: int,
    batch_size: int,
    autocast: Callable[[], AbstractContextManager[Any]],
) -> tuple[list[Image.Image], list[str], list[list[Image.Image]]]:
    """Images, prompts and sources (one entry per image) for ``records[i]`` for each i in ``indices``."""
    images: list[Image.Image] = []
    prompts: list[str] = []
    sources: list[list[Image.Image]] = []
    chunk = max(1, batch_size // per_prompt)
    for start in range(0, len(indices), chunk):
        chosen = list(indices[start : start + chunk])
        batch = [records[i] for i in chosen]
        srcs = [r.load_sources(family.source_size) for r in batch] if family.is_edit else [[] for _ in batch]
        with autocast():
            cond = family.encode([r.prompt for r in batch], srcs if family.is_edit else None)
            noise = torch.cat(
                [family.initial_noise(per_prompt, seeded_generator(seed, EVAL_STREAM, i)) for i in chosen]
            )
            rows = torch.arange(len(batch)).repeat_interleave(per_prompt)
            x0, _ = denoise(family, transformer, cond.take(rows), noise, num_steps)
            images.extend(family.decode(x0))
        for record, src in zip(batch, srcs, strict=True):
            prompts.extend([record.prompt] * per_prompt)
            sources.extend([src] * per_prompt)
    return images, prompts, sources
