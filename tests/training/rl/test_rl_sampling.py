"""Rollouts follow the diffusers pipelines exactly (FLUX.1 and FLUX.1 Kontext on tiny models)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gcr.errors import ConfigError
from gcr.generators.presets import pipeline_class_name
from gcr.training.rl.families import (
    FAMILIES,
    Conditioning,
    FluxFamily,
    FluxKontextFamily,
    family_for_class,
)
from gcr.training.rl.sampling import denoise, sample_groups, seeded_generator

PROMPTS = ["a red cat", "a blue cup"]


def test_flux_rollout_matches_the_pipeline(flux_dir: Path) -> None:
    from diffusers import FluxPipeline

    pipe = FluxPipeline.from_pretrained(flux_dir)
    pipe.set_progress_bar_config(disable=True)
    family = FluxFamily(pipe, resolution=16, max_sequence_length=16)
    cond = family.encode(PROMPTS, None)
    noise = family.initial_noise(2, seeded_generator(1))
    x0, times = denoise(family, pipe.transformer, cond, noise, 3)
    expected = pipe(
        PROMPTS,
        latents=noise,
        num_inference_steps=3,
        height=16,
        width=16,
        guidance_scale=3.5,
        max_sequence_length=16,
        output_type="latent",
    ).images
    torch.testing.assert_close(x0, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(times, torch.tensor([1.0, 2 / 3, 1 / 3]))
    images = family.decode(x0)
    assert [im.size for im in images] == [(16, 16), (16, 16)]


def test_kontext_rollout_matches_the_pipeline(kontext_dir: Path) -> None:
    from diffusers import FluxKontextPipeline

    pipe = FluxKontextPipeline.from_pretrained(kontext_dir)
    pipe.set_progress_bar_config(disable=True)
    family = FluxKontextFamily(pipe, resolution=16, max_sequence_length=16)
    sources = [Image.new("RGB", (16, 16), (200, 30, 30)), Image.effect_noise((16, 16), 60).convert("RGB")]
    cond = family.encode(["make it blue", "add a boat"], [[s] for s in sources])
    assert cond.batched["image_latents"].shape[1] == 16  # 16 px / VAE 2 / packing 2 = 4 x 4 tokens
    noise = family.initial_noise(2, seeded_generator(2))
    x0, _ = denoise(family, pipe.transformer, cond, noise, 2)
    expected = pipe(
        image=sources,
        prompt=["make it blue", "add a boat"],
        latents=noise,
        num_inference_steps=2,
        height=16,
        width=16,
        guidance_scale=2.5,
        max_sequence_length=16,
        output_type="latent",
        _auto_resize=False,
        max_area=16 * 16,
    ).images
    torch.testing.assert_close(x0, expected, atol=1e-5, rtol=1e-5)
    with pytest.raises(ConfigError, match="one source image per prompt"):
        family.encode(["make it blue"], None)


def test_groups_are_seeded_and_laid_out_by_prompt(flux_dir: Path) -> None:
    from diffusers import FluxPipeline

    pipe = FluxPipeline.from_pretrained(flux_dir)
    family = FluxFamily(pipe, resolution=16, max_sequence_length=16)
    cond = family.encode(PROMPTS, None)

    def run(seed: int):
        return sample_groups(
            family,
            pipe.transformer,
            cond,
            group_size=3,
            num_steps=2,
            batch_size=4,
            generator=seeded_generator(seed, 0),
        )

    first, again, other = run(5), run(5), run(6)
    assert first.prompt_index.tolist() == [0, 0, 0, 1, 1, 1]
    assert len(first) == 6 and len(first.images) == 6 and first.latents.shape == (6, 16, 16)
    torch.testing.assert_close(first.latents, again.latents)
    assert not torch.allclose(first.latents, other.latents)
    assert not torch.allclose(first.latents[0], first.latents[1])  # each sample has its own noise


def test_batches_handed_over_as_sampled_are_the_same_samples(flux_dir: Path) -> None:
    """Decoding each batch as it is sampled (to score it during the next) changes no sample."""
    from diffusers import FluxPipeline

    pipe = FluxPipeline.from_pretrained(flux_dir)
    family = FluxFamily(pipe, resolution=16, max_sequence_length=16)
    cond = family.encode(PROMPTS, None)
    handed: list[tuple[list, list[int]]] = []

    def run(on_images=None):
        return sample_groups(
            family, pipe.transformer, cond, group_size=3, num_steps=2, batch_size=4,
            generator=seeded_generator(5, 0), on_images=on_images,
        )  # fmt: skip

    whole = run()
    streamed = run(lambda images, index: handed.append((images, index.tolist())))
    assert [index for _, index in handed] == [[0, 0, 0, 1], [1, 1]]  # one call per rollout batch
    assert [im for images, _ in handed for im in images] == streamed.images
    torch.testing.assert_close(streamed.latents, whole.latents)
    assert [np.asarray(a).tolist() for a in streamed.images] == [np.asarray(b).tolist() for b in whole.images]


def test_conditioning_take_and_family_lookup(flux_dir: Path) -> None:
    cond = Conditioning(batched={"a": torch.arange(3).view(3, 1), "mask": None}, shared={"ids": 7})
    taken = cond.take([2, 2, 0])
    assert taken.batched["a"].flatten().tolist() == [2, 2, 0] and taken.batched["mask"] is None
    assert taken.shared == {"ids": 7} and len(taken) == 3
    assert pipeline_class_name(flux_dir) == "FluxPipeline"
    assert family_for_class("FluxKontextPipeline") is FluxKontextFamily
    assert set(FAMILIES) == {"flux", "flux-kontext", "sd3", "qwen-image", "qwen-image-edit"}
    with pytest.raises(ConfigError, match="not a supported flow-matching pipeline"):
        family_for_class("StableDiffusionPipeline")


def test_resolution_and_guidance_checks(flux_dir: Path) -> None:
    from diffusers import FluxPipeline

    pipe = FluxPipeline.from_pretrained(flux_dir)
    with pytest.raises(ConfigError, match="multiple of 4"):
        FluxFamily(pipe, resolution=18)
    assert FluxFamily(pipe, resolution=16).guidance_scale == 3.5
    assert FluxFamily(pipe, resolution=16, guidance_scale=1.5).guidance_scale == 1.5
    with pytest.raises(ConfigError, match="text-to-image model"):
        FluxFamily(pipe, resolution=16).encode(["x"], [[Image.new("RGB", (16, 16))]])
