"""The generator interface: a request in, images plus the exact parameters out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from PIL import Image

from gcr.critic.schema import Task


@dataclass
class GenerationRequest:
    """What to generate. ``None`` fields take the model family's recommended default."""

    prompt: str
    negative_prompt: str | None = None
    seed: int = 0
    width: int | None = None
    height: int | None = None
    steps: int | None = None
    guidance: float | None = None
    num_images: int = 1
    source_images: list[Image.Image] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def seeds(self) -> list[int]:
        """One seed per image: ``seed, seed + 1, ...`` so each image is reproducible alone."""
        return [self.seed + i for i in range(self.num_images)]


@dataclass
class GenerationResult:
    """Images and everything needed to reproduce them."""

    images: list[Image.Image]
    seeds: list[int]
    model_id: str
    params: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)


@runtime_checkable
class Generator(Protocol):
    """Anything that turns a :class:`GenerationRequest` into images."""

    @property
    def model_id(self) -> str:
        """Stable identity of the model (and adapters) for cache keys and reports."""
        ...

    @property
    def task(self) -> Task:
        """``Task.T2I`` for text-to-image models, ``Task.EDIT`` for editing models."""
        ...

    def generate(self, request: GenerationRequest) -> GenerationResult:
        """Generate ``request.num_images`` images; raise a GeneratorError on failure."""
        ...
