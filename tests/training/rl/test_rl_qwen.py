"""Qwen-Image and Qwen-Image-Edit call layouts, checked on tiny pipelines built here.

The text encoder is a two-layer Qwen2.5-VL made from a config, with the tiny
critic's Qwen tokenizer (it has the chat and vision special tokens). The edit
pipeline resizes sources to one megapixel; the tests shrink that area to 32×32
in both the pipeline and the family so a CPU can run it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from rl_testkit import tiny_config

from gcr.training.rl.data import PromptRecord
from gcr.training.rl.families import QwenImageEditFamily, QwenImageFamily, family_for_class
from gcr.training.rl.sampling import denoise, seeded_generator
from gcr.training.rl.trainer import DiffusionNFTTrainer

SOURCE_AREA = 32 * 32


def _parts(critic_dir: Path) -> dict[str, Any]:
    from diffusers import AutoencoderKLQwenImage, FlowMatchEulerDiscreteScheduler, QwenImageTransformer2DModel
    from transformers import AutoTokenizer, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    tokenizer = AutoTokenizer.from_pretrained(critic_dir)
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            "rope_scaling": {"type": "mrope", "mrope_section": [2, 1, 1]},
        },
        vision_config={
            "depth": 1,
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_heads": 2,
            "out_hidden_size": 32,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "fullatt_block_indexes": [0],
            "window_size": 112,
        },
        image_token_id=tokenizer.convert_tokens_to_ids("<|image_pad|>"),
        vision_start_token_id=tokenizer.convert_tokens_to_ids("<|vision_start|>"),
        bos_token_id=None,
        eos_token_id=None,
    )
    torch.manual_seed(0)
    text_encoder = Qwen2_5_VLForConditionalGeneration(config).eval()
    torch.manual_seed(1)
    vae = AutoencoderKLQwenImage(
        base_dim=8,
        z_dim=4,
        dim_mult=[1, 2],
        num_res_blocks=1,
        temperal_downsample=[False],
        latents_mean=[0.0] * 4,
        latents_std=[1.0] * 4,
    ).eval()
    torch.manual_seed(2)
    transformer = QwenImageTransformer2DModel(
        patch_size=2,
        in_channels=16,
        out_channels=4,
        num_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        axes_dims_rope=(8, 4, 4),
    ).eval()
    return {
        "scheduler": FlowMatchEulerDiscreteScheduler(),
        "vae": vae,
        "text_encoder": text_encoder,
        "tokenizer": tokenizer,
        "transformer": transformer,
    }


def _t2i(critic_dir: Path) -> Any:
    from diffusers import QwenImagePipeline

    pipe = QwenImagePipeline(**_parts(critic_dir))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _edit(critic_dir: Path) -> Any:
    from diffusers import QwenImageEditPipeline
    from transformers import Qwen2VLImageProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor

    parts = _parts(critic_dir)
    processor = Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(),
        tokenizer=parts["tokenizer"],
        video_processor=Qwen2VLVideoProcessor(),
        chat_template=None,
    )
    pipe = QwenImageEditPipeline(processor=processor, **parts)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture
def small_edit_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    import diffusers.pipelines.qwenimage.pipeline_qwenimage_edit as edit_pipeline

    full = edit_pipeline.calculate_dimensions
    monkeypatch.setattr(edit_pipeline, "calculate_dimensions", lambda area, ratio: full(SOURCE_AREA, ratio))
    monkeypatch.setattr(QwenImageEditFamily, "source_area", SOURCE_AREA)


def test_qwen_image_rollout_matches_the_pipeline(tiny_critic_dir: Path) -> None:
    pipe = _t2i(tiny_critic_dir)
    assert family_for_class(type(pipe).__name__) is QwenImageFamily
    family = QwenImageFamily(pipe, resolution=16, max_sequence_length=64)
    prompts = ["a red cat", "a blue cup on a wooden table"]  # different lengths: the text mask matters
    cond = family.encode(prompts, None)
    noise = family.initial_noise(2, seeded_generator(1))
    x0, _ = denoise(family, pipe.transformer, cond, noise, 3)
    expected = pipe(
        prompts,
        latents=noise,
        num_inference_steps=3,
        height=16,
        width=16,
        max_sequence_length=64,
        true_cfg_scale=1.0,
        output_type="latent",
    ).images
    torch.testing.assert_close(x0, expected, atol=1e-5, rtol=1e-5)
    assert [im.size for im in family.decode(x0)] == [(16, 16), (16, 16)]


def test_qwen_image_edit_rollout_matches_the_pipeline(
    tiny_critic_dir: Path, small_edit_sources: None
) -> None:
    pipe = _edit(tiny_critic_dir)
    family = QwenImageEditFamily(pipe, resolution=16, max_sequence_length=256)
    assert family.source_size == (32, 32)
    sources = [Image.new("RGB", (32, 32), (200, 30, 30)), Image.effect_noise((32, 32), 60).convert("RGB")]
    prompts = ["make it blue", "add a boat"]
    cond = family.encode(prompts, [[s] for s in sources])
    assert cond.shared["img_shapes"] == [(1, 4, 4), (1, 8, 8)]
    noise = family.initial_noise(2, seeded_generator(1))
    x0, _ = denoise(family, pipe.transformer, cond, noise, 2)
    expected = pipe(
        image=sources,
        prompt=prompts,
        latents=noise,
        num_inference_steps=2,
        height=16,
        width=16,
        max_sequence_length=256,
        true_cfg_scale=1.0,
        output_type="latent",
    ).images
    torch.testing.assert_close(x0, expected, atol=1e-5, rtol=1e-5)


def test_qwen_image_edit_trains_and_its_lora_loads(
    tiny_critic_dir: Path, small_edit_sources: None, flux_dir: Path, tmp_path: Path
) -> None:
    paths = []
    for i, color in enumerate([(200, 30, 30), (30, 30, 200)]):
        paths.append(tmp_path / f"src{i}.png")
        Image.new("RGB", (48, 40), color).save(paths[-1])
    records = [
        PromptRecord(id=f"e{i}", prompt=p, source_paths=(paths[i],))
        for i, p in enumerate(["make it green", "add a boat"])
    ]
    pipe = _edit(tiny_critic_dir)
    cfg = tiny_config(
        flux_dir, tmp_path / "out", pretrained_model="in-memory", max_sequence_length=256, learning_rate=5e-2
    )
    trainer = DiffusionNFTTrainer(cfg, pipeline=pipe, train_prompts=records)
    assert trainer.family.name == "qwen-image-edit" and trainer.learning_rate == 5e-2
    result = trainer.train()
    (metrics,) = result.history
    assert result.global_step == 1 and metrics["samples/trained"] == 8 and metrics["grad_norm"] > 0
    # One optimizer step, after the loss was taken: the policy was the reference, so no KL term.
    assert metrics["loss/kl"] == 0.0 and metrics["loss"] == pytest.approx(
        cfg.policy_loss_scale * metrics["loss/policy"]
    )

    source = Image.open(paths[0]).convert("RGB").resize((32, 32))

    def image(p: Any) -> np.ndarray:
        return p(
            image=source,
            prompt="make it green",
            num_inference_steps=2,
            height=16,
            width=16,
            max_sequence_length=256,
            true_cfg_scale=1.0,
            generator=torch.Generator().manual_seed(0),
            output_type="np",
        ).images

    with torch.no_grad():
        trained = image(pipe)
    fresh = _edit(tiny_critic_dir)
    base = image(fresh)
    fresh.load_lora_weights(result.lora_dir)
    loaded = image(fresh)
    assert np.abs(loaded - base).max() > 1e-5
    np.testing.assert_allclose(loaded, trained, atol=1e-5)
