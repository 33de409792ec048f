"""Batches for critic SFT: the prompt is masked from the loss, images fit the pixel budget.

The dataset stores whole conversations (``messages`` + ``images``). This
collator splits each one into prompt (system + user turn) and completion (the
assistant's critique) and hands them to TRL's
``DataCollatorForVisionLanguageModeling`` in its prompt-completion mode with
``completion_only_loss``: the prompt is rendered with the generation prompt,
the completion is the rest of the rendered conversation (end-of-turn token
included, so the model learns to stop), and every prompt position gets label
-100. This works with any chat template; TRL's ``assistant_only_loss`` instead
needs ``{% generation %}`` markers, which neither the Qwen3-VL template nor the
tiny test template has, and it would refuse those templates.
"""

from __future__ import annotations

from typing import Any

from gcr.errors import DatasetError
from gcr.images import ensure_rgb, fit_pixel_budget


class CritiqueSFTCollator:
    """``messages`` + ``images`` examples → model inputs with ``labels`` (prompt tokens = -100)."""

    def __init__(self, processor: Any, *, max_length: int | None, max_pixels: int | None) -> None:
        from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

        self.max_pixels = max_pixels
        self._inner = DataCollatorForVisionLanguageModeling(
            processor=processor, max_length=max_length, completion_only_loss=True
        )

    def split(self, example: dict[str, Any]) -> dict[str, Any]:
        """One example in TRL's conversational prompt-completion form, images within the budget."""
        messages = example.get("messages")
        if not messages or messages[-1].get("role") != "assistant":
            raise DatasetError("an SFT example must be a conversation that ends with the assistant's answer")
        images = [fit_pixel_budget(ensure_rgb(img), self.max_pixels) for img in example.get("images") or []]
        return {
            "prompt": [_clean(m) for m in messages[:-1]],
            "completion": [_clean(messages[-1])],
            "images": images,
        }

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        return self._inner([self.split(ex) for ex in examples])


def _clean(message: dict[str, Any]) -> dict[str, Any]:
    """Drop the empty ``text`` of image blocks that Arrow adds to give every block one shape."""
    content = message["content"]
    if isinstance(content, list):
        content = [{k: v for k, v in block.items() if v is not None} for block in content]
    return {"role": message["role"], "content": content}
