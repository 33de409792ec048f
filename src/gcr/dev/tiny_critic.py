"""A tiny random Qwen3-VL critic, built offline, for tests and local experiments.

:func:`build_tiny_critic` writes a folder that loads through exactly the code
path a real checkpoint takes (``AutoModelForImageTextToText`` and
``AutoProcessor``, or ``transformers serve``): a two-layer Qwen3-VL with a
two-block vision tower, a byte-level BPE tokenizer trained on a small English
critique corpus (so random generations decode to real words), Qwen's special
tokens, image and video processors with a small pixel budget, and a chat
template that renders interleaved image and text parts the Qwen way.

The weights are random: the model writes plausible-looking words, not
critiques. Everything is seeded, so the same seed gives the same files.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import torch
from tokenizers import Regex as TokRegex
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

logger = logging.getLogger(__name__)

#: Qwen's special tokens, in the order the real vocabulary lists them after the text tokens.
SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

#: Tokens the model must never emit on its own: they only make sense when the prompt places them.
_SUPPRESSED = (
    "<|im_start|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

# Same split rule as Qwen's tokenizer: contractions, letter runs, single digits, punctuation, spaces.
_PRETOKENIZE_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

_CORPUS = """\
# User Request Analysis
The user asks for a photo of a red apple on a wooden table in soft morning light.
The request names the object, its colour, the surface, the lighting and the style.
# Detailed Judgement
1. Text Faithfulness:
## Justification: The apple is red and sits on the table, but the light looks harsh rather than soft.
## Score: 3.0
2. Image Faithfulness:
## Justification: The edit keeps the background, the layout and the identity of the person unchanged.
## Score: 3.5
3. Physical and Visual Quality:
## Justification: The shadows are consistent, the textures are sharp and there are no visible artifacts.
The hands show extra fingers and the reflection in the window is distorted.
## Score: 2.5
4. Text Rendering:
## Justification: The sign should read OPEN but the letters are blurred and one is missing.
## Score: N/A
# Summary: A good image with minor problems in lighting and a few small errors in detail.
# User Request Refinement:
## Refinement Comments: Ask for warm diffuse light and state the number of objects clearly.
## Refined Request: A photo of one red apple on an oak table, lit by warm diffuse morning light.
Score A: 3.0 Score B: 2.0 Winner: Image A. Image B is worse; it is a tie on quality.
The composition is balanced, the colours are natural, the perspective is correct and the scene is coherent.
The cat, the dog, the car, the house, the tree, the sky, the street, the woman and the man look realistic.
Severe problem, clear problems, minor problem, no noticeable problem, ignored, missing, wrong, accurate.
The style is painterly, cinematic, detailed, vivid, dark, bright, blue, green, yellow, white and black.
Because the request mentions two birds, the image should show two birds, not three.
"""


def _train_tokenizer() -> Tokenizer:
    """Train a small byte-level BPE with Qwen's pre-tokenization on the in-code corpus."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(TokRegex(_PRETOKENIZE_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=768,
        min_frequency=1,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=list(SPECIAL_TOKENS),
    )
    tokenizer.train_from_iterator(_CORPUS.splitlines(keepends=True), trainer=trainer)
    return tokenizer


def _build_hf_tokenizer():  # -> transformers Qwen2Tokenizer
    """Wrap the trained vocabulary as the same fast tokenizer class Qwen3-VL ships with."""
    from transformers import AddedToken, Qwen2Tokenizer

    trained = _train_tokenizer()
    vocab = trained.get_vocab(with_added_tokens=True)
    # The trained BPE model keeps its merges in order; read them from its JSON form.
    merges = json.loads(trained.to_str())["model"]["merges"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in merges]
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=4096,
        padding_side="left",
    )
    tokenizer.add_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    tokenizer.add_special_tokens(
        {"additional_special_tokens": list(SPECIAL_TOKENS[1:])},
        replace_extra_special_tokens=False,
    )
    return tokenizer


