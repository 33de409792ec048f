"""The RL loader's dtype reaches diffusers through the argument every supported version takes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from diffusers import DiffusionPipeline
from rl_testkit import tiny_config

from gcr.training.rl.runtime import load_pipeline


def test_weights_load_in_the_run_dtype_on_a_diffusers_without_the_dtype_argument(
    flux_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Emulates diffusers before huggingface/diffusers#14205, which knew only ``torch_dtype``."""
    original = DiffusionPipeline.from_pretrained.__func__

    def old_from_pretrained(cls: Any, source: Any, **kwargs: Any) -> Any:
        kwargs.pop("dtype", None)  # not an argument there: the weights would load in fp32
        return original(cls, source, **kwargs)

    monkeypatch.setattr(DiffusionPipeline, "from_pretrained", classmethod(old_from_pretrained))
    config = tiny_config(flux_dir, tmp_path / "out", dtype="bfloat16")
    pipe, family = load_pipeline(config, torch.device("cpu"), torch.bfloat16)
    assert family.name == "flux"
    assert pipe.transformer.dtype == torch.bfloat16 and pipe.text_encoder_2.dtype == torch.bfloat16
    assert not any(p.requires_grad for p in pipe.transformer.parameters())
