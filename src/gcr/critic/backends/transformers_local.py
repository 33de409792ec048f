"""Critic backend that runs a vision-language model in-process with transformers.

The model (any ``AutoModelForImageTextToText`` checkpoint with a chat template,
e.g. RationalRewards-8B or the tiny test critic) loads lazily, once, on first
use. Concurrent :meth:`TransformersBackend.complete` calls are gathered by a
:class:`~gcr.critic.backends.microbatch.MicroBatcher` and answered by one
left-padded ``generate`` call in a worker thread, so an event loop running many
critiques keeps the accelerator busy without blocking.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import threading
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from gcr.critic.backends.base import ChatRequest, Completion, SamplingParams
from gcr.critic.backends.microbatch import MicroBatcher
from gcr.critic.defaults import DEFAULT_MAX_PIXELS
from gcr.devices import resolve_device_and_dtype
from gcr.errors import ConfigError, CriticError, CriticLoadError, InputError
from gcr.image_input import ImageInput, as_pil
from gcr.images import fit_pixel_budget

logger = logging.getLogger(__name__)

DEFAULT_MAX_BATCH_SIZE = 8
DEFAULT_MAX_WAIT_S = 0.02
#: Temperatures at or below this decode greedily.
GREEDY_TEMPERATURE = 1e-5

def _is_local_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or Path(name).expanduser().exists() or name.count("/") > 1


@dataclasses.dataclass(frozen=True)
class _Job:
    request: ChatRequest
    sampling: SamplingParams


def _sampling_key(job: _Job) -> Hashable:
    s = job.sampling
    extra = tuple(sorted((k, repr(v)) for k, v in s.extra.items()))
    if s.temperature <= GREEDY_TEMPERATURE:
        return ("greedy", s.max_tokens, extra)
    return ("sample", s.temperature, s.top_p, s.max_tokens, extra)


class TransformersBackend:
    """A :class:`~gcr.critic.backends.base.ChatBackend` running a VLM in this process.

    Args:
        model: Hugging Face Hub id or local folder of an image-text-to-text model.
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``mps``; None picks the best available.
        dtype: ``bfloat16``, ``float16``, ``float32`` (or a torch dtype); None picks the
            device's usual one (:func:`gcr.devices.resolve_device_and_dtype`).
        device_map: passed to ``from_pretrained`` to spread a large model over several
            GPUs (e.g. ``"auto"``); ``device`` is then only used to resolve the dtype.
        max_pixels: images are downscaled to at most this many pixels before the processor.
        max_batch_size: most requests answered by one ``generate`` call.
        max_wait_s: how long a request waits for others to join its batch.
        model_id: name used in cache keys and reports; defaults to ``model`` as given.
    """

    def __init__(
        self,
        model: str | Path,
        *,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        device_map: str | dict[str, Any] | None = None,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        max_wait_s: float = DEFAULT_MAX_WAIT_S,
        model_id: str | None = None,
    ) -> None:
        self._source = str(model)
        if not self._source.strip():
            raise ConfigError("no critic model given: pass a Hugging Face id or a local folder")
        self._model_id = model_id or self._source
        # A CUDA device comes back pinned to the caller's current GPU: the model loads and runs in the
        # batcher's worker thread, whose current CUDA device is 0, not the one set for this process.
        self.device, self.dtype = resolve_device_and_dtype(device, dtype)
        self.device_map = device_map
        self.max_pixels = max_pixels
        if max_batch_size < 1:
            raise ConfigError(f"max_batch_size must be at least 1, got {max_batch_size}")
        self._batcher: MicroBatcher[_Job, Completion] = MicroBatcher(
            self._run_batch,
            max_batch_size=max_batch_size,
            max_wait_s=max_wait_s,
            key=_sampling_key,
            make_error=self._batch_error,
        )
        self._load_lock = threading.Lock()
        self._generate_lock = threading.Lock()
        self._model: Any = None
        self._processor: Any = None
        self._closed = False

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def model(self) -> Any:
        """The loaded transformers model (loads it on first access)."""
        self.load()
        return self._model

    @property
    def processor(self) -> Any:
        """The loaded processor (loads the model on first access)."""
        self.load()
        return self._processor

    def load(self) -> None:
        """Load model and processor now (blocking; safe to call from several threads)."""
        if self._closed:
            raise CriticError(f"the local critic {self._model_id!r} was closed; create a new backend")
        with self._load_lock:
            if self._model is None:
                self._model, self._processor = self._load()

    def _load(self) -> tuple[Any, Any]:
        from huggingface_hub.errors import StrictDataclassError
        from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor
        from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING

        source = self._source
        path = Path(source).expanduser()
        if _is_local_path(source):
            if not path.exists():
                raise CriticLoadError(f"critic model folder not found: {path}")
            if not (path / "config.json").is_file():
                raise CriticLoadError(f"{path} is not a model folder (no config.json in it)")
            source = str(path)
        try:
            config = AutoConfig.from_pretrained(source)
        except (OSError, ValueError, TypeError, StrictDataclassError) as exc:
            raise CriticLoadError(
                f"cannot load critic model {source}: {exc}. Check the id or path, and that the model "
                "is downloaded when running offline"
            ) from exc
        if type(config) not in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING:
            raise CriticLoadError(
                f"{source} is a {config.model_type!r} model, not a vision-language (image-text-to-text) "
                "model; the critic needs one, e.g. a Qwen3-VL checkpoint"
            )
        kwargs: dict[str, Any] = {"dtype": self.dtype}
        if self.device_map is not None:
            kwargs["device_map"] = self.device_map
        try:
            processor = AutoProcessor.from_pretrained(source)
            model = AutoModelForImageTextToText.from_pretrained(source, config=config, **kwargs)
        except (OSError, ValueError) as exc:
            raise CriticLoadError(f"cannot load critic model {source}: {exc}") from exc
        if getattr(processor, "chat_template", None) is None or not hasattr(processor, "tokenizer"):
            raise CriticLoadError(f"{source} has no chat-capable processor (chat template and tokenizer)")
        processor.tokenizer.padding_side = "left"
        if self.device_map is None:
            model.to(self.device)
        model.eval()
        logger.info("loaded critic %s on %s (%s)", source, model.device, self.dtype)
        return model, processor

    async def complete(self, request: ChatRequest, sampling: SamplingParams) -> str:
        """Answer ``request``; concurrent calls share one batched ``generate``."""
        if self._closed:
            raise CriticError(f"the local critic {self._model_id!r} was closed; create a new backend")
        _check_request(request)
        _generation_options(sampling)  # reject bad options before queueing
        return await self._batcher.submit(_Job(request, sampling))

    def _batch_error(self, message: str, cause: BaseException | None) -> BaseException:
        if isinstance(cause, CriticError):
            return cause
        return CriticError(f"local critic {self._model_id}: {message}")

    def _run_batch(self, jobs: list[_Job]) -> list[Completion | BaseException]:
        """Blocking: render, pad and generate for jobs that share sampling settings."""
        try:
            self.load()
            return list(self._generate(jobs))
        except CriticError as exc:
            return [exc for _ in jobs]
        except torch.cuda.OutOfMemoryError as exc:
            return [
                CriticError(
                    f"local critic {self._model_id} ran out of accelerator memory on a batch of {len(jobs)} "
                    f"({exc}): lower max_batch_size or max_pixels"
                )
                for _ in jobs
            ]
        except Exception as exc:
            logger.exception("local critic batch of %d failed", len(jobs))
            return [
                CriticError(
                    f"local critic {self._model_id} failed on a batch of {len(jobs)}: "
                    f"{type(exc).__name__}: {exc}"
                )
                for _ in jobs
            ]

    def _generate(self, jobs: list[_Job]) -> Sequence[Completion]:
        processor, model = self._processor, self._model
        texts: list[str] = []
        images: list[Image.Image] = []
        for job in jobs:
            texts.append(
                processor.apply_chat_template(
                    build_chat_messages(job.request), tokenize=False, add_generation_prompt=True
                )
            )
            # Pixels go to the processor as they are in memory (an ImageInput decodes only if it
            # came as bytes or a file); no PNG round trip on the way.
            images.extend(fit_pixel_budget(as_pil(img), self.max_pixels) for img in job.request.images)
        inputs = processor(text=texts, images=images or None, padding=True, return_tensors="pt")
        inputs = inputs.to(device=model.device, dtype=self.dtype)
        options = _generation_options(jobs[0].sampling)
        # One generate at a time even if several event loops (threads) share this backend.
        with self._generate_lock, torch.inference_mode():
            output = model.generate(**inputs, **options)
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        eos = _eos_ids(model, processor)
        results = []
        for row in new_tokens:
            ids = row.tolist()
            stopped = any(t in eos for t in ids)
            text = processor.tokenizer.decode(ids, skip_special_tokens=True)
            results.append(Completion(text, "stop" if stopped else "length"))
        logger.debug("generated %d answers in one batch", len(results))
        return results

    async def aclose(self) -> None:
        """Stop batching and free the model (and the accelerator memory it held)."""
        self._closed = True
        await self._batcher.aclose()
        with self._load_lock:
            self._model = self._processor = None
        gc.collect()
        if self.device.type == "cuda" and torch.cuda.is_available():
            torch.cuda.empty_cache()


def build_chat_messages(request: ChatRequest) -> list[dict[str, Any]]:
    """The request in the processor's chat format: image parts stay where they are in the text."""
    content: list[dict[str, Any]] = []
    for part in request.parts:
        if isinstance(part, Image.Image | ImageInput):
            content.append({"type": "image"})
        elif part:
            content.append({"type": "text", "text": part})
    messages: list[dict[str, Any]] = []
    if request.system:
        messages.append({"role": "system", "content": [{"type": "text", "text": request.system}]})
    messages.append({"role": "user", "content": content})
    return messages


