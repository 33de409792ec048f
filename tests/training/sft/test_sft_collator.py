"""The SFT collator masks the whole prompt, keeps the answer and its end-of-turn token, and fits images."""

from __future__ import annotations

from pathlib import Path

import datasets
import pytest
from PIL import Image
from transformers import AutoProcessor

from gcr.errors import DatasetError
from gcr.training.sft.collator import CritiqueSFTCollator


@pytest.fixture(scope="module")
def processor(tiny_critic_dir: Path):
    return AutoProcessor.from_pretrained(tiny_critic_dir)


def test_only_the_answer_is_trained(processor, sft_dataset_dir: Path) -> None:
    rows = datasets.load_from_disk(str(sft_dataset_dir / "hf"))["train"]
    examples = [rows[i] for i in range(min(3, len(rows)))]
    batch = CritiqueSFTCollator(processor, max_length=8192, max_pixels=None)(examples)
    tok = processor.tokenizer
    assert batch["input_ids"].shape == batch["labels"].shape
    for i, example in enumerate(examples):
        answer = example["messages"][-1]["content"][0]["text"]
        ids, labels, mask = batch["input_ids"][i], batch["labels"][i], batch["attention_mask"][i]
        trained = ids[labels != -100]
        assert tok.decode(trained) == answer + "<|im_end|>\n"
        # everything before the answer (system, user text, image tokens, the assistant header) is masked
        full = tok.decode(ids[mask == 1])
        assert full.endswith("<|im_start|>assistant\n" + answer + "<|im_end|>\n")
        prompt_len = int(mask.sum()) - len(trained)
        assert (labels[mask == 1][:prompt_len] == -100).all()
    image_pad = tok.convert_tokens_to_ids("<|image_pad|>")
    assert (batch["labels"][batch["input_ids"] == image_pad] == -100).all()
    assert "pixel_values" in batch and "image_grid_thw" in batch


def test_images_are_fitted_to_the_pixel_budget(processor) -> None:
    big = Image.new("RGB", (256, 128), "red")
    example = {
        "messages": [
            {"role": "user", "content": [{"type": "image", "text": None}, {"type": "text", "text": "judge"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "## Score: 3.0"}]},
        ],
        "images": [big],
    }
    collator = CritiqueSFTCollator(processor, max_length=None, max_pixels=64 * 32)
    split = collator.split(example)
    assert split["images"][0].size[0] * split["images"][0].size[1] <= 64 * 32
    assert split["prompt"][0]["content"][0] == {"type": "image"}  # Arrow's empty text dropped
    small = collator([example])["image_grid_thw"].prod().item()
    large = CritiqueSFTCollator(processor, max_length=None, max_pixels=None)([example])["image_grid_thw"]
    assert small < large.prod().item()


def test_a_conversation_without_an_answer_is_refused(processor) -> None:
    collator = CritiqueSFTCollator(processor, max_length=None, max_pixels=None)
    with pytest.raises(DatasetError, match="ends with the assistant's answer"):
        collator([{"messages": [{"role": "user", "content": "hi"}], "images": []}])


def test_trl_assistant_only_loss_cannot_mask_this_template(processor) -> None:
    """Why the collator exists: TRL's assistant mask needs {% generation %} markers this template lacks."""
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers

    assert not has_generation_markers(processor.chat_template)
    with pytest.raises(ValueError, match="not training-compatible"):
        get_training_chat_template(processor)
