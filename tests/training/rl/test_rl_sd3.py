"""SD3's call layout, checked on a tiny StableDiffusion3Pipeline assembled from the tiny FLUX parts.

The FLUX folder provides the CLIP and T5 tokenizers, the T5 encoder and the VAE;
the two CLIP encoders with projections and the SD3 transformer are made here from
small configs with fixed seeds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from rl_testkit import records, tiny_config

from gcr.training.rl.families import SD3Family, family_for_class
from gcr.training.rl.sampling import denoise, seeded_generator
from gcr.training.rl.trainer import DiffusionNFTTrainer


def _tiny_sd3(flux_dir: Path) -> Any:
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        SD3Transformer2DModel,
        StableDiffusion3Pipeline,
    )
    from transformers import (
        CLIPTextConfig,
        CLIPTextModelWithProjection,
        CLIPTokenizer,
        T5EncoderModel,
        T5Tokenizer,
    )

    tokenizer = CLIPTokenizer.from_pretrained(flux_dir, subfolder="tokenizer")

    def clip(seed: int) -> Any:
        torch.manual_seed(seed)
        config = CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=16,
            intermediate_size=37,
            num_attention_heads=2,
            num_hidden_layers=2,
            max_position_embeddings=77,
            projection_dim=16,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        return CLIPTextModelWithProjection(config).eval()

    torch.manual_seed(3)
    transformer = SD3Transformer2DModel(
        sample_size=8,
        patch_size=2,
        in_channels=4,
        num_layers=1,
        attention_head_dim=8,
        num_attention_heads=2,
        joint_attention_dim=32,
        caption_projection_dim=16,
        pooled_projection_dim=32,
        out_channels=4,
        pos_embed_max_size=16,
    ).eval()
    pipe = StableDiffusion3Pipeline(
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        vae=AutoencoderKL.from_pretrained(flux_dir, subfolder="vae"),
        text_encoder=clip(1),
        tokenizer=tokenizer,
        text_encoder_2=clip(2),
        tokenizer_2=tokenizer,
        text_encoder_3=T5EncoderModel.from_pretrained(flux_dir, subfolder="text_encoder_2"),
        tokenizer_3=T5Tokenizer.from_pretrained(flux_dir, subfolder="tokenizer_2"),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture
def sd3_pipe(flux_dir: Path) -> Any:
    return _tiny_sd3(flux_dir)


def test_sd3_rollout_matches_the_pipeline(sd3_pipe: Any) -> None:
    assert family_for_class(type(sd3_pipe).__name__) is SD3Family
    family = SD3Family(sd3_pipe, resolution=16, max_sequence_length=16)
    prompts = ["a red cat", "a blue cup"]
    cond = family.encode(prompts, None)
    noise = family.initial_noise(2, seeded_generator(1))
    x0, times = denoise(family, sd3_pipe.transformer, cond, noise, 3)
    expected = sd3_pipe(
        prompts,
        latents=noise,
        num_inference_steps=3,
        height=16,
        width=16,
        guidance_scale=1.0,
        max_sequence_length=16,
        output_type="latent",
    ).images
    torch.testing.assert_close(x0, expected, atol=1e-5, rtol=1e-5)
    assert times[0] == pytest.approx(1.0) and len(times) == 3
    assert [im.size for im in family.decode(x0)] == [(16, 16), (16, 16)]


def test_sd3_trains_and_its_lora_loads(sd3_pipe: Any, flux_dir: Path, tmp_path: Path) -> None:
    cfg = tiny_config(flux_dir, tmp_path, pretrained_model="in-memory", learning_rate=5e-2, num_epochs=2)
    trainer = DiffusionNFTTrainer(cfg, pipeline=sd3_pipe, train_prompts=records(2))
    result = trainer.train()
    assert trainer.family.name == "sd3" and result.global_step == 2
    # Epoch 0 trains from the reference (zero adapter, no KL); epoch 1 from the adapter it moved.
    first, second = result.history
    assert first["loss/kl"] == 0.0 and second["loss/kl"] > 0.0 and second["loss"] != first["loss"]
    assert all(h["grad_norm"] > 0 and h["samples/trained"] == 8 for h in result.history)

    def image(pipe: Any) -> np.ndarray:
        return pipe(
            "a red cat",
            num_inference_steps=2,
            height=16,
            width=16,
            guidance_scale=1.0,
            max_sequence_length=16,
            generator=torch.Generator().manual_seed(0),
            output_type="np",
        ).images

    with torch.no_grad():
        trained = image(sd3_pipe)
    fresh = _tiny_sd3(flux_dir)
    base = image(fresh)
    fresh.load_lora_weights(result.lora_dir)
    loaded = image(fresh)
    assert np.abs(loaded - base).max() > 1e-4
    np.testing.assert_allclose(loaded, trained, atol=1e-5)
