"""Splitting a benchmark across processes: one shard of the prompts per process, one generator each.

Launch the same command in several processes, e.g. one per GPU::

    accelerate launch --num_processes 4 -m gcr bench builtin:all-t2i --critic http://host:8000/v1

``accelerate launch`` (like ``torchrun``) sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK`` in each process; gcr reads them (or ``--shard I/N``). No process
group is needed: shards share nothing but the output folder and the critic
server. Process ``RANK`` takes the prompts at positions ``RANK, RANK + N, ...``
of the prompt set (after ``--limit``), so the split is the same on every rerun
and spreads categories evenly. Each process puts its generator on
``cuda:LOCAL_RANK`` unless ``--device`` names a specific device.

Each shard keeps its own results files (``OUT/shards/rank-R-of-N/``); the
process that finishes last builds the combined report, and ``gcr bench merge
OUT`` builds it at any time from whatever has finished.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from gcr.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class ShardInfo:
    """Which share of the prompts this process runs."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    def __post_init__(self) -> None:
        if self.world_size < 1:
            raise ConfigError(f"the number of shards must be at least 1 (got {self.world_size})")
        if not 0 <= self.rank < self.world_size:
            raise ConfigError(f"shard rank {self.rank} is outside 0..{self.world_size - 1}")
        if self.local_rank < 0:
            raise ConfigError(f"LOCAL_RANK must not be negative (got {self.local_rank})")

    @property
    def sharded(self) -> bool:
        return self.world_size > 1

    @property
    def label(self) -> str:
        """The shard's folder name, e.g. ``rank-01-of-04``."""
        width = max(2, len(str(self.world_size)))
        return f"rank-{self.rank:0{width}d}-of-{self.world_size:0{width}d}"

    def select(self, items: Sequence[T]) -> list[T]:
        """This shard's items: positions ``rank, rank + world_size, ...``."""
        return list(items[self.rank :: self.world_size])

    def device(self, requested: str | None) -> str | None:
        """The generator device for this shard: ``cuda:LOCAL_RANK`` when sharded on CUDA."""
        if not self.sharded:
            return requested
        if requested is not None and requested.strip().lower() not in ("auto", "cuda"):
            return requested  # an explicit device (cpu, cuda:3, mps) is the user's choice
        if requested is None or requested.strip().lower() == "auto":
            import torch

            if not torch.cuda.is_available():
                return requested
        return f"cuda:{self.local_rank}"


def shard_from_env(env: Mapping[str, str] | None = None) -> ShardInfo:
    """The shard named by ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` (one unsharded process when unset)."""
    env = os.environ if env is None else env

    def number(name: str, default: int) -> int:
        raw = env.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"environment variable {name}={raw!r} is not a whole number") from None

    world = number("WORLD_SIZE", 1)
    rank = number("RANK", 0)
    return ShardInfo(rank=rank, world_size=world, local_rank=number("LOCAL_RANK", rank))


def parse_shard(text: str) -> ShardInfo:
    """``--shard I/N``: shard ``I`` (0-based) of ``N``."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match:
        raise ConfigError(f"--shard {text!r}: write INDEX/COUNT, e.g. 0/4 for the first of four shards")
    rank, world = int(match.group(1)), int(match.group(2))
    return ShardInfo(rank=rank, world_size=world, local_rank=0)