CHAT_TEMPLATE = (
    "{% macro render(content) %}"
    "{% if content is string %}{{ content }}"
    "{% else %}{% for part in content %}"
    "{% if part.type in ('image', 'image_url') %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part.type in ('video', 'video_url') %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif part.type == 'text' %}{{ part.text }}"
    "{% endif %}"
    "{% endfor %}{% endif %}"
    "{% endmacro %}"
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message.role + '\\n' }}{{ render(message.content) }}{{ '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
"""Qwen-style chat template: ``<|im_start|>role\\n...<|im_end|>`` turns, each image part as
``<|vision_start|><|image_pad|><|vision_end|>`` at its place among the text parts."""

#: Pixel budget of the tiny processor: a 64×64 image becomes 4 merged image tokens.
TINY_MIN_PIXELS = 32 * 32
TINY_MAX_PIXELS = 128 * 128


def _build_processor(tokenizer):  # -> transformers Qwen3VLProcessor
    from transformers import Qwen2VLImageProcessor, Qwen3VLProcessor, Qwen3VLVideoProcessor

    image_processor = Qwen2VLImageProcessor(
        size={"shortest_edge": TINY_MIN_PIXELS, "longest_edge": TINY_MAX_PIXELS},
        patch_size=16,
        temporal_patch_size=2,
        merge_size=2,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )
    video_processor = Qwen3VLVideoProcessor(
        size={"shortest_edge": TINY_MIN_PIXELS, "longest_edge": 4 * TINY_MAX_PIXELS},
        patch_size=16,
        temporal_patch_size=2,
        merge_size=2,
        max_frames=8,
    )
    return Qwen3VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=CHAT_TEMPLATE,
    )


def _build_config(tokenizer):  # -> transformers Qwen3VLConfig
    from transformers import Qwen3VLConfig

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    text_hidden = 64
    head_dim = 16
    return Qwen3VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": text_hidden,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": head_dim,
            "max_position_embeddings": 4096,
            # The three mRoPE sections (time, height, width) split head_dim / 2 rotary frequencies.
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 5_000_000.0,
                "mrope_section": [4, 2, 2],
                "mrope_interleaved": True,
            },
            "initializer_range": 0.2,
            "pad_token_id": ids["<|endoftext|>"],
            "bos_token_id": None,
            "eos_token_id": ids["<|im_end|>"],
        },
        vision_config={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "patch_size": 16,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "out_hidden_size": text_hidden,
            "num_position_embeddings": 64,
            # One deepstack feature per vision block, injected into the two text layers.
            "deepstack_visual_indexes": [0, 1],
            "initializer_range": 0.2,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )


def _corpus_words() -> set[str]:
    return set(re.findall(r"[A-Za-z]+", _CORPUS))


def _token_classes(tokenizer) -> tuple[list[int], list[int]]:
    """Split the vocabulary into tokens worth writing and tokens that must never be sampled.

    Writable: whole corpus words (with or without their leading space), digits and
    common punctuation. Banned: Qwen's structural specials and byte tokens that do not
    decode to printable ASCII on their own (they would show up as replacement marks).
    Everything else (word fragments) stays allowed but gets a zero logit.
    """
    words = _corpus_words()
    writable: list[int] = []
    banned: list[int] = [tokenizer.convert_tokens_to_ids(t) for t in _SUPPRESSED]
    specials = set(SPECIAL_TOKENS)
    for token, idx in tokenizer.get_vocab().items():
        if token in specials:
            continue
        text = tokenizer.convert_tokens_to_string([token])
        if not all(32 <= ord(ch) < 127 or ch == "\n" for ch in text):
            banned.append(idx)
        elif (text.startswith(" ") and text[1:] in words) or re.fullmatch(r" ?[0-9.,:;!?#\n-]", text):
            writable.append(idx)
    return sorted(writable), sorted(banned)


