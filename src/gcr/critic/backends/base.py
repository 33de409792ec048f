"""The interface between the critic and whatever model writes its text.

A backend turns one multimodal chat request into the model's answer text. It
knows nothing about critiques: prompt rendering and parsing live in
:mod:`gcr.critic.critic`, so every backend yields identical critiques for
identical model text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from PIL import Image


@dataclass(frozen=True)
class ChatRequest:
    """A system message plus one user message of interleaved text and images."""

    system: str
    parts: Sequence[str | Image.Image]

    @property
    def images(self) -> list[Image.Image]:
        return [p for p in self.parts if isinstance(p, Image.Image)]


@dataclass(frozen=True)
class SamplingParams:
    """How the critic samples. Defaults follow the released model's reward setting."""

    temperature: float = 0.1
    max_tokens: int = 2048
    top_p: float | None = None
    extra: dict[str, object] = field(default_factory=dict)


@runtime_checkable
class ChatBackend(Protocol):
    """Anything that answers a :class:`ChatRequest` with text."""

    @property
    def model_id(self) -> str:
        """A stable name of the model behind the backend (used in cache keys and reports)."""
        ...

    async def complete(self, request: ChatRequest, sampling: SamplingParams) -> str:
        """Return the model's answer text; raise a :class:`gcr.errors.CriticError` on failure."""
        ...

    async def aclose(self) -> None:
        """Release connections or models."""
        ...
