"""The generator interface: a request in, images plus the exact parameters out."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from PIL import Image

from gcr.errors import InputError
from gcr.task import Task

#: Called as ``progress(step, total)`` after each denoising step; ``step`` counts from 1.
ProgressCallback = Callable[[int, int], None]


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

    def validate(
        self,
        *,
        task: Task | None = None,
        size_multiple: int = 1,
        max_source_images: int | None = None,
    ) -> None:
        """Refuse unusable input up front with an :class:`InputError` that says what to fix.

        ``task`` checks the source images against what the model does (an editing model
        needs one, a text-to-image model takes none); ``size_multiple`` is the side
        length the model's latent grid needs; ``max_source_images`` caps multi-image
        editing. Checks that need no model (prompt, counts, signs) always run.
        """
        if not isinstance(self.prompt, str) or not self.prompt.strip():
            raise InputError("the prompt is empty: say what the image should show (or what to change)")
        if self.negative_prompt is not None and not isinstance(self.negative_prompt, str):
            raise InputError(f"negative_prompt must be text, got {type(self.negative_prompt).__name__}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise InputError(f"seed must be a non-negative integer, got {self.seed!r}")
        if isinstance(self.num_images, bool) or not isinstance(self.num_images, int) or self.num_images < 1:
            raise InputError(f"num_images must be at least 1, got {self.num_images!r}")
        if self.steps is not None and (not isinstance(self.steps, int) or self.steps < 1):
            raise InputError(f"steps must be at least 1, got {self.steps!r}")
        guidance = self.guidance
        if guidance is not None and (
            not isinstance(guidance, int | float) or not math.isfinite(guidance) or guidance < 0
        ):
            raise InputError(f"guidance must be a number >= 0, got {self.guidance!r}")
        self._validate_size(size_multiple)
        self._validate_sources(task, max_source_images)
        if not isinstance(self.extra, dict) or not all(isinstance(k, str) for k in self.extra):
            raise InputError("extra must be a dict of keyword-argument names to values")

    def _validate_size(self, multiple: int) -> None:
        if (self.width is None) != (self.height is None):
            raise InputError(
                f"give both width and height, or neither (got width={self.width}, height={self.height})"
            )
        for name in ("width", "height"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise InputError(f"{name} must be a positive number of pixels, got {value!r}")
            if multiple > 1 and value % multiple:
                lower = max(multiple, value // multiple * multiple)
                upper = (value // multiple + 1) * multiple
                raise InputError(
                    f"{name} {value} is not a multiple of {multiple}, which this model needs: "
                    f"use {lower} or {upper}"
                )

    def _validate_sources(self, task: Task | None, max_source_images: int | None) -> None:
        for i, image in enumerate(self.source_images):
            if not isinstance(image, Image.Image):
                raise InputError(
                    f"source_images[{i}] is a {type(image).__name__}, not a PIL image: "
                    "load files with gcr.images.load_image"
                )
        if task is Task.EDIT and not self.source_images:
            raise InputError(
                "this model edits an image and needs a source image: pass one (CLI: --image PATH)"
            )
        if task is Task.T2I and self.source_images:
            raise InputError(
                "this model generates from text only and takes no source image: drop the image, "
                "or pick an editing model (for example FLUX.1 Kontext or Qwen-Image-Edit)"
            )
        if max_source_images is not None and len(self.source_images) > max_source_images:
            raise InputError(
                f"this model takes at most {max_source_images} source image(s), got {len(self.source_images)}"
            )


@dataclass
class GenerationResult:
    """Images and everything needed to reproduce them."""

    images: list[Image.Image]
    seeds: list[int]
    model_id: str
    params: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)

    def metadata(self, index: int | None = None) -> dict[str, Any]:
        """A JSON-ready record of how the images were made (one image's when ``index`` is given)."""
        record: dict[str, Any] = {"model_id": self.model_id, **self.params, "timings": dict(self.timings)}
        if index is None:
            record["seeds"] = list(self.seeds)
        else:
            record["seed"] = self.seeds[index]
            record["index"] = index
        return record


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
