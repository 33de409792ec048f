"""Model families the DiffusionNFT trainer supports, and how to pick one for a pipeline."""

from __future__ import annotations

from gcr.errors import ConfigError
from gcr.training.rl.families.base import Conditioning, FlowFamily, TransformerCall
from gcr.training.rl.families.flux import FluxFamily, FluxKontextFamily
from gcr.training.rl.families.qwen import QwenImageEditFamily, QwenImageFamily
from gcr.training.rl.families.sd3 import SD3Family

FAMILIES: dict[str, type[FlowFamily]] = {
    cls.name: cls for cls in (FluxFamily, FluxKontextFamily, SD3Family, QwenImageFamily, QwenImageEditFamily)
}

__all__ = [
    "FAMILIES",
    "Conditioning",
    "FlowFamily",
    "FluxFamily",
    "FluxKontextFamily",
    "QwenImageEditFamily",
    "QwenImageFamily",
    "SD3Family",
    "TransformerCall",
    "family_for_class",
    "get_family",
]


def get_family(name: str) -> type[FlowFamily]:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ConfigError(
            f"unknown model family {name!r}: use auto or one of {', '.join(FAMILIES)}"
        ) from None


def family_for_class(class_name: str) -> type[FlowFamily]:
    """The family handling the diffusers pipeline class ``class_name``."""
    for cls in FAMILIES.values():
        if class_name in cls.pipeline_classes:
            return cls
    known = ", ".join(c for f in FAMILIES.values() for c in f.pipeline_classes)
    raise ConfigError(f"{class_name} is not a supported flow-matching pipeline for RL; supported: {known}")
