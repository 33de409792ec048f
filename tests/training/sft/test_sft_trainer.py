"""SFT: which parameters train (frozen vision tower and projector, LoRA placement), and a full run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForImageTextToText

from gcr.errors import DatasetError
from gcr.training.sft.config import SFTRunConfig
from gcr.training.sft.trainer import freeze_parts, load_sft_splits, lora_config, parameter_group, run_sft


@pytest.mark.parametrize(
    ("name", "group"),
    [
        ("model.visual.blocks.0.attn.qkv.weight", "vision"),
        ("model.visual.patch_embed.proj.weight", "vision"),
        ("model.visual.merger.linear_fc1.weight", "projector"),
        ("model.visual.deepstack_merger_list.0.norm.weight", "projector"),
        ("model.multi_modal_projector.linear_1.weight", "projector"),
        ("model.vision_tower.encoder.layers.0.mlp.fc1.weight", "vision"),
        ("model.language_model.layers.0.self_attn.q_proj.weight", "language"),
        ("lm_head.weight", "language"),
    ],
)
def test_parameter_groups(name: str, group: str) -> None:
    assert parameter_group(name) == group


@pytest.fixture
def tiny_model(tiny_critic_dir: Path):
    return AutoModelForImageTextToText.from_pretrained(tiny_critic_dir)


def test_freezing_the_vision_tower_and_projector(tiny_model) -> None:
    counts = freeze_parts(tiny_model, vision_tower=True, projector=True)
    assert counts["vision"] == counts["projector"] == 0 and counts["language"] > 0
    for name, param in tiny_model.named_parameters():
        assert param.requires_grad == (parameter_group(name) == "language"), name
    counts = freeze_parts(tiny_model, vision_tower=True, projector=False)
    assert counts["projector"] == 0  # already frozen parameters stay frozen


def test_lora_goes_to_the_language_model_only(tiny_model) -> None:
    from peft import get_peft_model

    cfg = SFTRunConfig(
        model="m", dataset="d", output_dir="o", finetune="lora", lora_target_modules=["q_proj", "v_proj"]
    )
    peft_model = get_peft_model(tiny_model, lora_config(cfg, tiny_model))
    adapted = {n.rsplit(".lora_A", 1)[0] for n, _ in peft_model.named_parameters() if "lora_A" in n}
    assert adapted and all("language_model" in n and n.endswith(("q_proj", "v_proj")) for n in adapted)
    assert len(adapted) == 4  # two layers, two projections


def test_lora_with_a_trainable_projector(tiny_critic_dir: Path) -> None:
    from peft import get_peft_model

    model = AutoModelForImageTextToText.from_pretrained(tiny_critic_dir)
    cfg = SFTRunConfig(model="m", dataset="d", output_dir="o", finetune="lora", freeze_projector=False)
    config = lora_config(cfg, model)
    assert sorted(config.modules_to_save) == ["deepstack_merger_list.0", "deepstack_merger_list.1", "merger"]
    peft_model = get_peft_model(model, config)
    groups = {parameter_group(n) for n, p in peft_model.named_parameters() if p.requires_grad}
    assert groups == {"language", "projector"}


def test_dataset_errors(tmp_path: Path, sft_dataset_dir: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        load_sft_splits(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="not a datasets save_to_disk folder"):
        load_sft_splits(tmp_path / "empty")
    splits = load_sft_splits(sft_dataset_dir)  # the PARROT folder or its hf/ subfolder
    assert set(splits) == {"train", "validation"}


def test_full_finetune_trains_the_language_model_only(
    tiny_critic_dir: Path, sft_dataset_dir: Path, tmp_path: Path
):
    out = tmp_path / "full"
    config = SFTRunConfig(
        model=str(tiny_critic_dir),
        dataset=str(sft_dataset_dir),
        output_dir=str(out),
        finetune="full",
        learning_rate=1e-3,
        max_steps=2,
        per_device_train_batch_size=2,
        gradient_accumulation_steps=1,
        warmup_ratio=0.0,
        bf16=False,
        gradient_checkpointing=False,
        logging_steps=1,
        save_strategy="no",
        max_image_pixels=64 * 64,
        max_length=4096,
        eval_pairwise=False,
    )
    result = run_sft(config)
    assert result.global_step == 2 and result.adapter_dir is None and result.eval is None
    assert result.trainable_parameters["vision"] == result.trainable_parameters["projector"] == 0
    saved, base = load_file(out / "model.safetensors"), load_file(tiny_critic_dir / "model.safetensors")
    assert set(saved) == set(base)
    changed = {k for k in base if not torch.equal(saved[k], base[k])}
    assert changed and all(parameter_group(k) == "language" for k in changed)
    assert any("q_proj" in k for k in changed)
    for name in (
        "config.json",
        "generation_config.json",
        "processor_config.json",
        "tokenizer.json",
        "chat_template.jinja",
    ):
        assert (out / name).is_file(), name
    assert json.loads((out / "sft_result.json").read_text())["global_step"] == 2
