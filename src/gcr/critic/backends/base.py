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

from gcr.image_input import ImageInput


@dataclass(frozen=True)
class ChatRequest:
    """A system message plus one user message of interleaved text and images.

    Images are PIL images or :class:`~gcr.image_input.ImageInput` (pixels, encoded
    bytes and/or a file); each backend takes from them the form it needs.
    """

    system: str
    parts: Sequence[str | Image.Image | ImageInput]

    @property
    def images(self) -> list[Image.Image | ImageInput]:
        return [p for p in self.parts if isinstance(p, Image.Image | ImageInput)]


@dataclass(frozen=True)
class SamplingParams:
    """How the critic samples. Defaults follow the released model's reward setting."""

    temperature: float = 0.1
    max_tokens: int = 2048
    top_p: float | None = None
    extra: dict[str, object] = field(default_factory=dict)


class Completion(str):
    """Answer text that also says why generation stopped.

    It *is* a ``str`` (so a backend may return it wherever text is expected and
    callers that only want text need not care); ``truncated`` is true when the
    model hit the token limit (OpenAI ``finish_reason == "length"``), which the
    critic reports on the critique instead of hiding.
    """

    finish_reason: str | None

    def __new__(cls, text: str, finish_reason: str | None = None) -> Completion:
        obj = super().__new__(cls, text)
        obj.finish_reason = finish_reason
        return obj

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"


def is_truncated(answer: str) -> bool:
    """Whether a backend's answer was cut off at the token limit (plain ``str`` answers never are)."""
    return bool(getattr(answer, "truncated", False))


@runtime_checkable
class ChatBackend(Protocol):
    """Anything that answers a :class:`ChatRequest` with text."""

    @property
    def model_id(self) -> str:
        """A stable name of the model behind the backend (used in cache keys and reports)."""
        ...

    async def complete(self, request: ChatRequest, sampling: SamplingParams) -> str:
        """Return the model's answer text; raise a :class:`gcr.errors.CriticError` on failure.

        A backend that knows when the answer was cut off at ``max_tokens`` returns a
        :class:`Completion` (a ``str`` subclass) with ``finish_reason="length"``.
        """
        ...

    async def aclose(self) -> None:
        """Release connections or models."""
        ...
