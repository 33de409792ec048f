"""Model families: each one's recommended defaults and quirks, and how a model is matched to one.

A preset fills in what a :class:`~gcr.generators.base.GenerationRequest` leaves
as ``None`` (steps, guidance, size) and says how to call the family's pipeline:
which argument carries guidance, whether the VAE must stay in fp32, what side
multiple the latent grid needs, how many source images an editing model takes.

A model is matched to a family by the pipeline class named in a local
``model_index.json`` (authoritative), otherwise by patterns on the model id or
path, otherwise the ``generic`` preset uses the pipeline's own defaults.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gcr.errors import InputError
from gcr.task import Task

logger = logging.getLogger(__name__)

#: How a family's pipeline takes the output size.
#: ``height_width``: ``height=``/``width=`` arguments; ``kontext``: the same plus
#: ``max_area`` and no snapping to Kontext's preferred resolutions, so the
#: requested size is exact; ``source``: no size arguments, the output follows the
#: (resized) source image; ``auto``: decided from the pipeline's call signature.
Sizing = Literal["height_width", "kontext", "source", "auto"]


@dataclass(frozen=True)
class FamilyPreset:
    """Defaults and quirks of one model family. ``None`` means "the pipeline's own default"."""

    name: str
    description: str
    task: Task | None  # None: decided from the pipeline (generic)
    repo: str | None = None  # the canonical Hugging Face id; the preset name is an alias for it
    pipeline_classes: tuple[str, ...] = ()
    id_patterns: tuple[str, ...] = ()  # regexes searched in the lower-cased model id or path
    steps: int | None = None
    guidance: float | None = None
    guidance_arg: str = "guidance_scale"
    size: int | None = None  # default square side for text-to-image; None: from the pipeline
    latent_patch: int | None = 1  # latent pixels per token side; None: the denoiser's patch_size
    min_multiple: int = 1
    sizing: Sizing = "height_width"
    fp32_vae: bool = False
    fp16_breaks: bool = False  # float16 overflows into NaN latents (black images): see gcr.devices
    default_negative_prompt: str | None = None
    negative_needs: str | None = None  # an extra argument a negative prompt only works with
    max_source_images: int | None = 1
    edit_longest_edge: int = 1024
    source_per_image: bool = False  # pass the source once per output image (the pipeline expects it)
    call_defaults: dict[str, Any] = field(default_factory=dict)

    def size_multiple(self, pipe: Any) -> int:
        """The side multiple (pixels) that ``pipe``'s latent grid needs for this family."""
        vae_scale = int(getattr(pipe, "vae_scale_factor", None) or 8)
        patch = self.latent_patch
        if patch is None:
            denoiser = getattr(pipe, "transformer", None) or getattr(pipe, "unet", None)
            config = getattr(denoiser, "config", None)
            patch = int(getattr(config, "patch_size", None) or 1)
        return max(self.min_multiple, vae_scale * patch)


