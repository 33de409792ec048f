"""The in-process critic pins its CUDA device when it is created, not when its worker thread loads it."""

from __future__ import annotations

import pytest
import torch

from gcr.critic.backends.transformers_local import TransformersBackend


@pytest.fixture
def current_gpu_is_1(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two GPUs, the process set to the second one (as accelerate does on DDP rank 1)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)


@pytest.mark.usefixtures("current_gpu_is_1")
@pytest.mark.parametrize("device", [None, "cuda"])
def test_a_bare_cuda_device_becomes_the_current_gpu(device: str | None) -> None:
    backend = TransformersBackend("org/some-critic", device=device)
    assert backend.device == torch.device("cuda", 1) and backend.dtype == torch.bfloat16
    assert not backend.loaded  # nothing was loaded to find that out


@pytest.mark.usefixtures("current_gpu_is_1")
def test_an_explicit_gpu_is_kept() -> None:
    assert TransformersBackend("org/some-critic", device="cuda:0").device == torch.device("cuda", 0)
