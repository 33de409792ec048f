"""Qwen-Image (text-to-image) and Qwen-Image-Edit.

Checked against ``QwenImagePipeline`` and ``QwenImageEditPipeline`` on tiny
models in the tests (a two-layer Qwen2.5-VL text encoder; the edit test shrinks
the source area to 32×32 in both the pipeline and here, since one megapixel is
too slow for a CPU test). Latents are packed like FLUX's but carry a frame axis
before packing; the transformer takes ``timestep = t``, a text mask and
``img_shapes``. The edit model appends source-image tokens, encodes the source
at about one megapixel for the text encoder and the VAE (as the pipeline does),
and keeps the first tokens of the output. Rollouts are CFG-free: true CFG
(upstream inference used 4.0 for Qwen-Image-Edit) is not used while training.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image

from gcr.training.rl.families.base import Conditioning, FlowFamily, TransformerCall
from gcr.training.rl.families.flux import _image_seq_shift


class QwenImageFamily(FlowFamily):
    name = "qwen-image"
    pipeline_classes = ("QwenImagePipeline",)
    verified = True
    default_learning_rate = 3e-4  # upstream Qwen-Image-Edit recipe
    default_guidance = None
    default_max_sequence_length = 512

    @torch.no_grad()
    def encode(self, prompts: Sequence[str], sources: Sequence[Sequence[Image.Image]] | None) -> Conditioning:
        self.check_sources(prompts, sources)
        embeds, mask = self.pipe.encode_prompt(
            prompt=list(prompts),
            device=self.device,
            num_images_per_prompt=1,
            max_sequence_length=self.max_sequence_length,
        )
        h, w = self.latent_hw()
        cond = Conditioning(
            batched={"prompt_embeds": embeds, "prompt_embeds_mask": mask},
            shared={"img_shapes": [(1, h // 2, w // 2)]},
        )
        return cond

    def initial_noise(self, batch: int, generator: torch.Generator | None) -> torch.Tensor:
        from diffusers.utils.torch_utils import randn_tensor

        channels = self.transformer.config.in_channels // 4
        h, w = self.latent_hw()
        noise = randn_tensor(
            (batch, 1, channels, h, w), generator=generator, device=self.device, dtype=self.dtype
        )
        return self.pipe._pack_latents(noise, batch, channels, h, w)

    def _schedule_args(self, num_steps: int) -> tuple[list[float] | None, dict[str, Any]]:
        h, w = self.latent_hw()
        sigmas = np.linspace(1.0, 1 / num_steps, num_steps).tolist()
        return sigmas, {"mu": _image_seq_shift(self.pipe.scheduler.config, (h // 2) * (w // 2))}

    def velocity(
        self, model: TransformerCall, x_t: torch.Tensor, t: torch.Tensor, cond: Conditioning
    ) -> torch.Tensor:
        hidden = x_t
        if cond.batched.get("image_latents") is not None:
            hidden = torch.cat([x_t, cond.batched["image_latents"].to(x_t.dtype)], dim=1)
        out = model(
            hidden_states=hidden,
            timestep=t.to(x_t.dtype),
            guidance=self.guidance(x_t.shape[0]),
            encoder_hidden_states_mask=cond.batched["prompt_embeds_mask"],
            encoder_hidden_states=cond.batched["prompt_embeds"],
            img_shapes=[list(cond.shared["img_shapes"])] * x_t.shape[0],
            return_dict=False,
        )[0]
        return out[:, : x_t.shape[1]]

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> list[Image.Image]:
        vae = self.pipe.vae
        x = self.pipe._unpack_latents(latents, self.height, self.width, self.pipe.vae_scale_factor).to(
            vae.dtype
        )
        z = vae.config.z_dim
        mean = torch.tensor(vae.config.latents_mean).view(1, z, 1, 1, 1).to(x.device, x.dtype)
        std = torch.tensor(vae.config.latents_std).view(1, z, 1, 1, 1).to(x.device, x.dtype)
        image = vae.decode(x * std + mean, return_dict=False)[0][:, :, 0]
        return self.pipe.image_processor.postprocess(image, output_type="pil")


class QwenImageEditFamily(QwenImageFamily):
    name = "qwen-image-edit"
    pipeline_classes = ("QwenImageEditPipeline",)
    is_edit = True
    default_learning_rate = 3e-4  # upstream Qwen-Image-Edit recipe
    #: Pixel area the pipeline resizes source images to (its ``calculate_dimensions``).
    source_area: ClassVar[int] = 1024 * 1024

    @property
    def source_size(self) -> tuple[int, int]:
        ratio = self.width / self.height
        exact_width = math.sqrt(self.source_area * ratio)
        return round(exact_width / 32) * 32, round(exact_width / ratio / 32) * 32

    @torch.no_grad()
    def encode(self, prompts: Sequence[str], sources: Sequence[Sequence[Image.Image]] | None) -> Conditioning:
        self.check_sources(prompts, sources)
        width, height = self.source_size
        images = [self.pipe.image_processor.resize(group[0], height, width) for group in sources or []]
        embeds, mask = self.pipe.encode_prompt(
            prompt=list(prompts),
            image=images,
            device=self.device,
            num_images_per_prompt=1,
            max_sequence_length=self.max_sequence_length,
        )
        pixels = self.pipe.image_processor.preprocess(images, height, width).unsqueeze(2)
        channels = self.transformer.config.in_channels // 4
        h, w = self.latent_hw()
        # Passing latents makes prepare_latents skip drawing noise and only encode the source image.
        given_latents = torch.zeros(
            len(images), (h // 2) * (w // 2), channels * 4, device=self.device, dtype=embeds.dtype
        )
        _, image_latents = self.pipe.prepare_latents(
            pixels,
            len(images),
            channels,
            self.height,
            self.width,
            embeds.dtype,
            self.device,
            None,
            given_latents,
        )
        vsf = self.pipe.vae_scale_factor
        return Conditioning(
            batched={"prompt_embeds": embeds, "prompt_embeds_mask": mask, "image_latents": image_latents},
            shared={"img_shapes": [(1, h // 2, w // 2), (1, height // vsf // 2, width // vsf // 2)]},
        )
