"""Which dtype the SFT student trains in: bf16 mixed precision keeps weights the optimizer updates in fp32."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gcr.training.sft.config import SFTRunConfig
from gcr.training.sft.trainer import _load_student, student_dtype


def _config(**overrides: object) -> SFTRunConfig:
    settings: dict[str, object] = {"model": "unused", "dataset": "unused", "output_dir": "unused"}
    return SFTRunConfig(**{**settings, **overrides})


@pytest.mark.parametrize(
    ("finetune", "bf16", "deepspeed", "expected"),
    [
        ("full", True, False, torch.float32),  # plain DDP / one GPU: fp32 master weights under bf16 autocast
        ("full", True, True, torch.bfloat16),  # DeepSpeed keeps its own fp32 master copy
        ("lora", True, False, torch.bfloat16),  # frozen base; peft keeps the adapters in fp32
        ("full", False, False, torch.float32),
        ("lora", False, True, torch.float32),
    ],
)
def test_student_dtype(finetune: str, bf16: bool, deepspeed: bool, expected: torch.dtype) -> None:
    assert student_dtype(_config(finetune=finetune, bf16=bf16), deepspeed=deepspeed) == expected


def test_bf16_weights_would_lose_updates_of_the_upstream_learning_rate() -> None:
    """Why full fine-tuning keeps fp32 weights: an update of lr=1e-5 vanishes on a bf16 weight of 0.02."""
    weight = torch.full((4,), 0.02)
    updated = weight - 1e-5
    assert torch.equal(updated.to(torch.bfloat16), weight.to(torch.bfloat16))
    assert not torch.equal(updated, weight)


def test_the_student_loads_in_the_dtype_asked_for(tiny_critic_dir: Path) -> None:
    config = _config(model=str(tiny_critic_dir))
    _, model = _load_student(config, torch.bfloat16)
    assert model.dtype == torch.bfloat16
    _, model = _load_student(config, torch.float32)
    assert model.dtype == torch.float32
