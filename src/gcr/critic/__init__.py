"""The critic: structured critiques of generated images from RationalRewards-style models.

Main entry points::

    from gcr.critic import load_critic

    critic = load_critic("http://127.0.0.1:8000/v1")  # or a folder / Hub id, or None
    critique = critic.critique("a red cube on a blue sphere", image)

Names are imported lazily, so ``import gcr.critic.schema`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gcr.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from gcr.critic.backends.base import ChatBackend, ChatRequest, Completion, SamplingParams
    from gcr.critic.backends.openai_http import OpenAICompatibleBackend
    from gcr.critic.critic import Critic
    from gcr.critic.defaults import RATIONALREWARDS_EDIT, RATIONALREWARDS_T2I, default_critic_model
    from gcr.critic.loading import load_backend, load_critic
    from gcr.critic.parser import parse_critique, parse_pairwise
    from gcr.critic.schema import Critique, Dimension, DimensionJudgement, PairwiseCritique, PairwiseJudgement
    from gcr.critic.scoring import RewardSpec, normalized_reward
    from gcr.task import Task

_EXPORTS: dict[str, str] = {
    "ChatBackend": "gcr.critic.backends.base",
    "ChatRequest": "gcr.critic.backends.base",
    "Completion": "gcr.critic.backends.base",
    "SamplingParams": "gcr.critic.backends.base",
    "OpenAICompatibleBackend": "gcr.critic.backends.openai_http",
    "Critic": "gcr.critic.critic",
    "RATIONALREWARDS_EDIT": "gcr.critic.defaults",
    "RATIONALREWARDS_T2I": "gcr.critic.defaults",
    "default_critic_model": "gcr.critic.defaults",
    "load_backend": "gcr.critic.loading",
    "load_critic": "gcr.critic.loading",
    "parse_critique": "gcr.critic.parser",
    "parse_pairwise": "gcr.critic.parser",
    "Critique": "gcr.critic.schema",
    "Dimension": "gcr.critic.schema",
    "DimensionJudgement": "gcr.critic.schema",
    "PairwiseCritique": "gcr.critic.schema",
    "PairwiseJudgement": "gcr.critic.schema",
    "Task": "gcr.task",
    "RewardSpec": "gcr.critic.scoring",
    "normalized_reward": "gcr.critic.scoring",
}

__all__ = [
    "RATIONALREWARDS_EDIT",
    "RATIONALREWARDS_T2I",
    "ChatBackend",
    "ChatRequest",
    "Completion",
    "Critic",
    "Critique",
    "Dimension",
    "DimensionJudgement",
    "OpenAICompatibleBackend",
    "PairwiseCritique",
    "PairwiseJudgement",
    "RewardSpec",
    "SamplingParams",
    "Task",
    "default_critic_model",
    "load_backend",
    "load_critic",
    "normalized_reward",
    "parse_critique",
    "parse_pairwise",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals(), __all__)
