"""Family presets: matching a model to its family, and each family's defaults and size rules."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from gcr.devices import resolve_device, resolve_dtype
from gcr.generators.loading import PipelineCache
from gcr.generators.presets import PRESETS, detect_family, get_preset, pipeline_class_name
from gcr.task import Task


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("black-forest-labs/FLUX.1-dev", "flux-dev"),
        ("black-forest-labs/FLUX.1-schnell", "flux-schnell"),
        ("black-forest-labs/FLUX.1-Kontext-dev", "flux-kontext"),
        ("stabilityai/stable-diffusion-3.5-large", "sd3.5"),
        ("stabilityai/stable-diffusion-3.5-medium", "sd3.5"),
        ("stabilityai/stable-diffusion-xl-base-1.0", "sdxl"),
        ("Qwen/Qwen-Image", "qwen-image"),
        ("Qwen/Qwen-Image-Edit", "qwen-image-edit"),
        ("Qwen/Qwen-Image-Edit-2509", "qwen-image-edit-plus"),
        ("Efficient-Large-Model/Sana_1600M_1024px_diffusers", "sana"),
        ("timbrooks/instruct-pix2pix", "instruct-pix2pix"),
        ("stable-diffusion-v1-5/stable-diffusion-v1-5", "stable-diffusion"),
        ("someone/my-own-pipeline", "generic"),
    ],
)
def test_hub_ids_match_their_family_by_name(model: str, family: str) -> None:
    assert detect_family(model).name == family


@pytest.mark.parametrize(
    ("kind", "family"),
    [
        ("sd", "stable-diffusion"),
        ("flux", "flux-dev"),
        ("flux-kontext", "flux-kontext"),
        ("instruct-pix2pix", "instruct-pix2pix"),
    ],
)
def test_local_folders_match_by_the_pipeline_class_in_model_index(
    kind: str, family: str, tiny_pipeline_dir
) -> None:
    assert detect_family(str(tiny_pipeline_dir(kind))).name == family


def _fake_pipeline_folder(root: Path, class_name: str, guidance_embeds: bool | None = None) -> Path:
    root.mkdir(parents=True)
    (root / "model_index.json").write_text(json.dumps({"_class_name": class_name}))
    if guidance_embeds is not None:
        (root / "transformer").mkdir()
        (root / "transformer" / "config.json").write_text(json.dumps({"guidance_embeds": guidance_embeds}))
    return root


def test_the_class_name_wins_over_a_misleading_folder_name(tmp_path: Path) -> None:
    folder = _fake_pipeline_folder(tmp_path / "my-flux-finetune", "QwenImageEditPlusPipeline")
    assert detect_family(str(folder)).name == "qwen-image-edit-plus"
    unknown = _fake_pipeline_folder(tmp_path / "sdxl-but-not-really", "WanPipeline")
    assert detect_family(str(unknown)).name == "sdxl"  # unknown class: fall back to the name
    assert detect_family(str(_fake_pipeline_folder(tmp_path / "x", "WanPipeline"))).name == "generic"


def test_flux_schnell_is_told_from_dev_by_its_missing_guidance_embedding(tmp_path: Path) -> None:
    schnell = _fake_pipeline_folder(tmp_path / "a", "FluxPipeline", guidance_embeds=False)
    dev = _fake_pipeline_folder(tmp_path / "b", "FluxPipeline", guidance_embeds=True)
    assert detect_family(str(schnell)).name == "flux-schnell"
    assert detect_family(str(dev)).name == "flux-dev"


def test_family_override_and_unknown_family() -> None:
    assert detect_family("black-forest-labs/FLUX.1-dev", family="flux-schnell").name == "flux-schnell"
    with pytest.raises(Exception, match="use one of flux-kontext, flux-schnell, flux-dev"):
        get_preset("flux-pro")


def test_preset_facts_from_the_design_notes() -> None:
    kontext, qwen_edit = PRESETS["flux-kontext"], PRESETS["qwen-image-edit"]
    assert kontext.task is Task.EDIT and kontext.fp32_vae and kontext.steps == 40
    assert kontext.edit_longest_edge == 1024
    assert qwen_edit.guidance == 4.0 and qwen_edit.guidance_arg == "true_cfg_scale" and qwen_edit.steps == 40
    assert qwen_edit.default_negative_prompt == " "
    assert PRESETS["qwen-image-edit-plus"].max_source_images == 3
    assert (PRESETS["flux-schnell"].steps, PRESETS["flux-schnell"].guidance) == (4, 0.0)
    assert (PRESETS["flux-dev"].steps, PRESETS["flux-dev"].guidance) == (28, 3.5)
    assert (PRESETS["sana"].steps, PRESETS["sana"].guidance) == (20, 4.5)
    assert PRESETS["instruct-pix2pix"].call_defaults == {"image_guidance_scale": 1.5}
    assert all(p.task is not Task.T2I or p.max_source_images == 0 for p in PRESETS.values())


@pytest.mark.parametrize(
    ("family", "pipe", "multiple"),
    [
        ("flux-dev", SimpleNamespace(vae_scale_factor=8), 16),
        ("flux-kontext", SimpleNamespace(vae_scale_factor=8), 16),
        ("qwen-image-edit", SimpleNamespace(vae_scale_factor=8), 16),
        ("sd3.5", SimpleNamespace(vae_scale_factor=8), 16),
        ("sdxl", SimpleNamespace(vae_scale_factor=8), 8),
        ("sana", SimpleNamespace(vae_scale_factor=32), 32),
        ("stable-diffusion", SimpleNamespace(vae_scale_factor=2), 8),  # SD checks multiples of 8 itself
        (
            "generic",
            SimpleNamespace(
                vae_scale_factor=8, transformer=SimpleNamespace(config=SimpleNamespace(patch_size=2))
            ),
            16,
        ),
    ],
)
def test_size_multiples_of_the_real_families(family: str, pipe: object, multiple: int) -> None:
    assert PRESETS[family].size_multiple(pipe) == multiple


def test_automatic_device_and_dtype_on_this_machine() -> None:
    device = resolve_device(None)
    assert device.type in ("cpu", "cuda", "mps")
    if device.type == "cpu":
        assert resolve_dtype("auto", device) is torch.float32
    assert resolve_dtype(None, torch.device("mps")) is torch.bfloat16
    assert resolve_dtype("bf16", torch.device("cpu")) is torch.bfloat16
    assert resolve_dtype("torch.float16", torch.device("cpu")) is torch.float16


def test_cache_needs_room_for_one_pipeline() -> None:
    with pytest.raises(Exception, match="at least 1 pipeline"):
        PipelineCache(max_entries=0)


def test_rl_and_the_generators_read_the_pipeline_class_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants

    # A Hub id already in the local cache is read without a download (generation and RL share this).
    repo = tmp_path / "models--acme--tiny-flux"
    (repo / "snapshots" / "abc").mkdir(parents=True)
    (repo / "snapshots" / "abc" / "model_index.json").write_text('{"_class_name": "FluxPipeline"}')
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    assert pipeline_class_name("acme/tiny-flux") == "FluxPipeline"
    assert pipeline_class_name("acme/not-cached") is None
    # A local folder, given as a Path.
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "model_index.json").write_text('{"_class_name": "SD3Pipeline"}')
    assert pipeline_class_name(tmp_path / "local") == "SD3Pipeline"
