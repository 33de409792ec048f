"""Tiny random diffusers pipelines, built offline from configs.

Tests, benchmarks and ``gcr dev make-tiny`` need real pipelines that load through
``DiffusionPipeline.from_pretrained`` exactly like a downloaded checkpoint, but
that run a few denoising steps on a CPU in about a second. Every component here
is made from a hand-written config with a fixed seed; the tokenizers are
``tokenizers``-backed CLIP (BPE) and T5 (unigram) tokenizers whose vocabularies
are built from a small built-in corpus, so no hub is needed.

The weights are random: outputs are noise, but shapes, dtypes, schedulers,
conditioning paths (text, source image, guidance) and LoRA targets are the real
ones, which is what the tests need.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import torch

from gcr.errors import InputError

logger = logging.getLogger(__name__)

#: The kinds :func:`build_tiny_pipeline` can make.
PIPELINE_KINDS: tuple[str, ...] = ("sd", "flux", "flux-kontext", "instruct-pix2pix")

# Sizes shared by every tiny model. CLIP and T5 share the text width so that the
# same numbers feed both UNet cross-attention and FLUX's joint attention.
_TEXT_DIM = 32
_CLIP_MAX_LEN = 77

# A few sentences of the kind of prompts the tests use; their words become
# whole tokens. Any text still tokenizes (bytes for CLIP, characters or <unk>
# for T5).
_CORPUS = (
    "a photo of a red cat sitting on a wooden table next to a blue cup",
    "a watercolor painting of a lighthouse at sunset over a calm sea",
    "make the sky purple and add a small boat on the left",
    "replace the dog with a horse, keep the background unchanged",
    "a poster with the words hello world in bold letters",
    "an astronaut riding a green horse on the moon, high detail",
    "turn the photo into a pencil sketch",
    "two apples and one banana in a bowl, studio lighting",
)


def build_tiny_pipeline(kind: str, out_dir: str | Path, *, seed: int = 0) -> Path:
    """Build a tiny random pipeline of ``kind``, save it to ``out_dir`` and return that path.

    ``kind`` is one of :data:`PIPELINE_KINDS`. The folder holds a ``model_index.json``
    and one sub-folder per component, loadable by ``DiffusionPipeline.from_pretrained``.
    Images are 32 px by default (SD-style kinds need multiples of 8, FLUX-style of 4).
    """
    builders = {
        "sd": _build_sd,
        "instruct-pix2pix": _build_instruct_pix2pix,
        "flux": _build_flux,
        "flux-kontext": _build_flux_kontext,
    }
    if kind not in builders:
        raise InputError(f"unknown tiny pipeline kind {kind!r}: use one of {', '.join(PIPELINE_KINDS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pipe = builders[kind](seed)
    pipe.save_pretrained(out, safe_serialization=True)
    logger.info("saved tiny %s pipeline (%s) to %s", kind, type(pipe).__name__, out)
    return out


# --------------------------------------------------------------------------- tokenizers


def _corpus_words() -> list[str]:
    """Words of :data:`_CORPUS`, most frequent first, ties alphabetical (deterministic)."""
    counts: dict[str, int] = {}
    for line in _CORPUS:
        for word in re.findall(r"[a-z]+", line.lower()):
            counts[word] = counts.get(word, 0) + 1
    return sorted(counts, key=lambda w: (-counts[w], w))


def _clip_tokenizer() -> Any:
    """A byte-level BPE tokenizer in CLIP's conventions.

    The vocabulary is every byte symbol (alone and word-final), plus one merge chain
    per corpus word, so common words are single tokens and any text still encodes.
    It is written out rather than trained: the ``tokenizers`` BPE trainer breaks ties
    in hash order, which would make two builds with the same seed differ.
    """
    from tokenizers import pre_tokenizers
    from transformers import CLIPTokenizer

    bos, eos = "<|startoftext|>", "<|endoftext|>"
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet(), key=ord)
    vocab: dict[str, int] = {}
    for piece in [*alphabet, *(ch + "</w>" for ch in alphabet)]:
        vocab[piece] = len(vocab)
    merges: list[tuple[str, str]] = []
    for word in _corpus_words():
        symbols = [*word[:-1], word[-1] + "</w>"]
        left = symbols[0]
        for right in symbols[1:]:
            merged = left + right
            if merged not in vocab:
                merges.append((left, right))
                vocab[merged] = len(vocab)
            left = merged
    vocab[bos] = len(vocab)
    vocab[eos] = len(vocab)
    return CLIPTokenizer(
        vocab=vocab,
        merges=merges,
        bos_token=bos,
        eos_token=eos,
        unk_token=eos,
        pad_token=eos,
        model_max_length=_CLIP_MAX_LEN,
    )


def _t5_tokenizer() -> Any:
    """A unigram tokenizer in T5's conventions (``<pad>``=0, ``</s>``=1, ``<unk>``=2).

    Pieces are the corpus words (with the ``▁`` word marker) and every printable
    ASCII character, scored so that whole words win over spelling them out.
    """
    from transformers import T5Tokenizer

    pieces: list[tuple[str, float]] = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    for rank, word in enumerate(_corpus_words()):
        pieces.append(("\u2581" + word, -3.0 - 0.01 * rank))
    for code in range(33, 127):
        pieces.append((chr(code), -8.0))
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=512)


# --------------------------------------------------------------------------- components


def _clip_text_encoder(vocab_size: int, eos_id: int, pad_id: int, bos_id: int) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=_TEXT_DIM,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=2,
        max_position_embeddings=_CLIP_MAX_LEN,
        projection_dim=_TEXT_DIM,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )
    return CLIPTextModel(config).eval()


def _clip_pair(seed: int) -> tuple[Any, Any]:
    tokenizer = _clip_tokenizer()
    torch.manual_seed(seed)
    encoder = _clip_text_encoder(
        vocab_size=len(tokenizer),
        eos_id=tokenizer.eos_token_id,
        pad_id=tokenizer.pad_token_id,
        bos_id=tokenizer.bos_token_id,
    )
    return tokenizer, encoder


def _t5_pair(seed: int) -> tuple[Any, Any]:
    from transformers import T5Config, T5EncoderModel

    tokenizer = _t5_tokenizer()
    torch.manual_seed(seed + 1)
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=_TEXT_DIM,
        d_kv=8,
        d_ff=37,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    return tokenizer, T5EncoderModel(config).eval()


def _vae(seed: int, *, latent_channels: int, flux_style: bool) -> Any:
    """A two-level KL autoencoder: images are 2× the latent size."""
    from diffusers import AutoencoderKL

    torch.manual_seed(seed + 2)
    extra: dict[str, Any] = {}
    if flux_style:
        # FLUX's VAE has no quant convs and shifts latents before scaling.
        extra = {
            "use_quant_conv": False,
            "use_post_quant_conv": False,
            "shift_factor": 0.0609,
            "scaling_factor": 1.5035,
        }
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(8, 16),
        layers_per_block=1,
        latent_channels=latent_channels,
        norm_num_groups=4,
        sample_size=32,
        **extra,
    ).eval()


def _unet(seed: int, *, in_channels: int) -> Any:
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed + 3)
    return UNet2DConditionModel(
        sample_size=16,
        in_channels=in_channels,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(8, 16),
        layers_per_block=1,
        norm_num_groups=4,
        cross_attention_dim=_TEXT_DIM,
        attention_head_dim=4,
    ).eval()


def _ddim() -> Any:
    from diffusers import DDIMScheduler

    return DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )


def _flux_components(seed: int) -> dict[str, Any]:
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel

    tokenizer, text_encoder = _clip_pair(seed)
    tokenizer_2, text_encoder_2 = _t5_pair(seed)
    vae = _vae(seed, latent_channels=4, flux_style=True)
    torch.manual_seed(seed + 4)
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=16,  # 4 latent channels packed 2×2
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=_TEXT_DIM,
        pooled_projection_dim=_TEXT_DIM,
        guidance_embeds=True,  # as in FLUX.1-dev and Kontext, so guidance reaches the model
        axes_dims_rope=(4, 4, 8),
    ).eval()
    _make_conditioning_visible(transformer)
    return {
        "scheduler": FlowMatchEulerDiscreteScheduler(),
        "vae": vae,
        "text_encoder": text_encoder,
        "tokenizer": tokenizer,
        "text_encoder_2": text_encoder_2,
        "tokenizer_2": tokenizer_2,
        "transformer": transformer,
    }


@torch.no_grad()
def _make_conditioning_visible(transformer: Any) -> None:
    """Rescale a random FLUX transformer so the prompt and the source image show in its output.

    With plain random weights, near-uniform attention averages the context tokens
    away and the initial noise passes almost unchanged to the image, so two
    different prompts or source images give nearly the same pixels and tests could
    not tell whether the conditioning was used. Sharper attention (larger q/k norm
    gains), a weaker per-token input path and a stronger velocity head fix that;
    the model stays random and just as small.
    """
    for name, param in transformer.named_parameters():
        if name.endswith(("norm_q.weight", "norm_k.weight", "norm_added_q.weight", "norm_added_k.weight")):
            param.fill_(6.0)
    transformer.x_embedder.weight.mul_(0.05)
    transformer.x_embedder.bias.mul_(0.05)
    transformer.proj_out.weight.mul_(3.0)
    transformer.proj_out.bias.mul_(3.0)


# --------------------------------------------------------------------------- pipelines


def _build_sd(seed: int) -> Any:
    from diffusers import StableDiffusionPipeline

    tokenizer, text_encoder = _clip_pair(seed)
    return StableDiffusionPipeline(
        vae=_vae(seed, latent_channels=4, flux_style=False),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=_unet(seed, in_channels=4),
        scheduler=_ddim(),
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )


def _build_instruct_pix2pix(seed: int) -> Any:
    from diffusers import StableDiffusionInstructPix2PixPipeline

    tokenizer, text_encoder = _clip_pair(seed)
    return StableDiffusionInstructPix2PixPipeline(
        vae=_vae(seed, latent_channels=4, flux_style=False),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=_unet(seed, in_channels=8),  # noisy latents + source-image latents
        scheduler=_ddim(),
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )


def _build_flux(seed: int) -> Any:
    from diffusers import FluxPipeline

    return FluxPipeline(**_flux_components(seed), image_encoder=None, feature_extractor=None)


def _build_flux_kontext(seed: int) -> Any:
    from diffusers import FluxKontextPipeline

    return FluxKontextPipeline(**_flux_components(seed), image_encoder=None, feature_extractor=None)
