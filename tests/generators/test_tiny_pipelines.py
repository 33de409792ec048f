"""The tiny pipelines load through ``DiffusionPipeline.from_pretrained`` like real checkpoints."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from diffusers import DiffusionPipeline
from gen_helpers import ALL_KINDS, source_image

from gcr.dev.tiny_pipelines import PIPELINE_KINDS, build_tiny_pipeline
from gcr.errors import InputError

EXPECTED_CLASS = {
    "sd": "StableDiffusionPipeline",
    "flux": "FluxPipeline",
    "flux-kontext": "FluxKontextPipeline",
    "instruct-pix2pix": "StableDiffusionInstructPix2PixPipeline",
}


def test_kinds_are_the_documented_four() -> None:
    assert PIPELINE_KINDS == ("sd", "flux", "flux-kontext", "instruct-pix2pix")
    assert set(PIPELINE_KINDS) == set(ALL_KINDS)


@pytest.mark.parametrize("kind", PIPELINE_KINDS)
def test_tiny_pipeline_loads_by_path_and_runs(kind: str, tiny_pipeline_dir) -> None:
    path = tiny_pipeline_dir(kind)
    assert (path / "model_index.json").is_file()
    pipe = DiffusionPipeline.from_pretrained(path)
    assert type(pipe).__name__ == EXPECTED_CLASS[kind]
    pipe.set_progress_bar_config(disable=True)
    kwargs: dict = {"prompt": "a red cat", "num_inference_steps": 2, "output_type": "pil"}
    if kind in ("flux-kontext", "instruct-pix2pix"):
        kwargs["image"] = source_image(1, (32, 32))
    if kind == "flux-kontext":
        kwargs.update(max_area=32 * 32, _auto_resize=False)
    if kind != "instruct-pix2pix":
        kwargs.update(height=32, width=32)
    image = pipe(generator=torch.Generator().manual_seed(0), **kwargs).images[0]
    assert image.size == (32, 32)
    parameters = sum(
        p.numel() for c in pipe.components.values() if isinstance(c, torch.nn.Module) for p in c.parameters()
    )
    assert parameters < 2_000_000  # tiny: builds and runs in about a second on a CPU


def test_tokenizers_know_prompt_words_and_still_encode_anything(tiny_pipeline_dir) -> None:
    pipe = DiffusionPipeline.from_pretrained(tiny_pipeline_dir("flux"))
    clip_ids = pipe.tokenizer("a red cat").input_ids
    assert clip_ids[0] == pipe.tokenizer.bos_token_id and clip_ids[-1] == pipe.tokenizer.eos_token_id
    assert pipe.tokenizer.tokenize("red") == ["red</w>"]  # a corpus word is one token
    assert pipe.tokenizer.unk_token_id not in pipe.tokenizer("zebra ≠ 42!").input_ids[1:-1]  # bytes cover all
    t5 = pipe.tokenizer_2("a red cat").input_ids
    assert t5[-1] == pipe.tokenizer_2.eos_token_id and len(t5) == 4
    assert max(clip_ids) < pipe.text_encoder.config.vocab_size
    assert len(pipe.tokenizer_2) <= pipe.text_encoder_2.config.vocab_size


def _digest_tree(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.suffix in (".safetensors", ".json")
    }


def test_same_seed_builds_identical_files(tmp_path: Path) -> None:
    a = _digest_tree(build_tiny_pipeline("sd", tmp_path / "a", seed=3))
    b = _digest_tree(build_tiny_pipeline("sd", tmp_path / "b", seed=3))
    c = _digest_tree(build_tiny_pipeline("sd", tmp_path / "c", seed=4))
    assert a == b
    assert a["unet/diffusion_pytorch_model.safetensors"] != c["unet/diffusion_pytorch_model.safetensors"]


def test_unknown_kind_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"unknown tiny pipeline kind 'dalle'.*sd, flux, flux-kontext"):
        build_tiny_pipeline("dalle", tmp_path)
