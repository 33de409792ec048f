"""Every tiny pipeline family on CUDA in bf16 through gcr's real loader, and with model CPU offload.

What this proves on a GPU: the automatic device and dtype (CUDA, bf16), that each
component lands where it should (all on the GPU; or all on the CPU between calls
under ``--offload``), that FLUX Kontext keeps its VAE in fp32 inside a bf16
pipeline as the upstream runs did, and that the images come out finite (NaN
latents decode to a constant image).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from gpukit import GPU, is_varied, noise_image

from gcr.dev.tiny_pipelines import PIPELINE_KINDS
from gcr.generators.base import GenerationRequest
from gcr.generators.diffusers_adapter import DiffusersGenerator
from gcr.generators.loading import PipelineCache

pytestmark = GPU

EDIT_KINDS = {"flux-kontext", "instruct-pix2pix"}


def _request(kind: str, num_images: int = 2) -> GenerationRequest:
    sources = [noise_image(1, (48, 40))] if kind in EDIT_KINDS else []
    return GenerationRequest(
        prompt="a red cat sitting on a wooden table",
        width=32,
        height=32,
        steps=3,
        num_images=num_images,
        source_images=sources,
    )


def _denoiser(pipe: Any) -> torch.nn.Module:
    return getattr(pipe, "transformer", None) or pipe.unet


def _modules(pipe: object) -> dict[str, torch.nn.Module]:
    return {name: c for name, c in pipe.components.items() if isinstance(c, torch.nn.Module)}  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", PIPELINE_KINDS)
def test_family_runs_on_cuda_in_bf16(kind: str, tiny_pipeline_dir: Callable[[str], Path]) -> None:
    gen = DiffusersGenerator(str(tiny_pipeline_dir(kind)), cache=PipelineCache())
    assert gen.device.type == "cuda" and gen.dtype == torch.bfloat16  # the automatic defaults on a GPU
    pipe = gen.load()
    modules = _modules(pipe)
    assert all(m.device.type == "cuda" for m in modules.values()), {n: m.device for n, m in modules.items()}
    assert _denoiser(pipe).dtype == torch.bfloat16
    assert pipe.text_encoder.dtype == torch.bfloat16
    expected_vae = torch.float32 if kind == "flux-kontext" else torch.bfloat16
    assert pipe.vae.dtype == expected_vae

    result = gen.generate(_request(kind))
    assert [img.size for img in result.images] == [(32, 32)] * 2
    assert all(is_varied(img) for img in result.images)
    assert result.params["device"] == f"cuda:{torch.cuda.current_device()}"  # pinned, see resolve_device
    assert result.params["dtype"] == "bfloat16"
    assert result.params["fp32_vae"] is (kind == "flux-kontext")
    assert pipe.vae.dtype == expected_vae  # a call does not undo the fp32 VAE


@pytest.mark.parametrize("kind", ["sd", "flux-kontext"])
def test_offload_keeps_weights_on_the_cpu_between_calls(
    kind: str, tiny_pipeline_dir: Callable[[str], Path]
) -> None:
    gen = DiffusersGenerator(str(tiny_pipeline_dir(kind)), offload=True, cache=PipelineCache())
    pipe = gen.load()
    modules = _modules(pipe)
    assert all(m.device.type == "cpu" for m in modules.values()), {n: m.device for n, m in modules.items()}
    assert pipe._execution_device.type == "cuda"  # diffusers runs each model on the GPU in turn
    assert all(hasattr(m, "_hf_hook") for m in modules.values())  # accelerate's offload hooks

    seen: dict[str, str] = {}
    denoiser = _denoiser(pipe)

    def record(module: torch.nn.Module, _args: object, _output: object) -> None:
        # A forward (post) hook: accelerate moves the module to the GPU inside its wrapped forward,
        # after torch's pre-hooks have run, and offloads it only when the next model starts.
        seen.setdefault("device", str(next(module.parameters()).device))

    handle = denoiser.register_forward_hook(record)
    try:
        result = gen.generate(_request(kind, num_images=1))
    finally:
        handle.remove()
    assert seen["device"].startswith("cuda")  # it ran on the GPU ...
    assert all(m.device.type == "cpu" for m in modules.values())  # ... and went back afterwards
    assert result.params["offload"] is True and is_varied(result.images[0])
    if kind == "flux-kontext":
        assert pipe.vae.dtype == torch.float32 and pipe.transformer.dtype == torch.bfloat16
