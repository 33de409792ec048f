"""Loading diffusers pipelines once per process.

The refine loop, batch runs and RL call a generator many times; weights must be
loaded once. :class:`PipelineCache` keeps loaded pipelines keyed by everything
that changes the loaded object (source, device, dtype, offload, VAE precision,
LoRA stack) and hands the same object back on every later request.

Device and dtype are explicit, with the automatic defaults of :mod:`gcr.devices`
(the rule the in-process critic follows too): CUDA in bf16 (fp16 on GPUs without
bf16), Apple MPS in bf16, CPU in fp32.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import re
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gcr.errors import ConfigError, GCRError, GeneratorLoadError, GeneratorOOMError, InputError
from gcr.generators.lora import LoraSpec, apply_loras
from gcr.generators.presets import PRESETS, alias_repo

logger = logging.getLogger(__name__)

_HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")


def resolve_source(model: str) -> str:
    """A loadable source for ``model``: an absolute local folder, a family name's repo, or a hub id."""
    text = model.strip()
    if not text:
        raise InputError("no model given: pass a Hugging Face id, a local pipeline folder or a family name")
    path = Path(text).expanduser()
    if not path.exists() and (repo := alias_repo(text)) is not None:
        return repo  # a family name; a local folder of the same name wins
    if path.exists():
        if path.is_file():
            raise GeneratorLoadError(
                f"{path} is a single file; gcr loads diffusers pipeline folders (with model_index.json) "
                "or Hugging Face ids"
            )
        if not (path / "model_index.json").is_file():
            raise GeneratorLoadError(f"{path} is not a diffusers pipeline folder: it has no model_index.json")
        return str(path.resolve())
    if text.startswith((".", "/", "~")) or text.count("/") > 1 or "\\" in text:
        raise GeneratorLoadError(f"model folder not found: {path}")
    if _HUB_ID.fullmatch(text):
        return text
    names = ", ".join(name for name, preset in PRESETS.items() if preset.repo)
    raise InputError(
        f"unknown model {model!r}: pass a Hugging Face id (org/name), a local pipeline folder, "
        f"or one of: {names}"
    )


@dataclass(frozen=True)
class PipelineKey:
    """Everything that changes the loaded pipeline object."""

    source: str
    device: str
    dtype: str
    offload: bool
    fp32_vae: bool
    loras: tuple[str, ...]  # LoraSpec.fingerprint() of each adapter, in stacking order


class PipelineCache:
    """Loaded pipelines by :class:`PipelineKey`, least recently used dropped beyond ``max_entries``.

    ``loads`` counts real loads, so callers and tests can check that weights were not reloaded.
    """

    def __init__(self, max_entries: int = 2) -> None:
        if max_entries < 1:
            raise ConfigError(f"the pipeline cache needs room for at least 1 pipeline, got {max_entries}")
        self.max_entries = max_entries
        self.loads = 0
        self._entries: OrderedDict[PipelineKey, Any] = OrderedDict()
        self._lock = threading.RLock()

    def get_or_load(self, key: PipelineKey, loader: Callable[[], Any]) -> tuple[Any, float]:
        """The pipeline for ``key`` and the seconds spent loading it now (0.0 when cached)."""
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key], 0.0
            start = time.perf_counter()
            pipe = loader()
            self.loads += 1
            self._entries[key] = pipe
            while len(self._entries) > self.max_entries:
                old_key, _ = self._entries.popitem(last=False)
                logger.info("dropping cached pipeline %s (%s)", old_key.source, old_key.device)
                _release_memory()
            return pipe, time.perf_counter() - start

    def clear(self) -> None:
        """Forget every cached pipeline (memory is freed once no generator holds one)."""
        with self._lock:
            self._entries.clear()
            _release_memory()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries


_DEFAULT_CACHE = PipelineCache()


def default_cache() -> PipelineCache:
    """The process-wide cache that generators use unless given their own."""
    return _DEFAULT_CACHE


