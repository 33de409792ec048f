"""Training on CUDA in bf16: one DiffusionNFT epoch (FLUX, FLUX Kontext) and two SFT steps of the critic.

With CUDA the automatic settings are bf16 weights and bf16 autocast (RL) and bf16
weights with bf16 mixed precision (SFT); these tests check that those settings are
what the runs actually used, that the trained weights moved, that the losses stayed
finite, and that the saved results have the expected dtypes and load back.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from gpukit import GPU, noise_image
from safetensors.torch import load_file

from gcr.training.rl.adapters import trainable_parameters
from gcr.training.rl.config import RewardConfig, RLConfig
from gcr.training.rl.data import PromptRecord
from gcr.training.rl.trainer import DiffusionNFTTrainer

pytestmark = GPU

PROMPTS = ("a red cat", "a blue cup", "a lighthouse at sunset", "two apples in a bowl")


def _rl_config(model: Path, out: Path) -> RLConfig:
    """Small, but at the production settings that matter here: dtype and precision left on auto."""
    return RLConfig(
        pretrained_model=str(model),
        train_prompts="in-memory",
        output_dir=str(out),
        rewards=[RewardConfig(name="brightness", function="gcr.training.rl.rewards:brightness")],
        resolution=32,
        num_inference_steps=3,
        group_size=4,
        prompts_per_epoch=2,
        sample_batch_size=8,
        train_batch_size=4,
        num_epochs=1,
        max_sequence_length=16,
        lora_rank=4,
        lora_alpha=8.0,
        learning_rate=1e-2,
        eval_every=0,
        save_every=0,
        log_with=[],
    )


def _records(kind: str, folder: Path) -> list[PromptRecord]:
    records = []
    for i, prompt in enumerate(PROMPTS[:2]):
        sources: tuple[Path, ...] = ()
        if kind == "flux-kontext":
            path = folder / f"source-{i}.png"
            noise_image(10 + i, (40, 40)).save(path)
            sources = (path,)
        records.append(PromptRecord(id=f"p{i}", prompt=prompt, source_paths=sources))
    return records


@pytest.mark.parametrize("kind", ["flux", "flux-kontext"])
def test_rl_epoch_in_bf16_on_cuda(
    kind: str, tiny_pipeline_dir: Callable[[str], Path], tmp_path: Path
) -> None:
    trainer = DiffusionNFTTrainer(
        _rl_config(tiny_pipeline_dir(kind), tmp_path / "out"),
        train_prompts=_records(kind, tmp_path),
    )
    assert trainer.accelerator.device.type == "cuda"
    assert trainer.accelerator.mixed_precision == "bf16"
    base = [p for n, p in trainer.transformer.named_parameters() if ".lora_" not in n]
    assert base and all(p.dtype == torch.bfloat16 and p.device.type == "cuda" for p in base)
    assert all(p.dtype == torch.float32 and p.device.type == "cuda" for p in trainer.params)  # LoRA in fp32
    before = [p.detach().clone() for p in trainable_parameters(trainer.transformer)]

    result = trainer.train()

    epoch = result.history[0]
    assert result.epochs == 1 and result.global_step == 1
    assert epoch["samples/total"] == 8.0 and epoch["samples/trained"] > 0
    for key in ("loss", "loss/policy", "loss/kl", "grad_norm", "reward/mean"):
        assert math.isfinite(epoch[key]), (key, epoch[key])
    after = trainable_parameters(trainer.transformer)
    assert any(not torch.equal(b, a) for b, a in zip(before, after, strict=True))
    assert all(torch.isfinite(a).all() for a in after)
    saved = load_file(result.lora_dir / "pytorch_lora_weights.safetensors")
    assert saved and all(torch.isfinite(t.float()).all() for t in saved.values())


@pytest.fixture(scope="module")
def sft_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six t2i preference pairs turned into a PARROT SFT dataset (the SFT tests' recipe)."""
    from stubs.sft_data import build_tiny_sft_dataset

    return build_tiny_sft_dataset(tmp_path_factory.mktemp("sft-data"))


def test_sft_steps_in_bf16_on_cuda(tiny_critic_dir: Path, sft_dataset: Path, tmp_path: Path) -> None:
    from gcr.training.sft.config import SFTRunConfig
    from gcr.training.sft.trainer import parameter_group, run_sft

    out = tmp_path / "sft"
    config = SFTRunConfig(
        model=str(tiny_critic_dir),
        dataset=str(sft_dataset),
        output_dir=str(out),
        finetune="full",
        learning_rate=1e-3,
        max_steps=2,
        per_device_train_batch_size=2,
        gradient_accumulation_steps=1,
        warmup_ratio=0.0,
        bf16=True,  # the default, as upstream
        gradient_checkpointing=True,  # the default
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        max_image_pixels=64 * 64,
        max_length=4096,
        eval_pairwise=True,
        eval_max_pairs=2,
        eval_max_new_tokens=16,
        eval_batch_size=2,
    )
    result = run_sft(config)
    assert result.global_step == 2
    assert result.train_losses and all(math.isfinite(x) for x in result.train_losses)
    saved, base = load_file(out / "model.safetensors"), load_file(tiny_critic_dir / "model.safetensors")
    assert {t.dtype for t in saved.values()} == {torch.bfloat16}  # trained and saved in bf16
    changed = {k for k in base if not torch.equal(saved[k].float(), base[k].to(torch.bfloat16).float())}
    assert changed and all(parameter_group(k) == "language" for k in changed)  # vision tower stays frozen
    # The evaluation ran the trained folder on the GPU through the in-process critic.
    assert result.eval is not None and "error" not in result.eval and result.eval["pairs"] == 2
    assert result.eval["overall"]["total"] == 2  # each pair judged (random answers count as failed, not 0)
    assert json.loads((out / "sft_result.json").read_text())["global_step"] == 2
