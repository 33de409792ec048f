"""FLUX.1 (text-to-image) and FLUX.1 Kontext (editing).

Both pack 2×2 latent patches into tokens, shift the schedule with the image
token count and pass ``timestep = t`` plus an embedded guidance value. Kontext
appends the packed source-image tokens after the noisy tokens (with position
ids whose first axis is 1) and keeps only the first tokens of the output, as
``FluxKontextPipeline`` does. Both call layouts are checked against the
diffusers pipelines on tiny models in the tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from gcr.training.rl.families.base import Conditioning, FlowFamily, TransformerCall


def _image_seq_shift(scheduler_config: Any, seq_len: int) -> float:
    """The ``mu`` of the shifted schedule, as FLUX pipelines compute it from the token count."""
    from diffusers.pipelines.flux.pipeline_flux import calculate_shift

    return calculate_shift(
        seq_len,
        scheduler_config.get("base_image_seq_len", 256),
        scheduler_config.get("max_image_seq_len", 4096),
        scheduler_config.get("base_shift", 0.5),
        scheduler_config.get("max_shift", 1.15),
    )


class FluxFamily(FlowFamily):
    name = "flux"
    pipeline_classes = ("FluxPipeline",)
    verified = True
    default_learning_rate = 2e-4
    default_guidance = 3.5
    default_max_sequence_length = 512

    @torch.no_grad()
    def encode(self, prompts: Sequence[str], sources: Sequence[Sequence[Image.Image]] | None) -> Conditioning:
        self.check_sources(prompts, sources)
        prompt_embeds, pooled, text_ids = self.pipe.encode_prompt(
            prompt=list(prompts),
            prompt_2=None,
            device=self.device,
            num_images_per_prompt=1,
            max_sequence_length=self.max_sequence_length,
        )
        h, w = self.latent_hw()
        latent_ids = self.pipe._prepare_latent_image_ids(1, h // 2, w // 2, self.device, prompt_embeds.dtype)
        cond = Conditioning(
            batched={"prompt_embeds": prompt_embeds, "pooled_prompt_embeds": pooled},
            shared={"text_ids": text_ids, "img_ids": latent_ids},
        )
        self._add_sources(cond, sources or [], prompt_embeds.dtype)
        return cond

    def _add_sources(self, cond: Conditioning, sources: Sequence[Sequence[Image.Image]], dtype: Any) -> None:
        """Editing subclasses add the source-image tokens here; text-to-image has none."""

    def initial_noise(self, batch: int, generator: torch.Generator | None) -> torch.Tensor:
        from diffusers.utils.torch_utils import randn_tensor

        channels = self.transformer.config.in_channels // 4
        h, w = self.latent_hw()
        noise = randn_tensor(
            (batch, channels, h, w), generator=generator, device=self.device, dtype=self.dtype
        )
        return self.pipe._pack_latents(noise, batch, channels, h, w)

    def _schedule_args(self, num_steps: int) -> tuple[list[float] | None, dict[str, Any]]:
        sigmas = np.linspace(1.0, 1 / num_steps, num_steps).tolist()
        if getattr(self.pipe.scheduler.config, "use_flow_sigmas", False):
            sigmas = None
        h, w = self.latent_hw()
        mu = _image_seq_shift(self.pipe.scheduler.config, (h // 2) * (w // 2))
        if sigmas is None:
            return None, {"mu": mu}
        return sigmas, {"mu": mu}

    def velocity(
        self, model: TransformerCall, x_t: torch.Tensor, t: torch.Tensor, cond: Conditioning
    ) -> torch.Tensor:
        hidden, img_ids = self._model_input(x_t, cond)
        out = model(
            hidden_states=hidden,
            timestep=t.to(x_t.dtype),
            guidance=self.guidance(x_t.shape[0]),
            pooled_projections=cond.batched["pooled_prompt_embeds"],
            encoder_hidden_states=cond.batched["prompt_embeds"],
            txt_ids=cond.shared["text_ids"],
            img_ids=img_ids,
            return_dict=False,
        )[0]
        return out[:, : x_t.shape[1]]

    def _model_input(self, x_t: torch.Tensor, cond: Conditioning) -> tuple[torch.Tensor, torch.Tensor]:
        return x_t, cond.shared["img_ids"]

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> list[Image.Image]:
        vae = self.pipe.vae
        x = self.pipe._unpack_latents(latents, self.height, self.width, self.pipe.vae_scale_factor)
        x = x / vae.config.scaling_factor + vae.config.shift_factor
        image = vae.decode(x.to(device=vae.device, dtype=vae.dtype), return_dict=False)[0]
        return self.pipe.image_processor.postprocess(image, output_type="pil")


class FluxKontextFamily(FluxFamily):
    name = "flux-kontext"
    pipeline_classes = ("FluxKontextPipeline",)
    is_edit = True
    verified = True
    default_learning_rate = 2e-4  # upstream FLUX.1 Kontext recipe
    default_guidance = 2.5  # upstream FLUX.1 Kontext recipe

    def _add_sources(self, cond: Conditioning, sources: Sequence[Sequence[Image.Image]], dtype: Any) -> None:
        width, height = self.source_size
        images = [group[0] for group in sources]
        pixels = self.pipe.image_processor.preprocess(images, height, width)
        channels = self.transformer.config.in_channels // 4
        h, w = self.latent_hw()
        # Passing latents makes prepare_latents skip drawing noise and only encode the source image.
        given_latents = torch.zeros(
            len(images), (h // 2) * (w // 2), channels * 4, device=self.device, dtype=dtype
        )
        _, image_latents, _, image_ids = self.pipe.prepare_latents(
            pixels, len(images), channels, self.height, self.width, dtype, self.device, None, given_latents
        )
        cond.batched["image_latents"] = image_latents
        cond.shared["image_ids"] = image_ids

    def _model_input(self, x_t: torch.Tensor, cond: Conditioning) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = torch.cat([x_t, cond.batched["image_latents"].to(x_t.dtype)], dim=1)
        return hidden, torch.cat([cond.shared["img_ids"], cond.shared["image_ids"]], dim=0)
