"""What the agent needs from a critic.

:class:`gcr.critic.critic.Critic` satisfies this protocol; so can a host
application's own critic, or a test double.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from PIL import Image

from gcr.critic.schema import Critique
from gcr.task import Task


@runtime_checkable
class CriticProtocol(Protocol):
    """An object that writes a pointwise critique of one image."""

    @property
    def model_id(self) -> str:
        """The critic model's name, recorded in reports."""
        ...

    def cache_identity(self, mode: str, task: Task | str) -> str:
        """A digest of everything besides the inputs that decides a critique (model, template, sampling)."""
        ...

    async def acritique(
        self,
        prompt: str,
        image: Image.Image,
        *,
        sources: Sequence[Image.Image] = (),
        task: Task | str | None = None,
    ) -> Critique:
        """Judge ``image`` against the user's ``prompt``; raise a ``CriticError`` on failure."""
        ...
