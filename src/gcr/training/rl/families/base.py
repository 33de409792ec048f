"""What the trainer needs from a flow-matching pipeline, independent of the model family.

A :class:`FlowFamily` wraps a loaded diffusers pipeline and exposes five calls:
``encode`` (prompts and sources to a :class:`Conditioning`), ``initial_noise``,
``make_scheduler`` (the rollout timesteps), ``velocity`` (one transformer call
in the family's own argument layout) and ``decode`` (latents to images). Rollouts
and training both go through the same ``velocity``, so the training targets use
exactly the conditioning the samples were drawn with.

Time convention: ``t`` in [0, 1] with x_t = (1 − t)·x0 + t·ε and v = ε − x0; a
family converts ``t`` to whatever its transformer expects.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from PIL import Image

from gcr.errors import ConfigError

#: The transformer (or its DDP wrapper) as a callable taking the transformer's keyword arguments.
TransformerCall = Callable[..., Any]


@dataclass
class Conditioning:
    """Per-prompt tensors (first dimension = prompt) plus values shared by every prompt."""

    batched: dict[str, torch.Tensor | None]
    shared: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        sizes = {v.shape[0] for v in self.batched.values() if v is not None}
        if len(sizes) != 1:
            raise ValueError(f"inconsistent conditioning batch sizes: {sorted(sizes)}")
        return sizes.pop()

    def take(self, index: torch.Tensor | Sequence[int]) -> Conditioning:
        """Rows ``index`` (repeats allowed): the conditioning of a batch of samples."""
        idx = torch.as_tensor(index, dtype=torch.long)
        batched = {
            k: (None if v is None else v.index_select(0, idx.to(v.device))) for k, v in self.batched.items()
        }
        return Conditioning(batched=batched, shared=dict(self.shared))


class FlowFamily(ABC):
    """A model family's calls; subclasses set the class attributes and implement the five methods."""

    #: Family key used in configs.
    name: ClassVar[str]
    #: diffusers pipeline class names this family handles.
    pipeline_classes: ClassVar[tuple[str, ...]]
    #: Whether prompts come with source images (editing).
    is_edit: ClassVar[bool] = False
    #: Whether the call signature was checked by running it here (tests on tiny pipelines).
    verified: ClassVar[bool] = False
    default_learning_rate: ClassVar[float] = 2e-4
    #: Embedded guidance value, or None for models without a guidance embedding.
    default_guidance: ClassVar[float | None] = None
    default_max_sequence_length: ClassVar[int] = 512
    #: Attention projections adapted by LoRA.
    lora_targets: ClassVar[tuple[str, ...]] = (
        "attn.to_q",
        "attn.to_k",
        "attn.to_v",
        "attn.to_out.0",
        "attn.add_q_proj",
        "attn.add_k_proj",
        "attn.add_v_proj",
        "attn.to_add_out",
    )

    def __init__(
        self,
        pipe: Any,
        *,
        resolution: int,
        guidance_scale: float | None = None,
        max_sequence_length: int | None = None,
    ) -> None:
        self.pipe = pipe
        self.transformer = pipe.transformer
        multiple = self.size_multiple
        if resolution % multiple:
            raise ConfigError(f"resolution {resolution} must be a multiple of {multiple} for {self.name}")
        self.height = self.width = resolution
        self.guidance_scale = self._resolve_guidance(guidance_scale)
        self.max_sequence_length = max_sequence_length or self.default_max_sequence_length

    # -- properties -------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.transformer.device

    @property
    def dtype(self) -> torch.dtype:
        return self.transformer.dtype

    @property
    def size_multiple(self) -> int:
        """Image sides must be multiples of this (VAE downsampling × 2×2 packing)."""
        return self.pipe.vae_scale_factor * 2

    @property
    def source_size(self) -> tuple[int, int]:
        """(width, height) that source images are fitted to before encoding."""
        return self.width, self.height

    def _resolve_guidance(self, value: float | None) -> float | None:
        has_embedding = bool(getattr(self.transformer.config, "guidance_embeds", False))
        if not has_embedding:
            if value is not None:
                raise ConfigError(
                    f"guidance_scale={value} has no effect: this {self.name} transformer has no guidance "
                    "embedding and NFT samples without classifier-free guidance; remove the setting"
                )
            return None
        return self.default_guidance if value is None else value

    def guidance(self, batch: int) -> torch.Tensor | None:
        if self.guidance_scale is None:
            return None
        return torch.full((batch,), float(self.guidance_scale), device=self.device, dtype=torch.float32)

    # -- the five calls ----------------------------------------------------------------
    @abstractmethod
    def encode(self, prompts: Sequence[str], sources: Sequence[Sequence[Image.Image]] | None) -> Conditioning:
        """Encode prompts (and, for editing, one list of source images per prompt)."""

    @abstractmethod
    def initial_noise(self, batch: int, generator: torch.Generator | None) -> torch.Tensor:
        """Gaussian noise in the transformer's latent layout, as the pipeline draws it."""

    @abstractmethod
    def velocity(
        self, model: TransformerCall, x_t: torch.Tensor, t: torch.Tensor, cond: Conditioning
    ) -> torch.Tensor:
        """The predicted velocity at ``x_t`` and times ``t`` (shape (B,), values in [0, 1])."""

    @abstractmethod
    def decode(self, latents: torch.Tensor) -> list[Image.Image]:
        """Clean latents to PIL images."""

    def make_scheduler(self, num_steps: int) -> Any:
        """A private copy of the pipeline's scheduler, set for ``num_steps`` as the pipeline sets it."""
        scheduler = copy.deepcopy(self.pipe.scheduler)
        sigmas, kwargs = self._schedule_args(num_steps)
        if sigmas is not None:
            scheduler.set_timesteps(sigmas=sigmas, device=self.device, **kwargs)
        else:
            scheduler.set_timesteps(num_steps, device=self.device, **kwargs)
        scheduler.set_begin_index(0)
        return scheduler

    def _schedule_args(self, num_steps: int) -> tuple[list[float] | None, dict[str, Any]]:
        """Sigmas (or None for the scheduler's own spacing) and extra ``set_timesteps`` arguments."""
        return None, {}

    # -- helpers shared by the families -------------------------------------------------
    def latent_hw(self) -> tuple[int, int]:
        """Height and width of the unpacked latent grid (even, as the packing needs)."""
        vsf = self.pipe.vae_scale_factor
        return 2 * (self.height // (vsf * 2)), 2 * (self.width // (vsf * 2))

    def check_sources(self, prompts: Sequence[str], sources: Sequence[Sequence[Image.Image]] | None) -> None:
        if self.is_edit:
            if sources is None or len(sources) != len(prompts) or any(len(s) != 1 for s in sources):
                raise ConfigError(
                    f"{self.name} edits one source image per prompt; give each prompt one source"
                )
        elif sources and any(len(s) for s in sources):
            raise ConfigError(f"{self.name} is a text-to-image model; the prompt file must not name sources")
