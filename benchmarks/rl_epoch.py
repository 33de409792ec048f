"""Where a DiffusionNFT epoch spends its time: sampling, scoring, training.

Runs a few epochs of ``gcr.training.rl`` on a pipeline (the tiny random FLUX
built offline by default, or ``--model`` for any local flow-matching pipeline)
with a simulated critic that answers every request after ``--critic-latency``
seconds. Reported per epoch (first epoch dropped as warm-up):

* sampling time and images per second (group rollouts with the old adapter);
* scoring time against the ideal of one latency (all requests concurrent) and
  the serial bound of one latency per image, i.e. how much concurrency the
  critic reward gets;
* training time and (sample, timestep) pairs per second, each pair being three
  transformer passes (old, reference, trained) and one backward pass.

The simulated critic serves ``--critic-slots`` requests at a time (a server's
batch capacity), so scoring N images takes about ``ceil(N / slots) * latency``,
like a real server that is the bottleneck. Every figure is printed for both
``overlap_scoring`` settings in the same run: ``off`` scores the whole epoch
after sampling (the old schedule), ``on`` scores each rollout batch while the
next one samples; the scoring line then shows only the wait after sampling.

Run: ``python benchmarks/rl_epoch.py [--model DIR] [--resolution 32] [--steps 4]
[--group-size 8] [--prompts 4] [--epochs 3] [--critic-latency 0.2]
[--critic-slots 8] [--max-concurrency 64]``. No assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import platform
import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from gcr.critic.schema import Critique, Dimension, DimensionJudgement
from gcr.task import Task
from gcr.training.rl import CombinedReward, CriticReward, PromptRecord, RLConfig, WeightedReward
from gcr.training.rl.trainer import DiffusionNFTTrainer

PROMPTS = [
    "a red cat sitting on a wooden table",
    "a watercolor painting of a lighthouse at sunset",
    "an astronaut riding a green horse on the moon",
    "two apples and one banana in a bowl",
    "a poster with the words hello world",
    "a blue cup next to a red cube",
    "a calm sea under a purple sky",
    "a pencil sketch of a small boat",
]


class LatencyCritic:
    """Answers every critique after a fixed delay, like a served critic under no load."""

    def __init__(self, latency: float, slots: int) -> None:
        self.latency = latency
        self.slots = slots
        self._capacity: asyncio.Semaphore | None = None

    async def acritique(
        self, prompt: str, image: Image.Image, *, sources: Any = (), task: Any = None
    ) -> Critique:
        if self._capacity is None:
            self._capacity = asyncio.Semaphore(self.slots)
        async with self._capacity:
            await asyncio.sleep(self.latency)
        level = float(np.asarray(image.convert("L")).mean() / 255.0)
        return Critique(
            task=Task.T2I,
            judgements=[
                DimensionJudgement(dimension=Dimension.TEXT_FAITHFULNESS, score=1.0 + 3.0 * level),
                DimensionJudgement(dimension=Dimension.PHYSICAL_QUALITY, score=3.0),
                DimensionJudgement(dimension=Dimension.TEXT_RENDERING, score=None),
            ],
        )

    async def aclose(self) -> None:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", type=Path, help="a local flow-matching pipeline folder (default: tiny FLUX)"
    )
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--prompts", type=int, default=4, help="prompts (groups) per epoch")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-batch", type=int, default=8)
    parser.add_argument("--critic-latency", type=float, default=0.2)
    parser.add_argument("--critic-slots", type=int, default=8, help="requests the critic serves at once")
    parser.add_argument("--max-concurrency", type=int, default=64)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    print(f"device: {device_name()}, torch threads {torch.get_num_threads()}")
    n = args.prompts * args.group_size
    pairs = n * args.steps  # timestep_fraction 1.0
    print(f"{args.resolution} px, {args.steps} steps, {args.prompts} groups of {args.group_size}, "
          f"critic {args.critic_latency:g} s latency x {args.critic_slots} slots")  # fmt: skip
    print(f"{'overlap':>7} {'epoch s':>8} {'sample s':>8} {'score s':>8} {'train s':>8} {'images/s':>8} "
          f"{'pairs/s':>8}")  # fmt: skip
    rows = {}
    for overlap in (False, True):
        history = run(args, overlap)
        kept = history[1:] or history
        phases = ("epoch", "sample", "reward", "train")
        med = {k: statistics.median(h[f"time/{k}_s"] for h in kept) for k in phases}
        rows[overlap] = med
        print(f"{'on' if overlap else 'off':>7} {med['epoch']:>8.3f} {med['sample']:>8.3f} "
              f"{med['reward']:>8.3f} {med['train']:>8.3f} {n / med['epoch']:>8.1f} "
              f"{pairs / med['train']:>8.1f}")  # fmt: skip
    serial = -(-n // args.critic_slots) * args.critic_latency
    print(f"scoring alone at the critic's capacity: {serial:.3f} s per epoch; overlap saves "
          f"{rows[False]['epoch'] - rows[True]['epoch']:.3f} s per epoch "
          f"({rows[False]['epoch'] / rows[True]['epoch']:.2f}x)")  # fmt: skip
    if torch.cuda.is_available():
        print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")


def device_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return f"CPU ({platform.processor() or 'x86'})"


def run(args: argparse.Namespace, overlap: bool) -> list[dict[str, float]]:
    """The per-epoch metrics of one training run with ``overlap_scoring=overlap``."""
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None:
            from gcr.dev.tiny_pipelines import build_tiny_pipeline

            model = build_tiny_pipeline("flux", Path(tmp) / "tiny-flux")
        cfg = RLConfig(
            pretrained_model=str(model),
            train_prompts="in-memory",
            output_dir=str(Path(tmp) / "out"),
            resolution=args.resolution,
            num_inference_steps=args.steps,
            group_size=args.group_size,
            prompts_per_epoch=args.prompts,
            sample_batch_size=max(args.group_size, 8),
            train_batch_size=args.train_batch,
            num_epochs=args.epochs,
            max_sequence_length=64,
            lora_rank=8,
            lora_alpha=16.0,
            eval_every=0,
            save_every=0,
            log_with=[],
            overlap_scoring=overlap,
        )
        critic = CriticReward(
            LatencyCritic(args.critic_latency, args.critic_slots), max_concurrency=args.max_concurrency
        )
        reward = CombinedReward([WeightedReward("critic", 1.0, critic)])
        records = [
            PromptRecord(id=str(i), prompt=PROMPTS[i % len(PROMPTS)]) for i in range(max(args.prompts, 2))
        ]
        trainer = DiffusionNFTTrainer(cfg, reward=reward, train_prompts=records)
        try:
            return trainer.train().history
        finally:
            reward.close()


if __name__ == "__main__":
    main()
