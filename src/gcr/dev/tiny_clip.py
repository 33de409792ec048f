"""A tiny random CLIP (model, tokenizer, image processor), built offline, for tests of the CLIP judges.

:func:`build_tiny_clip` writes a folder that loads through exactly the code a
real CLIPScore or PickScore checkpoint takes (``CLIPModel.from_pretrained`` and
``AutoProcessor.from_pretrained``): a two-layer text tower and a two-layer
vision tower at 32 px, and a character-level CLIP BPE tokenizer (its vocabulary
is every lowercase letter, digit and a little punctuation, with no merges), so
any English prompt tokenizes. The weights are random and seeded.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

import torch

_CHARS = string.ascii_lowercase + string.digits + ".,!?'-"


def build_tiny_clip(out_dir: str | Path, *, seed: int = 0, image_size: int = 32) -> Path:
    """Write a tiny random CLIP checkpoint to ``out_dir`` and return the folder."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab: dict[str, int] = {}
    for suffix in ("", "</w>"):
        for ch in _CHARS:
            vocab[ch + suffix] = len(vocab)
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    (out / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (out / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    tokenizer = CLIPTokenizer(str(out / "vocab.json"), str(out / "merges.txt"))
    images = CLIPImageProcessor(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
    )
    processor = CLIPProcessor(image_processor=images, tokenizer=tokenizer)
    eos = vocab["<|endoftext|>"]
    config = CLIPConfig(
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 77,
            "bos_token_id": vocab["<|startoftext|>"],
            "eos_token_id": eos,
            "pad_token_id": eos,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": image_size,
            "patch_size": 8,
        },
        projection_dim=16,
    )
    torch.manual_seed(seed)
    model = CLIPModel(config)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out
