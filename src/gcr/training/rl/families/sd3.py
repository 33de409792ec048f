"""Stable Diffusion 3 / 3.5 (text-to-image).

Checked against ``StableDiffusion3Pipeline`` on a tiny model in the tests (same
latents for the same noise; a trained LoRA loads with ``load_lora_weights``).
SD3 latents are not packed (B, C, h, w); the transformer takes the timestep on
the 0-1000 scale and has no guidance embedding, so rollouts are CFG-free (as
DiffusionNFT trains; the pipeline's own default is CFG 7.0, so expect the
untrained model's rollouts to look weaker than its usual samples).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from PIL import Image

from gcr.training.rl.families.base import Conditioning, FlowFamily, TransformerCall


class SD3Family(FlowFamily):
    name = "sd3"
    pipeline_classes = ("StableDiffusion3Pipeline",)
    verified = True
    default_learning_rate = 3e-4  # flow_grpo base configuration
    default_guidance = None
    default_max_sequence_length = 256

    @property
    def size_multiple(self) -> int:
        return self.pipe.vae_scale_factor * self.transformer.config.patch_size

    def latent_hw(self) -> tuple[int, int]:
        vsf = self.pipe.vae_scale_factor
        return self.height // vsf, self.width // vsf

    @torch.no_grad()
    def encode(self, prompts: Sequence[str], sources: Sequence[Sequence[Image.Image]] | None) -> Conditioning:
        self.check_sources(prompts, sources)
        prompt_embeds, _, pooled, _ = self.pipe.encode_prompt(
            prompt=list(prompts),
            prompt_2=None,
            prompt_3=None,
            device=self.device,
            num_images_per_prompt=1,
            do_classifier_free_guidance=False,
            max_sequence_length=self.max_sequence_length,
        )
        return Conditioning(batched={"prompt_embeds": prompt_embeds, "pooled_prompt_embeds": pooled})

    def initial_noise(self, batch: int, generator: torch.Generator | None) -> torch.Tensor:
        from diffusers.utils.torch_utils import randn_tensor

        h, w = self.latent_hw()
        shape = (batch, self.transformer.config.in_channels, h, w)
        return randn_tensor(shape, generator=generator, device=self.device, dtype=self.dtype)

    def _schedule_args(self, num_steps: int) -> tuple[list[float] | None, dict[str, Any]]:
        config = self.pipe.scheduler.config
        if not config.get("use_dynamic_shifting", None):
            return None, {}
        from diffusers.pipelines.stable_diffusion_3.pipeline_stable_diffusion_3 import calculate_shift

        h, w = self.latent_hw()
        patch = self.transformer.config.patch_size
        mu = calculate_shift(
            (h // patch) * (w // patch),
            config.get("base_image_seq_len", 256),
            config.get("max_image_seq_len", 4096),
            config.get("base_shift", 0.5),
            config.get("max_shift", 1.16),
        )
        return None, {"mu": mu}

    def velocity(
        self, model: TransformerCall, x_t: torch.Tensor, t: torch.Tensor, cond: Conditioning
    ) -> torch.Tensor:
        return model(
            hidden_states=x_t,
            timestep=(t * 1000).to(x_t.dtype),
            encoder_hidden_states=cond.batched["prompt_embeds"],
            pooled_projections=cond.batched["pooled_prompt_embeds"],
            return_dict=False,
        )[0]

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> list[Image.Image]:
        vae = self.pipe.vae
        x = latents / vae.config.scaling_factor + vae.config.shift_factor
        image = vae.decode(x.to(device=vae.device, dtype=vae.dtype), return_dict=False)[0]
        return self.pipe.image_processor.postprocess(image, output_type="pil")
