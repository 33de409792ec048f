"""Generators: text-to-image and image-editing models behind one interface.

Main entry points::

    from gcr.generators import GenerationRequest, create_generator

    gen = create_generator("diffusers", "black-forest-labs/FLUX.1-Kontext-dev")
    result = gen.generate(GenerationRequest("make the sky purple", source_images=[image], seed=42))

Names are imported lazily, so ``import gcr.generators.base`` does not load torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gcr.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from gcr.generators.base import GenerationRequest, GenerationResult, Generator, ProgressCallback
    from gcr.generators.diffusers_adapter import DiffusersGenerator
    from gcr.generators.loading import PipelineCache, default_cache
    from gcr.generators.lora import LoraSpec
    from gcr.generators.openai_images import OpenAIImagesGenerator
    from gcr.generators.presets import PRESETS, FamilyPreset, detect_family
    from gcr.generators.registry import (
        available_generators,
        create_generator,
        get_generator_factory,
        register_generator,
    )

_EXPORTS: dict[str, str] = {
    "GenerationRequest": "gcr.generators.base",
    "GenerationResult": "gcr.generators.base",
    "Generator": "gcr.generators.base",
    "ProgressCallback": "gcr.generators.base",
    "DiffusersGenerator": "gcr.generators.diffusers_adapter",
    "PipelineCache": "gcr.generators.loading",
    "default_cache": "gcr.generators.loading",
    "LoraSpec": "gcr.generators.lora",
    "OpenAIImagesGenerator": "gcr.generators.openai_images",
    "PRESETS": "gcr.generators.presets",
    "FamilyPreset": "gcr.generators.presets",
    "detect_family": "gcr.generators.presets",
    "available_generators": "gcr.generators.registry",
    "create_generator": "gcr.generators.registry",
    "get_generator_factory": "gcr.generators.registry",
    "register_generator": "gcr.generators.registry",
}

__all__ = [
    "PRESETS",
    "DiffusersGenerator",
    "FamilyPreset",
    "GenerationRequest",
    "GenerationResult",
    "Generator",
    "LoraSpec",
    "OpenAIImagesGenerator",
    "PipelineCache",
    "ProgressCallback",
    "available_generators",
    "create_generator",
    "default_cache",
    "detect_family",
    "get_generator_factory",
    "register_generator",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals(), __all__)
