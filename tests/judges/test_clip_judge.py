"""CLIPScore and PickScore judges on a tiny random CLIP built from a config and loaded from disk."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import torch
from PIL import Image

from gcr.errors import ConfigError, InputError, JudgeUnavailableError
from gcr.judges import load_judge


@pytest.fixture(scope="module")
def tiny_clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gcr.dev.tiny_clip import build_tiny_clip

    return build_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


def judge_it(judge, prompt, image, sources=()):
    return asyncio.run(judge.judge(prompt, image, sources))


def reference_cosine(folder: Path, prompt: str, image: Image.Image) -> tuple[float, float]:
    """The cosine computed independently, with the model's own feature functions."""
    from transformers import AutoProcessor, CLIPModel

    model, proc = CLIPModel.from_pretrained(folder).eval(), AutoProcessor.from_pretrained(folder)
    with torch.no_grad():
        t = proc(text=[prompt], return_tensors="pt", padding=True)
        i = proc(images=[image], return_tensors="pt")
        out = model(
            input_ids=t["input_ids"], attention_mask=t["attention_mask"], pixel_values=i["pixel_values"]
        )
    cos = torch.nn.functional.cosine_similarity(out.image_embeds, out.text_embeds).item()
    return cos, model.logit_scale.exp().item()


def test_clipscore_matches_the_definition(tiny_clip_dir: Path) -> None:
    image = Image.new("RGB", (40, 24), (220, 40, 40))
    judge = load_judge(f"clip:{tiny_clip_dir}")
    result = judge_it(judge, "a red square", image)
    cos, _ = reference_cosine(tiny_clip_dir, "a red square", image)
    assert result.subscores["cosine"] == pytest.approx(cos, abs=1e-5)
    assert result.subscores["clipscore"] == pytest.approx(2.5 * max(cos, 0.0), abs=1e-5)
    assert result.score == pytest.approx(max(cos, 0.0), abs=1e-5)
    assert judge.identity == f"clip:{tiny_clip_dir};dtype=float32"
    # Deterministic: the same input gives the same verdict.
    assert judge_it(judge, "a red square", image) == result


def test_pickscore_is_logit_scale_times_cosine(tiny_clip_dir: Path) -> None:
    image = Image.new("RGB", (32, 32), (20, 200, 90))
    judge = load_judge(f"pickscore:{tiny_clip_dir},processor={tiny_clip_dir}")
    result = judge_it(judge, "a green field", image)
    cos, scale = reference_cosine(tiny_clip_dir, "a green field", image)
    assert result.subscores["pickscore"] == pytest.approx(scale * cos, abs=1e-4)
    assert judge.identity.startswith("pickscore:")


def test_long_prompts_are_cut_at_77_tokens(tiny_clip_dir: Path) -> None:
    judge = load_judge(f"clip:{tiny_clip_dir}")
    result = judge_it(judge, "a very long prompt " * 40, Image.new("RGB", (32, 32)))
    assert 0.0 <= result.score <= 1.0


def test_edits_and_bad_options_are_refused(tiny_clip_dir: Path, tmp_path: Path) -> None:
    judge = load_judge(f"clip:{tiny_clip_dir}")
    with pytest.raises(InputError, match="edit instruction is not a caption"):
        judge_it(judge, "make it blue", Image.new("RGB", (32, 32)), [Image.new("RGB", (32, 32))])
    with pytest.raises(ConfigError, match=r"judge clip:.*unknown dtype 'int8': use auto, float32"):
        load_judge(f"clip:{tiny_clip_dir},dtype=int8")
    with pytest.raises(ConfigError, match=r"judge clip:.*unknown device 'gpu0'"):
        load_judge(f"clip:{tiny_clip_dir},device=gpu0")
    with pytest.raises(JudgeUnavailableError, match="cannot load the CLIP model"):
        load_judge(f"clip:{tmp_path / 'missing'}")