def load_pipeline(
    source: str,
    *,
    device: torch.device,
    dtype: torch.dtype,
    offload: bool = False,
    fp32_vae: bool = False,
    loras: Sequence[LoraSpec] = (),
) -> Any:
    """Load a pipeline with ``DiffusionPipeline.from_pretrained``, stack LoRAs, place it on ``device``."""
    from diffusers import DiffusionPipeline

    if offload and device.type != "cuda":
        raise ConfigError(
            f"CPU offload moves weights between the CPU and a CUDA GPU; device is {device.type}: "
            "drop --offload"
        )
    try:
        with _quiet_progress_bars(), warnings.catch_warnings():
            # Newer diffusers renamed torch_dtype to dtype; the old name works on every version.
            warnings.filterwarnings("ignore", message=r".*torch_dtype.*", category=FutureWarning)
            pipe = DiffusionPipeline.from_pretrained(source, torch_dtype=dtype)
        apply_loras(pipe, loras)
        if fp32_vae and dtype != torch.float32:
            keep_vae_fp32(pipe, dtype)
        if offload:
            pipe.enable_model_cpu_offload(device=device)
        else:
            pipe.to(device)
    except torch.OutOfMemoryError as exc:
        _release_memory()
        raise GeneratorOOMError(
            f"out of memory loading {source} on {device}: try --offload (model CPU offload), "
            "a smaller dtype, or a GPU with more memory"
        ) from exc
    except GCRError:
        raise  # already says what to fix (a missing extra, a bad LoRA)
    except (OSError, ValueError, KeyError, ImportError, TypeError, RuntimeError) as exc:
        raise GeneratorLoadError(f"cannot load a diffusers pipeline from {source!r}: {exc}") from exc
    pipe.set_progress_bar_config(disable=True)  # progress goes through the caller's callback
    logger.info("loaded %s from %s on %s (%s)", type(pipe).__name__, source, device, dtype)
    return pipe


def keep_vae_fp32(pipe: Any, compute_dtype: torch.dtype) -> None:
    """Run the VAE in fp32 inside a lower-precision pipeline.

    Some families (FLUX Kontext, as upstream runs it: docs/generators.md) decode
    visibly better with an fp32 VAE, but their pipelines feed it tensors in the
    pipeline dtype. Hooks cast what enters the VAE's encoder and decoder to fp32
    and what leaves the encoder back to ``compute_dtype``, so the rest of the
    pipeline sees the dtype it expects.
    """
    vae = getattr(pipe, "vae", None)
    if vae is None:
        return
    vae.to(torch.float32)

    def to_fp32(_module: torch.nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(a.float() if torch.is_tensor(a) and a.is_floating_point() else a for a in args)

    def back_to_compute(_module: torch.nn.Module, _args: tuple[Any, ...], output: Any) -> Any:
        return output.to(compute_dtype) if torch.is_tensor(output) else output

    for name in ("encoder", "quant_conv", "post_quant_conv", "decoder"):
        module = getattr(vae, name, None)
        if isinstance(module, torch.nn.Module):
            module.register_forward_pre_hook(to_fp32)
    quant_conv = getattr(vae, "quant_conv", None)
    encoder_exit = quant_conv if isinstance(quant_conv, torch.nn.Module) else getattr(vae, "encoder", None)
    if isinstance(encoder_exit, torch.nn.Module):
        encoder_exit.register_forward_hook(back_to_compute)


@contextlib.contextmanager
def _quiet_progress_bars() -> Iterator[None]:
    """Silence diffusers' and transformers' component-loading bars; the library does not print."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_was_on = diffusers_logging.is_progress_bar_enabled()
    transformers_was_on = transformers_logging.is_progress_bar_enabled()
    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if diffusers_was_on:
            diffusers_logging.enable_progress_bar()
        if transformers_was_on:
            transformers_logging.enable_progress_bar()


def _release_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