# Sources for the numbers below: docs/generators.md ("Upstream settings") for the two
# edit families the RationalRewards release ran (40 steps, longest edge ≤ 1024 in multiples of 16,
# Qwen-Image-Edit with true CFG 4.0, FLUX Kontext in bf16 with an fp32 VAE); for
# the others, the recommendations on each model's card or the diffusers defaults.
PRESETS: dict[str, FamilyPreset] = {
    p.name: p
    for p in (
        FamilyPreset(
            # Edit variant of FLUX.1. 40 steps and the fp32 VAE follow the upstream runs
            # (docs/generators.md); guidance 2.5 is Black Forest Labs' default for Kontext [dev].
            # Latents are packed 2×2, so sides are multiples of 2 × the VAE factor (16).
            name="flux-kontext",
            fp16_breaks=True,
            description="FLUX.1 Kontext [dev], instruction-based image editing",
            task=Task.EDIT,
            repo="black-forest-labs/FLUX.1-Kontext-dev",
            pipeline_classes=("FluxKontextPipeline",),
            id_patterns=(r"kontext",),
            steps=40,
            guidance=2.5,
            latent_patch=2,
            sizing="kontext",
            fp32_vae=True,
            negative_needs="true_cfg_scale",
        ),
        FamilyPreset(
            # Timestep-distilled: 4 steps and no guidance (the model card's settings);
            # it was trained with 256 T5 tokens, so longer prompts are cut there.
            name="flux-schnell",
            fp16_breaks=True,
            description="FLUX.1 [schnell], 4-step text-to-image",
            task=Task.T2I,
            repo="black-forest-labs/FLUX.1-schnell",
            pipeline_classes=(),  # shares FluxPipeline with dev; told apart by guidance_embeds
            id_patterns=(r"flux.*schnell",),
            steps=4,
            guidance=0.0,
            size=1024,
            latent_patch=2,
            negative_needs="true_cfg_scale",
            max_source_images=0,
            call_defaults={"max_sequence_length": 256},
        ),
        FamilyPreset(
            # Guidance-distilled: guidance 3.5 is BFL's recommended embedded guidance;
            # 28 steps is the diffusers default (50 for the last bit of detail). A negative
            # prompt needs true CFG (true_cfg_scale > 1), which doubles the cost.
            name="flux-dev",
            fp16_breaks=True,
            description="FLUX.1 [dev] and other FluxPipeline models, text-to-image",
            task=Task.T2I,
            repo="black-forest-labs/FLUX.1-dev",
            pipeline_classes=("FluxPipeline",),
            id_patterns=(r"flux",),
            steps=28,
            guidance=3.5,
            size=1024,
            latent_patch=2,
            negative_needs="true_cfg_scale",
            max_source_images=0,
        ),
        FamilyPreset(
            # Qwen-Image-Edit-2509 ("Plus") takes 1-3 source images; its model card runs
            # true CFG 4.0 with a blank negative prompt and guidance_scale 1.0; 40 steps as
            # upstream (docs/generators.md). Packed latents: multiples of 16.
            name="qwen-image-edit-plus",
            fp16_breaks=True,
            description="Qwen-Image-Edit-2509 (Plus), multi-image editing with true CFG",
            task=Task.EDIT,
            repo="Qwen/Qwen-Image-Edit-2509",
            pipeline_classes=("QwenImageEditPlusPipeline",),
            id_patterns=(r"qwen-?image-?edit-?(plus|25\d\d)",),
            steps=40,
            guidance=4.0,
            guidance_arg="true_cfg_scale",
            latent_patch=2,
            default_negative_prompt=" ",
            max_source_images=3,
            call_defaults={"guidance_scale": 1.0},
        ),
        FamilyPreset(
            # True (two-pass) CFG 4.0 with a blank negative prompt, 40 steps: the upstream
            # RationalRewards setting (docs/generators.md), matching the model card's CFG.
            name="qwen-image-edit",
            fp16_breaks=True,
            description="Qwen-Image-Edit, image editing with true CFG",
            task=Task.EDIT,
            repo="Qwen/Qwen-Image-Edit",
            pipeline_classes=("QwenImageEditPipeline",),
            id_patterns=(r"qwen-?image-?edit",),
            steps=40,
            guidance=4.0,
            guidance_arg="true_cfg_scale",
            latent_patch=2,
            default_negative_prompt=" ",
        ),
        FamilyPreset(
            # Model card: 50 steps, true CFG 4.0, blank negative prompt; 1328×1328 is its
            # native 1:1 resolution.
            name="qwen-image",
            fp16_breaks=True,
            description="Qwen-Image, text-to-image with strong text rendering",
            task=Task.T2I,
            repo="Qwen/Qwen-Image",
            pipeline_classes=("QwenImagePipeline",),
            id_patterns=(r"qwen-?image",),
            steps=50,
            guidance=4.0,
            guidance_arg="true_cfg_scale",
            size=1328,
            latent_patch=2,
            default_negative_prompt=" ",
            max_source_images=0,
        ),
        FamilyPreset(
            # SD3.5 Large model card: 28 steps, CFG 3.5. The transformer patchifies 2×2
            # latents, so sides are multiples of 16.
            name="sd3.5",
            fp16_breaks=True,
            description="Stable Diffusion 3 / 3.5, text-to-image",
            task=Task.T2I,
            repo="stabilityai/stable-diffusion-3.5-large",
            pipeline_classes=("StableDiffusion3Pipeline",),
            id_patterns=(r"stable-diffusion-3", r"\bsd-?3"),
            steps=28,
            guidance=3.5,
            size=1024,
            latent_patch=2,
            max_source_images=0,
        ),
        FamilyPreset(
            # SDXL base at its native 1024 px; CFG 5.0 is the diffusers default for SDXL,
            # 30 steps the usual quality/speed point with its Euler scheduler. The pipeline
            # upcasts its VAE by itself when needed (force_upcast).
            name="sdxl",
            description="Stable Diffusion XL, text-to-image",
            task=Task.T2I,
            repo="stabilityai/stable-diffusion-xl-base-1.0",
            pipeline_classes=("StableDiffusionXLPipeline",),
            id_patterns=(r"stable-diffusion-xl", r"sdxl"),
            steps=30,
            guidance=5.0,
            size=1024,
            min_multiple=8,
            max_source_images=0,
        ),
        FamilyPreset(
            # SANA's recommended 20 steps and CFG 4.5 (also the diffusers defaults); its
            # DC-AE compresses 32×, so sides are multiples of 32.
            name="sana",
            description="SANA, efficient high-resolution text-to-image",
            task=Task.T2I,
            repo="Efficient-Large-Model/Sana_1600M_1024px_diffusers",
            pipeline_classes=("SanaPipeline",),
            id_patterns=(r"\bsana",),
            steps=20,
            guidance=4.5,
            size=1024,
            max_source_images=0,
        ),
        FamilyPreset(
            # The authors' demo: 50 steps, text CFG 7.5, image CFG 1.5, inputs around 512 px
            # (the model was trained at 256-512 px). The output follows the source size. The
            # pipeline wants one source per output image (it warns when it has to repeat one).
            name="instruct-pix2pix",
            description="InstructPix2Pix, instruction-based image editing",
            task=Task.EDIT,
            repo="timbrooks/instruct-pix2pix",
            pipeline_classes=("StableDiffusionInstructPix2PixPipeline",),
            id_patterns=(r"instruct-?pix2pix",),
            steps=50,
            guidance=7.5,
            min_multiple=8,
            sizing="source",
            edit_longest_edge=512,
            source_per_image=True,
            call_defaults={"image_guidance_scale": 1.5},
        ),
        FamilyPreset(
            # SD 1.x/2.x: 50 steps and CFG 7.5 from the original release (and diffusers);
            # the default size comes from the UNet (512 for v1, 768 for v2).
            name="stable-diffusion",
            description="Stable Diffusion 1.x / 2.x, text-to-image",
            task=Task.T2I,
            repo="stable-diffusion-v1-5/stable-diffusion-v1-5",
            pipeline_classes=("StableDiffusionPipeline",),
            id_patterns=(r"stable-diffusion-(v-?)?[12]", r"\bsd-?(v-?)?1[.-]?5"),
            steps=50,
            guidance=7.5,
            min_multiple=8,
            max_source_images=0,
        ),
        FamilyPreset(
            # Any other diffusers pipeline: its own defaults, task and size arguments read
            # from its call signature, sides in multiples of its VAE factor (at least 8).
            name="generic",
            description="any other diffusers pipeline, with the pipeline's own defaults",
            task=None,
            latent_patch=None,
            min_multiple=8,
            sizing="auto",
            max_source_images=None,
        ),
    )
}


