"""Device names are checked against the GPUs this process sees before any weights load."""

from __future__ import annotations

import pytest
import torch

from gcr.devices import resolve_device, resolve_device_and_dtype, resolve_dtype
from gcr.errors import ConfigError


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


@pytest.mark.parametrize("bf16", [True, False])
@pytest.mark.parametrize("kind", ["cpu", "cuda", "mps"])
def test_generators_and_the_local_critic_pick_the_same_device_and_dtype(
    kind: str, bf16: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gcr.generators.diffusers_adapter import DiffusersGenerator

    monkeypatch.setattr(torch.cuda, "is_available", lambda: kind == "cuda")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: kind == "mps")
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    generator = DiffusersGenerator("stabilityai/stable-diffusion-xl-base-1.0")
    cuda = torch.bfloat16 if bf16 else torch.float16
    expected = {"cpu": torch.float32, "cuda": cuda, "mps": torch.bfloat16}
    assert (generator.device.type, generator.dtype) == (kind, expected[kind])
    assert resolve_device_and_dtype() == (generator.device, generator.dtype)


@pytest.mark.parametrize(
    ("model", "family"),
    [("black-forest-labs/FLUX.1-dev", "flux-dev"), ("Qwen/Qwen-Image", "qwen-image"),
     ("stabilityai/stable-diffusion-3.5-large", "sd3.5")],
)
def test_float16_fallback_warns_for_families_that_turn_black(
    model: str, family: str, two_gpus: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from gcr.generators.diffusers_adapter import DiffusersGenerator

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)  # e.g. a T4 or V100
    with caplog.at_level("WARNING", logger="gcr.generators.diffusers_adapter"):
        generator = DiffusersGenerator(model)
    assert generator.preset.name == family and generator.dtype is torch.float16
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert f"{family} in float16 on cuda:1: this GPU has no bfloat16 support" in warnings[0]
    assert "NaN" in warnings[0] and "--dtype float32" in warnings[0]


def test_no_float16_warning_where_it_does_not_apply(
    two_gpus: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from gcr.generators.diffusers_adapter import DiffusersGenerator

    with caplog.at_level("WARNING", logger="gcr.generators.diffusers_adapter"):
        DiffusersGenerator("black-forest-labs/FLUX.1-dev")  # bf16 supported: bf16 is used
        DiffusersGenerator("black-forest-labs/FLUX.1-dev", dtype="float32")
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
        DiffusersGenerator("stabilityai/stable-diffusion-xl-base-1.0")  # SDXL ships an fp16 variant
    assert [r for r in caplog.records if r.levelname == "WARNING"] == []
