"""Diffusion RL with per-dimension critic rewards (DiffusionNFT), docs/training.md.

::

    from gcr.training.rl import DiffusionNFTTrainer, RLConfig

    config = RLConfig.from_yaml("examples/rl_flux_kontext.yaml")
    result = DiffusionNFTTrainer(config).train()
    print(result.lora_dir)  # load with pipeline.load_lora_weights(...) or gcr generate --lora

Names are imported lazily so that reading a config does not import torch or diffusers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gcr.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from gcr.training.rl.advantages import AdvantageResult, compute_advantages, nft_weight
    from gcr.training.rl.config import RewardConfig, RLConfig
    from gcr.training.rl.data import PromptRecord, load_prompts
    from gcr.training.rl.nft_loss import NFTLoss, nft_loss
    from gcr.training.rl.rewards import (
        CombinedReward,
        CriticReward,
        RewardBatch,
        RewardResult,
        WeightedReward,
        brightness,
        build_rewards,
    )
    from gcr.training.rl.trainer import DiffusionNFTTrainer, TrainResult

_EXPORTS: dict[str, str] = {
    "AdvantageResult": "gcr.training.rl.advantages",
    "compute_advantages": "gcr.training.rl.advantages",
    "nft_weight": "gcr.training.rl.advantages",
    "RLConfig": "gcr.training.rl.config",
    "RewardConfig": "gcr.training.rl.config",
    "PromptRecord": "gcr.training.rl.data",
    "load_prompts": "gcr.training.rl.data",
    "NFTLoss": "gcr.training.rl.nft_loss",
    "nft_loss": "gcr.training.rl.nft_loss",
    "CombinedReward": "gcr.training.rl.rewards",
    "CriticReward": "gcr.training.rl.rewards",
    "RewardBatch": "gcr.training.rl.rewards",
    "RewardResult": "gcr.training.rl.rewards",
    "WeightedReward": "gcr.training.rl.rewards",
    "brightness": "gcr.training.rl.rewards",
    "build_rewards": "gcr.training.rl.rewards",
    "DiffusionNFTTrainer": "gcr.training.rl.trainer",
    "TrainResult": "gcr.training.rl.trainer",
}

__all__ = [
    "AdvantageResult",
    "CombinedReward",
    "CriticReward",
    "DiffusionNFTTrainer",
    "NFTLoss",
    "PromptRecord",
    "RLConfig",
    "RewardBatch",
    "RewardConfig",
    "RewardResult",
    "TrainResult",
    "WeightedReward",
    "brightness",
    "build_rewards",
    "compute_advantages",
    "load_prompts",
    "nft_loss",
    "nft_weight",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals(), __all__)