def get_preset(name: str) -> FamilyPreset:
    """The preset called ``name``; an unknown name lists the known ones."""
    key = name.strip().lower()
    if key not in PRESETS:
        raise InputError(f"unknown model family {name!r}: use one of {', '.join(PRESETS)}")
    return PRESETS[key]


def alias_repo(model: str) -> str | None:
    """The Hugging Face id a preset name stands for (``flux-schnell`` → its repo), else None."""
    preset = PRESETS.get(model.strip().lower())
    return preset.repo if preset else None


def detect_family(model: str, *, family: str | None = None) -> FamilyPreset:
    """Match ``model`` (a local folder or a hub id) to a preset; ``family`` overrides the match."""
    if family:
        return get_preset(family)
    class_name, index_dir = _pipeline_class(model)
    if class_name:
        preset = _preset_for_class(class_name, index_dir)
        if preset is not None:
            logger.debug("family of %s from pipeline class %s: %s", model, class_name, preset.name)
            return preset
    lowered = model.lower()
    for preset in PRESETS.values():
        if any(re.search(pattern, lowered) for pattern in preset.id_patterns):
            logger.debug("family of %s from its name: %s", model, preset.name)
            return preset
    logger.debug("no family matched %s (class %s): generic", model, class_name)
    return PRESETS["generic"]


def pipeline_class_name(model: str | Path) -> str | None:
    """The ``_class_name`` from the model's ``model_index.json``, if it can be read without a download.

    ``model`` is a local pipeline folder or a Hub id already in the local cache; anything else
    (or an unreadable index, which is logged) gives None. The generators and RL both ask here.
    """
    return _pipeline_class(str(model))[0]


def _pipeline_class(model: str) -> tuple[str | None, Path | None]:
    index = _local_model_index(model)
    if index is None:
        return None, None
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        logger.warning("cannot read %s: %s", index, exc)
        return None, None
    name = data.get("_class_name") if isinstance(data, dict) else None
    return (name if isinstance(name, str) else None), index.parent


def _local_model_index(model: str) -> Path | None:
    """``model_index.json`` of a local folder, or of a hub id already in the local cache."""
    path = Path(model).expanduser()
    if path.is_dir():
        candidate = path / "model_index.json"
        return candidate if candidate.is_file() else None
    if model.count("/") != 1:
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - diffusers depends on huggingface_hub
        return None
    try:
        cached = try_to_load_from_cache(model, "model_index.json")
    except ValueError:  # not a valid repo id
        return None
    return Path(cached) if isinstance(cached, str) else None


def _preset_for_class(class_name: str, index_dir: Path | None) -> FamilyPreset | None:
    if class_name == "FluxPipeline" and index_dir is not None and _is_flux_schnell(index_dir):
        return PRESETS["flux-schnell"]
    for preset in PRESETS.values():
        if class_name in preset.pipeline_classes:
            return preset
    return None


def _is_flux_schnell(index_dir: Path) -> bool:
    """FLUX.1 [schnell] is the FluxPipeline whose transformer has no guidance embedding."""
    config = index_dir / "transformer" / "config.json"
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return data.get("guidance_embeds") is False
