"""The one device and dtype rule of gcr (gcr.devices) for generators, the in-process critic, judges and RL."""

from __future__ import annotations

import pytest
import torch

from gcr.devices import parse_dtype, resolve_device, resolve_device_and_dtype, training_dtype
from gcr.errors import ConfigError


def test_device_and_dtype_defaults_on_this_machine() -> None:
    assert resolve_device_and_dtype() == (torch.device("cpu"), torch.float32)
    assert resolve_device_and_dtype("cpu", "bf16") == (torch.device("cpu"), torch.bfloat16)
    assert resolve_device_and_dtype(None, torch.float16)[1] is torch.float16


def test_device_and_dtype_defaults_with_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device_and_dtype() == (torch.device("cuda", 0), torch.bfloat16)
    assert resolve_device_and_dtype("cuda:1") == (torch.device("cuda:1"), torch.bfloat16)
    assert resolve_device_and_dtype("cpu") == (torch.device("cpu"), torch.float32)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert resolve_device_and_dtype() == (torch.device("cuda", 0), torch.float16)


def test_device_and_dtype_defaults_with_mps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    # The same rule as the generators (gcr.devices): bfloat16 on Apple MPS.
    assert resolve_device_and_dtype() == (torch.device("mps"), torch.bfloat16)
    assert resolve_device_and_dtype("mps", "float32") == (torch.device("mps"), torch.float32)


def test_unusable_device_or_dtype_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="CUDA is not available"):
        resolve_device_and_dtype("cuda")
    with pytest.raises(ConfigError, match="unknown device"):
        resolve_device_and_dtype("tpu-ish")
    with pytest.raises(ConfigError, match="unknown dtype"):
        resolve_device_and_dtype("cpu", "int3")


@pytest.mark.parametrize("bf16", [True, False])
def test_training_never_picks_float16_on_its_own(bf16: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    from gcr.training.rl.config import RLConfig
    from gcr.training.rl.runtime import resolve_dtype as rl_dtype

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    cuda = resolve_device("cuda")
    # Inference falls back to float16 on a GPU without bf16; training falls back to float32.
    assert resolve_device_and_dtype("cuda")[1] is (torch.bfloat16 if bf16 else torch.float16)
    assert training_dtype(cuda) is (torch.bfloat16 if bf16 else torch.float32)
    assert training_dtype(torch.device("cpu")) is torch.float32
    assert training_dtype(torch.device("mps")) is torch.float32
    # The RL run follows the same rule for `dtype: auto` and takes an explicit dtype as named.
    assert rl_dtype(RLConfig(dtype="auto"), cuda) is training_dtype(cuda)
    assert rl_dtype(RLConfig(dtype="auto"), torch.device("cpu")) is torch.float32
    assert rl_dtype(RLConfig(dtype="float16"), torch.device("cpu")) is torch.float16


def test_dtype_names() -> None:
    assert parse_dtype("bf16") is parse_dtype("torch.bfloat16") is torch.bfloat16
    assert parse_dtype(" Half ") is torch.float16 and parse_dtype(torch.float32) is torch.float32
    with pytest.raises(ConfigError, match="unknown dtype 'auto': use float32, bfloat16 or float16"):
        parse_dtype("auto")  # no device here to decide what auto means