def _check_request(request: ChatRequest) -> None:
    if not request.parts:
        raise InputError("the critic request has no content: give at least one text or image part")
    for part in request.parts:
        if not isinstance(part, str | Image.Image | ImageInput):
            raise InputError(f"critic request parts must be text or PIL images, got {type(part).__name__}")


def _generation_options(sampling: SamplingParams) -> dict[str, Any]:
    """``generate`` keyword arguments for ``sampling``; unknown extra options are an error."""
    from transformers import GenerationConfig

    if sampling.max_tokens < 1:
        raise InputError(f"max_tokens must be at least 1, got {sampling.max_tokens}")
    if sampling.temperature < 0:
        raise InputError(f"temperature must not be negative, got {sampling.temperature}")
    options: dict[str, Any] = {"max_new_tokens": sampling.max_tokens}
    if sampling.temperature <= GREEDY_TEMPERATURE:
        options["do_sample"] = False
    else:
        options["do_sample"] = True
        options["temperature"] = sampling.temperature
        if sampling.top_p is not None:
            options["top_p"] = sampling.top_p
    known = GenerationConfig().to_dict()
    unknown = sorted(k for k in sampling.extra if k not in known or k in _RESERVED)
    if unknown:
        raise ConfigError(
            f"sampling option(s) {', '.join(unknown)} are not transformers generation options "
            "(the in-process critic accepts e.g. top_k, min_p, repetition_penalty)"
        )
    options.update(sampling.extra)
    return options


#: Generation options the backend sets itself from SamplingParams.
_RESERVED = frozenset(
    {"max_new_tokens", "max_length", "do_sample", "temperature", "top_p", "num_return_sequences"}
)


def _eos_ids(model: Any, processor: Any) -> set[int]:
    eos = model.generation_config.eos_token_id
    ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    if processor.tokenizer.eos_token_id is not None:
        ids.add(processor.tokenizer.eos_token_id)
    return ids


def load_local_backend(
    path_or_id: str | Path,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
) -> TransformersBackend:
    """Create a :class:`TransformersBackend` and load its model now, so load errors surface here."""
    backend = TransformersBackend(
        path_or_id, device=device, dtype=dtype, max_pixels=max_pixels, max_batch_size=max_batch_size
    )
    backend.load()
    return backend
