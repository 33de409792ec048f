"""Diffusers text-to-image and image-editing pipelines behind the :class:`Generator` interface.

One adapter serves every family: the family preset (:mod:`gcr.generators.presets`)
fills in defaults and says how its pipeline is called, the pipeline cache
(:mod:`gcr.generators.loading`) makes sure weights load once per process, and
each image gets its own seeded ``torch.Generator`` so image *i* of a batch is
the image a single call with seed ``seed + i`` makes.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
import weakref
from collections.abc import Sequence
from typing import Any

import torch
from PIL import Image

from gcr.devices import half_precision_warning, resolve_device_and_dtype
from gcr.errors import GeneratorError, GeneratorOOMError, InputError
from gcr.generators.base import GenerationRequest, GenerationResult, ProgressCallback
from gcr.generators.loading import (
    PipelineCache,
    PipelineKey,
    default_cache,
    load_pipeline,
    resolve_source,
)
from gcr.generators.lora import LoraSpec
from gcr.generators.presets import FamilyPreset, detect_family, pipeline_class_name
from gcr.images import ensure_rgb, image_digest, resize_longest_edge
from gcr.task import Task

logger = logging.getLogger(__name__)

# Arguments the adapter sets from the request itself; ``extra`` may not override them.
_MANAGED = frozenset(
    {
        "prompt",
        "image",
        "height",
        "width",
        "num_inference_steps",
        "num_images_per_prompt",
        "generator",
        "output_type",
        "return_dict",
        "callback_on_step_end",
    }
)
# One lock per pipeline object: schedulers keep per-call state, so calls on a shared
# pipeline must not overlap.
_PIPE_LOCKS: weakref.WeakKeyDictionary[Any, threading.Lock] = weakref.WeakKeyDictionary()
_PIPE_LOCKS_GUARD = threading.Lock()


class DiffusersGenerator:
    """Generate or edit images with a diffusers pipeline loaded by hub id or local folder.

    ``model`` is a Hugging Face id, a local pipeline folder (with ``model_index.json``)
    or a family name standing for its canonical repo (``flux-kontext``). ``family``
    overrides the detected preset. ``device``/``dtype`` default to CUDA bf16, MPS bf16
    or CPU fp32. ``offload`` enables model CPU offload (CUDA only). ``loras`` stack
    adapters (``LoraSpec`` or ``"PATH[:SCALE]"``) on the base model. ``edit_longest_edge``
    caps source images (default: the family's, 1024 for most). Pipelines live in
    ``cache`` (the process-wide one by default) and are never reloaded per image.
    """

    def __init__(
        self,
        model: str,
        *,
        family: str | None = None,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        offload: bool = False,
        loras: Sequence[LoraSpec | str] = (),
        edit_longest_edge: int | None = None,
        cache: PipelineCache | None = None,
    ) -> None:
        self.source = resolve_source(model)
        self.preset: FamilyPreset = detect_family(self.source, family=family)
        self.device, self.dtype = resolve_device_and_dtype(device, dtype)
        warning = half_precision_warning(self.preset.name, self.dtype, self.device)
        if warning is not None and self.preset.fp16_breaks:
            logger.warning("%s", warning)
        self.offload = offload
        self.loras = tuple(spec if isinstance(spec, LoraSpec) else LoraSpec.parse(spec) for spec in loras)
        if edit_longest_edge is not None and edit_longest_edge < 1:
            raise InputError(
                f"edit_longest_edge must be a positive number of pixels, got {edit_longest_edge}"
            )
        self.edit_longest_edge = edit_longest_edge or self.preset.edit_longest_edge
        self._cache = cache if cache is not None else default_cache()
        self._task: Task | None = self.preset.task

    # ------------------------------------------------------------------ identity

    @property
    def model_id(self) -> str:
        if not self.loras:
            return self.source
        stack = ",".join(f"{spec.path}@{spec.scale:g}" for spec in self.loras)
        return f"{self.source}+lora[{stack}]"

    @property
    def task(self) -> Task:
        if self._task is None:
            self._task = self._task_from_class()
        return self._task

    @property
    def cache_key(self) -> PipelineKey:
        return PipelineKey(
            source=self.source,
            device=str(self.device),
            dtype=str(self.dtype).removeprefix("torch."),
            offload=self.offload,
            fp32_vae=self.preset.fp32_vae,
            loras=tuple(spec.fingerprint() for spec in self.loras),
        )

    # ------------------------------------------------------------------ loading

    def load(self) -> Any:
        """The loaded pipeline (from the cache when another call already loaded it)."""
        return self._load()[0]

    def _load(self) -> tuple[Any, float]:
        return self._cache.get_or_load(
            self.cache_key,
            lambda: load_pipeline(
                self.source,
                device=self.device,
                dtype=self.dtype,
                offload=self.offload,
                fp32_vae=self.preset.fp32_vae,
                loras=self.loras,
            ),
        )

    def size_multiple(self) -> int:
        """The side multiple in pixels that this model's latent grid needs (loads the pipeline)."""
        return self.preset.size_multiple(self.load())

    def _task_from_class(self) -> Task:
        """Generic pipelines: an ``image`` argument in ``__call__`` makes it an editing model."""
        import diffusers

        name = pipeline_class_name(self.source)
        cls = getattr(diffusers, name, None) if name else None
        call = cls.__call__ if cls is not None else type(self.load()).__call__
        return Task.EDIT if "image" in inspect.signature(call).parameters else Task.T2I

    # ------------------------------------------------------------------ generation

    def generate(
        self, request: GenerationRequest, *, progress: ProgressCallback | None = None
    ) -> GenerationResult:
        """Make ``request.num_images`` images; ``progress(step, total)`` is called after each step."""
        started = time.perf_counter()
        request.validate(task=self.task, max_source_images=self.preset.max_source_images)
        pipe, load_s = self._load()
        params = _call_parameters(pipe)
        multiple = self.preset.size_multiple(pipe)
        request.validate(
            task=self.task, size_multiple=multiple, max_source_images=self.preset.max_source_images
        )
        sizing = self._sizing(params)
        sources, width, height = self._plan_size(request, pipe, multiple, sizing)
        kwargs, used = self._call_kwargs(request, pipe, params, sizing, sources, width, height)
        if progress is not None and "callback_on_step_end" in params:
            kwargs["callback_on_step_end"] = _step_callback(progress, used.get("steps"))

        call_start = time.perf_counter()
        with _lock_for(pipe):
            images = self._run(pipe, kwargs, request, width, height)
        generate_s = time.perf_counter() - call_start

        used.update(
            width=images[0].width,
            height=images[0].height,
            num_images=len(images),
            source_images=[
                {"width": s.width, "height": s.height, "digest": image_digest(s)} for s in sources
            ],
        )
        return GenerationResult(
            images=images,
            seeds=request.seeds(),
            model_id=self.model_id,
            params=used,
            timings={"load_s": load_s, "generate_s": generate_s, "total_s": time.perf_counter() - started},
        )

    def _sizing(self, params: dict[str, inspect.Parameter]) -> str:
        if self.preset.sizing != "auto":
            return self.preset.sizing
        if "height" in params and "width" in params:
            return "height_width"
        return "source" if "image" in params else "none"

    def _plan_size(
        self, request: GenerationRequest, pipe: Any, multiple: int, sizing: str
    ) -> tuple[list[Image.Image], int | None, int | None]:
        """Resize the source images and choose the output size."""
        width, height = request.width, request.height
        if sizing == "none" and width is not None:
            raise InputError(f"{type(pipe).__name__} takes no output size: drop the size")
        if self.task is Task.T2I:
            if width is None and self.preset.size is not None:
                width = height = self.preset.size
            elif width is None:
                width = height = _pipeline_default_side(pipe)
            return [], width, height
        if sizing == "source" and width is not None and height is not None:
            # The pipeline makes the output at the source's size, so the source takes the request's.
            sources = [
                ensure_rgb(img).resize((width, height), Image.Resampling.LANCZOS)
                for img in request.source_images
            ]
            return sources, width, height
        try:
            sources = [
                resize_longest_edge(ensure_rgb(img), self.edit_longest_edge, multiple)
                for img in request.source_images
            ]
        except ValueError as exc:
            raise InputError(f"cannot fit the source image: {exc}") from None
        if width is None:
            width, height = sources[0].size
        return sources, width, height

    def _call_kwargs(
        self,
        request: GenerationRequest,
        pipe: Any,
        params: dict[str, inspect.Parameter],
        sizing: str,
        sources: list[Image.Image],
        width: int | None,
        height: int | None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The pipeline's keyword arguments, and the JSON-ready record of what was used."""
        preset, cls = self.preset, type(pipe).__name__
        kwargs: dict[str, Any] = {
            "prompt": request.prompt,
            "num_images_per_prompt": request.num_images,
            # CPU generators: the same seed gives the same noise on every device.
            "generator": [torch.Generator("cpu").manual_seed(s) for s in request.seeds()],
            "output_type": "pil",
        }
        steps = request.steps if request.steps is not None else preset.steps
        if steps is None:
            steps = _default_of(params, "num_inference_steps")
        if steps is not None:
            kwargs["num_inference_steps"] = steps
        guidance = request.guidance if request.guidance is not None else preset.guidance
        if guidance is not None and preset.guidance_arg not in params:
            raise InputError(f"{cls} takes no guidance setting: drop --guidance")
        if guidance is None:
            guidance = _default_of(params, preset.guidance_arg)
        if guidance is not None:
            kwargs[preset.guidance_arg] = guidance
        negative = self._negative_prompt(request, params, cls)
        if negative is not None:
            kwargs["negative_prompt"] = negative
        if sizing in ("height_width", "kontext") and width is not None:
            kwargs["height"], kwargs["width"] = height, width
        if sizing == "kontext" and width is not None and height is not None:
            # Keep the exact requested size instead of Kontext's preferred-resolution snapping.
            kwargs["max_area"], kwargs["_auto_resize"] = width * height, False
        if sources and preset.source_per_image and len(sources) == 1:
            kwargs["image"] = sources * request.num_images
        elif sources:
            kwargs["image"] = sources[0] if len(sources) == 1 else sources
        applied_defaults = {k: v for k, v in preset.call_defaults.items() if k in params}
        for key, value in applied_defaults.items():
            kwargs.setdefault(key, value)
        for key, value in request.extra.items():
            if key in _MANAGED:
                raise InputError(f"set {key!r} through the request's own fields, not extra")
            # Named parameters only: a pipeline's **kwargs exists for deprecated names and
            # would drop anything else without a word.
            if key not in params or params[key].kind is inspect.Parameter.VAR_KEYWORD:
                raise InputError(f"{cls} has no argument {key!r}; check the pipeline's __call__ arguments")
            kwargs[key] = value
        used = {
            "prompt": request.prompt,
            "negative_prompt": negative,
            "steps": steps,
            "guidance": guidance,
            "guidance_arg": preset.guidance_arg,
            "family": preset.name,
            "task": self.task.value,
            "pipeline": cls,
            "source": self.source,
            "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
            "offload": self.offload,
            "fp32_vae": preset.fp32_vae,
            "loras": [{"path": spec.path, "scale": spec.scale} for spec in self.loras],
            "call_defaults": _jsonable(applied_defaults),
            "extra": _jsonable(request.extra),
        }
        return kwargs, used

    def _negative_prompt(
        self, request: GenerationRequest, params: dict[str, inspect.Parameter], cls: str
    ) -> str | None:
        if request.negative_prompt is None:
            return self.preset.default_negative_prompt if "negative_prompt" in params else None
        if "negative_prompt" not in params:
            raise InputError(f"{cls} takes no negative prompt: drop it")
        needs = self.preset.negative_needs
        if needs and needs not in request.extra:
            raise InputError(
                f"{self.preset.name} ignores a negative prompt unless {needs} > 1 is set "
                f"(CLI: --extra {needs}=4.0; it doubles the cost): set it or drop the negative prompt"
            )
        return request.negative_prompt

    def _run(
        self,
        pipe: Any,
        kwargs: dict[str, Any],
        request: GenerationRequest,
        width: int | None,
        height: int | None,
    ) -> list[Image.Image]:
        try:
            output = pipe(**kwargs)
        except torch.OutOfMemoryError as exc:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            size = f"{width}x{height}" if width else "the default size"
            raise GeneratorOOMError(
                f"out of memory making {request.num_images} image(s) at {size} with {self.preset.name} "
                f"on {self.device}: try --offload (model CPU offload), fewer images per call, "
                "or a smaller --size"
            ) from exc
        except (ValueError, TypeError, RuntimeError) as exc:
            raise GeneratorError(f"{type(pipe).__name__} failed: {exc}") from exc
        images = [ensure_rgb(img) for img in output.images]
        if len(images) != request.num_images:
            raise GeneratorError(
                f"{type(pipe).__name__} returned {len(images)} image(s) instead of {request.num_images}"
            )
        return images


def _call_parameters(pipe: Any) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(type(pipe).__call__).parameters)


def _default_of(params: dict[str, inspect.Parameter], name: str) -> Any:
    param = params.get(name)
    if param is None or param.default is inspect.Parameter.empty:
        return None
    return param.default


def _pipeline_default_side(pipe: Any) -> int | None:
    """The pipeline's own default side: latent sample size × VAE factor, when it says."""
    scale = getattr(pipe, "vae_scale_factor", None)
    sample = getattr(pipe, "default_sample_size", None)
    if sample is None:
        denoiser = getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)
        sample = getattr(getattr(denoiser, "config", None), "sample_size", None)
    if isinstance(sample, list | tuple):
        sample = sample[0]
    if not sample or not scale:
        return None
    return int(sample) * int(scale)


def _step_callback(progress: ProgressCallback, steps: int | None) -> Any:
    def on_step_end(
        pipeline: Any, step: int, _timestep: Any, callback_kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        total = getattr(pipeline, "num_timesteps", None) or steps or step + 1
        progress(step + 1, int(total))
        return callback_kwargs

    return on_step_end


def _lock_for(pipe: Any) -> threading.Lock:
    with _PIPE_LOCKS_GUARD:
        lock = _PIPE_LOCKS.get(pipe)
        if lock is None:
            lock = _PIPE_LOCKS[pipe] = threading.Lock()
        return lock


def _jsonable(value: Any) -> Any:
    """``value`` with anything JSON cannot hold (tensors, images) written as its repr."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return repr(value)
