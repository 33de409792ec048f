"""Hosted image models behind the :class:`Generator` interface, through an OpenAI-compatible images API.

Text-to-image goes through ``images.generate`` and editing through ``images.edit``
of the official ``openai`` client (its own retries and timeouts), against OpenAI
or any server that speaks the same protocol (``base_url``). The key is read
from an environment variable, never passed on the command line.

The images API has no seed, step or guidance settings. Seeds are recorded but
only sent when ``seed_field`` names a body field the server understands (one
call per image then, so each image keeps its own seed); asking for steps or
guidance is refused rather than silently ignored.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import os
import time
import urllib.request
from typing import Any

from PIL import Image, UnidentifiedImageError

from gcr.errors import ConfigError, GeneratorError, InputError
from gcr.generators.base import GenerationRequest, GenerationResult, ProgressCallback
from gcr.images import ensure_rgb, image_digest, png_bytes
from gcr.task import Task

logger = logging.getLogger(__name__)

_DOWNLOAD_TIMEOUT_S = 60.0


class OpenAIImagesGenerator:
    """Generate (``task="t2i"``) or edit (``task="edit"``) images with a hosted model.

    ``model`` is the server's model name (``gpt-image-1``, ``dall-e-3``, or what a
    compatible server serves). ``api_key_env`` names the environment variable with
    the key; set it to any value for servers that take none. ``response_format``
    is sent as given (``"b64_json"`` by default; ``None`` leaves it out, as the
    gpt-image models require). ``max_source_images`` caps multi-image edits.
    """

    def __init__(
        self,
        model: str,
        *,
        task: Task | str = Task.T2I,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        response_format: str | None = "b64_json",
        seed_field: str | None = None,
        max_source_images: int = 16,
        timeout: float = 300.0,
        max_retries: int = 2,
    ) -> None:
        import openai

        if not model.strip():
            raise InputError("no model given: pass the name the images server knows the model by")
        self._model = model.strip()
        self._task = Task.parse(task)
        self.base_url = base_url
        self.response_format = response_format
        self.seed_field = seed_field
        self.max_source_images = max_source_images
        key = os.environ.get(api_key_env)
        if not key:
            raise ConfigError(
                f"the images API key is read from ${api_key_env}, which is not set: export it "
                "(any value for a server that needs no key), or pick another variable with api_key_env"
            )
        self._client = openai.OpenAI(api_key=key, base_url=base_url, timeout=timeout, max_retries=max_retries)

    @property
    def model_id(self) -> str:
        return self._model if self.base_url is None else f"{self._model}@{self.base_url}"

    @property
    def task(self) -> Task:
        return self._task

    def generate(
        self, request: GenerationRequest, *, progress: ProgressCallback | None = None
    ) -> GenerationResult:
        """Make ``request.num_images`` images; ``progress(done, total)`` is called per returned batch."""
        started = time.perf_counter()
        request.validate(task=self._task, max_source_images=self.max_source_images)
        for name in ("steps", "guidance", "negative_prompt"):
            if getattr(request, name) is not None:
                raise InputError(f"the images API has no {name.replace('_', ' ')} setting: drop it")
        calls = (
            [(1, {self.seed_field: seed}) for seed in request.seeds()]
            if self.seed_field
            else [(request.num_images, {})]
        )
        images: list[Image.Image] = []
        for n, seed_body in calls:
            images.extend(self._call(request, n, seed_body))
            if progress is not None:
                progress(len(images), request.num_images)
        if len(images) != request.num_images:
            raise GeneratorError(
                f"{self.model_id} returned {len(images)} image(s) instead of {request.num_images}"
            )
        params = {
            "prompt": request.prompt,
            "width": images[0].width,
            "height": images[0].height,
            "requested_size": _size(request),
            "num_images": len(images),
            "task": self._task.value,
            "endpoint": "images.edit" if self._task is Task.EDIT else "images.generate",
            "base_url": self.base_url,
            "seed_sent": self.seed_field is not None,
            "source_images": [
                {"width": s.width, "height": s.height, "digest": image_digest(s)}
                for s in request.source_images
            ],
            "extra": {
                k: v if isinstance(v, str | int | float | bool) else repr(v) for k, v in request.extra.items()
            },
        }
        return GenerationResult(
            images=images,
            seeds=request.seeds(),
            model_id=self.model_id,
            params=params,
            timings={
                "load_s": 0.0,
                "generate_s": time.perf_counter() - started,
                "total_s": time.perf_counter() - started,
            },
        )

    def _call(self, request: GenerationRequest, n: int, seed_body: dict[str, Any]) -> list[Image.Image]:
        import openai

        kwargs: dict[str, Any] = {"model": self._model, "prompt": request.prompt, "n": n}
        size = _size(request)
        if size is not None:
            kwargs["size"] = size
        if self.response_format is not None:
            kwargs["response_format"] = self.response_format
        body = {**request.extra, **seed_body}
        if body:
            kwargs["extra_body"] = body
        try:
            if self._task is Task.EDIT:
                files = [
                    (f"source{i}.png", png_bytes(img), "image/png")
                    for i, img in enumerate(request.source_images)
                ]
                response = self._client.images.edit(image=files[0] if len(files) == 1 else files, **kwargs)
            else:
                response = self._client.images.generate(**kwargs)
        except openai.APIStatusError as exc:
            raise GeneratorError(
                f"{self.model_id} refused the request (HTTP {exc.status_code}): {exc.message}"
            ) from exc
        except openai.APIConnectionError as exc:
            where = self.base_url or "the OpenAI API"
            raise GeneratorError(f"cannot reach {where}: {exc}") from exc
        return [self._decode(item) for item in (response.data or [])]

    def _decode(self, item: Any) -> Image.Image:
        if getattr(item, "b64_json", None):
            try:
                raw = base64.b64decode(item.b64_json, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise GeneratorError(f"{self.model_id} sent an image that is not valid base64") from exc
        elif getattr(item, "url", None):
            with urllib.request.urlopen(item.url, timeout=_DOWNLOAD_TIMEOUT_S) as answer:
                raw = answer.read()
        else:
            raise GeneratorError(f"{self.model_id} sent an image entry with neither b64_json nor url")
        try:
            with Image.open(io.BytesIO(raw)) as img:
                img.load()
                return ensure_rgb(img)
        except (UnidentifiedImageError, OSError) as exc:
            raise GeneratorError(f"{self.model_id} sent data that is not an image") from exc


def _size(request: GenerationRequest) -> str | None:
    return None if request.width is None else f"{request.width}x{request.height}"
