"""Device names are checked against the GPUs this process sees before any weights load."""

from __future__ import annotations

import pytest
import torch

from gcr.errors import ConfigError
from gcr.generators.loading import resolve_device, resolve_dtype


@pytest.fixture
def two_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)  # as after torch.cuda.set_device(1)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)


@pytest.mark.usefixtures("two_gpus")
def test_cuda_resolves_to_the_current_device_with_bf16() -> None:
    """A bare ``cuda`` is pinned to this thread's current GPU, so a load in a worker thread uses it too."""
    assert resolve_device(None) == torch.device("cuda", 1)
    assert resolve_device("auto") == resolve_device("cuda") == torch.device("cuda", 1)
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    assert resolve_dtype(None, resolve_device("cuda")) is torch.bfloat16


@pytest.mark.usefixtures("two_gpus")
def test_a_gpu_index_beyond_the_visible_ones_is_a_config_error() -> None:
    with pytest.raises(
        ConfigError, match=r"sees 2 CUDA device\(s\) \(cuda:0 to cuda:1\).*CUDA_VISIBLE_DEVICES"
    ):
        resolve_device("cuda:2")


def test_cuda_without_cuda_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="CUDA is not available here: use --device cpu"):
        resolve_device("cuda:0")