def _shape_output(model: torch.nn.Module, tokenizer, writable: list[int]) -> None:
    """Make the random model write words and end its turn after a full stop.

    All but whole-word tokens get a zero output row, so greedy text reads as words.
    Hidden channel 0 of the text model is reserved as a "just wrote a full stop"
    flag: only the ``.`` embedding writes to it (strongly), nothing else (no other
    token, attention or MLP output, or image feature) does, and the end-of-turn
    token reads only it. So right after ``.`` the model says ``<|im_end|>``, and
    never before, like a chat model ending its answer (or it runs into the token
    limit when no full stop comes).
    """
    text_model = model.model.language_model
    visual = model.model.visual
    head = model.get_output_embeddings().weight
    embed = text_model.embed_tokens.weight
    stop = tokenizer.convert_tokens_to_ids(".")
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    keep = torch.zeros(head.shape[0], dtype=torch.bool)
    keep[writable] = True
    with torch.no_grad():
        head[~keep] = 0.0
        head[stop] *= 1.5  # full stops come a little more often
        # Channel 0 of the residual stream: silent everywhere except for the full stop.
        embed[:, 0] = 0.0
        embed[stop] = 0.0
        embed[stop, 0] = 300.0
        for layer in text_model.layers:
            layer.self_attn.o_proj.weight[0] = 0.0
            layer.mlp.down_proj.weight[0] = 0.0
        for merger in (visual.merger, *visual.deepstack_merger_list):
            merger.linear_fc2.weight[0] = 0.0
            merger.linear_fc2.bias[0] = 0.0
        head[eos] = 0.0
        head[eos, 0] = 2.0


def _generation_config(tokenizer, banned: list[int]):  # -> transformers GenerationConfig
    """Stop on Qwen's end tokens; sample with Qwen3-VL's released defaults.

    Servers such as ``transformers serve`` take ``do_sample`` from this file and
    only switch to greedy decoding for temperature 0, so the tiny critic samples
    exactly when a real Qwen3-VL checkpoint would. Callers wanting reproducible
    text pass ``do_sample=False`` (or temperature 0 to a server).
    """
    from transformers import GenerationConfig

    return GenerationConfig(
        eos_token_id=[
            tokenizer.convert_tokens_to_ids("<|im_end|>"),
            tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        ],
        pad_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        bos_token_id=None,
        do_sample=True,
        temperature=0.7,
        top_p=0.8,
        top_k=20,
        max_new_tokens=64,
        suppress_tokens=banned,
    )


def build_tiny_critic(out_dir: str | Path, *, seed: int = 0) -> Path:
    """Build a tiny random Qwen3-VL critic and save model and processor to ``out_dir``.

    The folder loads with ``AutoModelForImageTextToText.from_pretrained`` and
    ``AutoProcessor.from_pretrained`` (and with ``transformers serve``). The same
    ``seed`` always gives the same weights. Returns ``out_dir`` as a :class:`Path`.
    """
    from transformers import Qwen3VLForConditionalGeneration
    from transformers.utils import logging as hf_logging

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _build_hf_tokenizer()
    processor = _build_processor(tokenizer)
    config = _build_config(tokenizer)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen3VLForConditionalGeneration(config)
    writable, banned = _token_classes(tokenizer)
    _shape_output(model, tokenizer, writable)
    model.generation_config = _generation_config(tokenizer, banned)
    model.eval()
    bars_were_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a few KB need no "Writing model shards" bar
    try:
        model.save_pretrained(out)
        processor.save_pretrained(out)
    finally:
        if bars_were_on:
            hf_logging.enable_progress_bar()
    logger.info(
        "built tiny Qwen3-VL critic (%d parameters, vocabulary %d) in %s",
        count_parameters(model),
        len(tokenizer),
        out,
    )
    return out


def count_parameters(model: torch.nn.Module) -> int:
    """Number of parameters of ``model`` (shared tensors counted once)."""
    return sum(p.numel() for p in model.parameters())
