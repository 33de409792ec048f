"""The tiny Qwen3-VL critic: builds offline, reloads through the Auto classes, stays tiny."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

from gcr.dev.tiny_critic import SPECIAL_TOKENS, build_tiny_critic, count_parameters


@pytest.fixture(scope="module")
def loaded(tiny_critic_dir: Path):
    model = AutoModelForImageTextToText.from_pretrained(tiny_critic_dir)
    processor = AutoProcessor.from_pretrained(tiny_critic_dir)
    return model, processor


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_folder_has_everything_a_checkpoint_has(tiny_critic_dir: Path) -> None:
    names = {p.name for p in tiny_critic_dir.iterdir()}
    assert {
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "processor_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
    } <= names
    config = json.loads((tiny_critic_dir / "config.json").read_text())
    assert config["model_type"] == "qwen3_vl"
    assert config["architectures"] == ["Qwen3VLForConditionalGeneration"]


def test_reloads_as_qwen3_vl_with_matching_token_ids(loaded) -> None:
    model, processor = loaded
    assert type(model).__name__ == "Qwen3VLForConditionalGeneration"
    assert type(processor).__name__ == "Qwen3VLProcessor"
    tok = processor.tokenizer
    for token in SPECIAL_TOKENS:
        assert tok.convert_tokens_to_ids(token) != tok.unk_token_id
        assert tok.tokenize(token) == [token], f"{token} must stay one token"
    cfg = model.config
    assert cfg.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>")
    assert cfg.video_token_id == tok.convert_tokens_to_ids("<|video_pad|>")
    assert cfg.vision_start_token_id == tok.convert_tokens_to_ids("<|vision_start|>")
    assert cfg.vision_end_token_id == tok.convert_tokens_to_ids("<|vision_end|>")
    assert cfg.text_config.vocab_size >= len(tok)
    gen = model.generation_config
    assert tok.convert_tokens_to_ids("<|im_end|>") in gen.eos_token_id
    assert gen.pad_token_id == tok.pad_token_id
    # Sampling defaults as released with Qwen3-VL, so servers sample when a real checkpoint would.
    assert (gen.do_sample, gen.temperature, gen.top_p, gen.top_k) == (True, 0.7, 0.8, 20)
    assert tok.padding_side == "left"


def test_is_tiny(loaded) -> None:
    model, _ = loaded
    n = count_parameters(model)
    assert 100_000 < n < 600_000
    assert model.config.text_config.num_hidden_layers == 2
    assert model.config.vision_config.depth == 2


def test_chat_template_places_images_among_text(loaded) -> None:
    _, processor = loaded
    messages = [
        {"role": "system", "content": "You judge images."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Source:"},
                {"type": "image"},
                {"type": "text", "text": "Edited:"},
                {"type": "image"},
                {"type": "text", "text": "Judge it."},
            ],
        },
    ]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    vision = "<|vision_start|><|image_pad|><|vision_end|>"
    assert text == (
        "<|im_start|>system\nYou judge images.<|im_end|>\n"
        f"<|im_start|>user\nSource:{vision}Edited:{vision}Judge it.<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_generates_words_from_image_and_text(loaded) -> None:
    model, processor = loaded
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Rate it."}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=[Image.new("RGB", (64, 64), (200, 40, 40))], return_tensors="pt")
    # A 64×64 image is 4×4 patches of 16 px, merged 2×2 into 4 image tokens.
    assert inputs["image_grid_thw"].tolist() == [[1, 4, 4]]
    assert int((inputs["input_ids"] == model.config.image_token_id).sum()) == 4
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=12, do_sample=False)
    new = out[0, inputs["input_ids"].shape[1] :]
    im_end = processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    ids = new.tolist()
    if im_end in ids:  # the turn only ever ends right after a full stop
        assert processor.tokenizer.convert_ids_to_tokens(ids[ids.index(im_end) - 1]) == "."
    answer = processor.decode(new, skip_special_tokens=True)
    words = answer.split()
    assert len(words) >= 4
    assert "\ufffd" not in answer
    assert all(w.strip(".,:;!?#-").isalnum() for w in words), answer


def test_same_seed_same_files_other_seed_other_weights(tmp_path: Path) -> None:
    a = build_tiny_critic(tmp_path / "a", seed=3)
    b = build_tiny_critic(tmp_path / "b", seed=3)
    c = build_tiny_critic(tmp_path / "c", seed=4)
    for name in ("model.safetensors", "tokenizer.json", "config.json", "generation_config.json"):
        assert _digest(a / name) == _digest(b / name), name
    assert _digest(a / "model.safetensors") != _digest(c / "model.safetensors")
    assert _digest(a / "tokenizer.json") == _digest(c / "tokenizer.json")


def test_build_leaves_global_rng_alone(tmp_path: Path) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_tiny_critic(tmp_path / "x")
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("start", ["The apple is red.", "Score: 3.", "wrong colour and layout."])
def test_a_full_stop_ends_the_turn(loaded, start: str) -> None:
    model, processor = loaded
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Rate it."}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False) + start
    inputs = processor(text=[text], images=[Image.new("RGB", (64, 64), (10, 120, 60))], return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    new = out[0, inputs["input_ids"].shape[1] :].tolist()
    assert new == [processor.tokenizer.convert_tokens_to_ids("<|im_end|>")]
