"""LoRA adapters on a loaded diffusers pipeline.

Two layouts are read:

* the diffusers layout, written by a pipeline's ``save_lora_weights`` (one
  ``pytorch_lora_weights.safetensors`` whose keys start with the component name,
  e.g. ``transformer.``), or a single ``.safetensors`` file in that layout, or a hub id;
* the peft layout, written by ``PeftModel.save_pretrained`` on the denoiser
  (``adapter_config.json`` + ``adapter_model.safetensors``): this is how an
  RL-trained adapter is usually saved, and it is stacked on the pipeline's
  transformer or UNet with its own rank and alpha from the config.

Several adapters stack; each has a scale. The loaded ones are switched on with
``set_adapters`` so the pipeline applies exactly the requested combination.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gcr.errors import DependencyError, GeneratorLoadError, InputError

logger = logging.getLogger(__name__)

_PEFT_CONFIG = "adapter_config.json"
_PEFT_WEIGHTS = "adapter_model.safetensors"
_HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")


@dataclass(frozen=True)
class LoraSpec:
    """One LoRA to stack on the base model: a folder, a ``.safetensors`` file or a hub id, and a scale."""

    path: str
    scale: float = 1.0

    @classmethod
    def parse(cls, text: str) -> LoraSpec:
        """Read ``PATH`` or ``PATH:SCALE`` (for example ``runs/rl/adapter:0.8``)."""
        text = text.strip()
        if not text:
            raise InputError("empty LoRA path: pass a folder, a .safetensors file or a hub id")
        head, sep, tail = text.rpartition(":")
        if sep and head:
            try:
                return cls(head, float(tail))
            except ValueError:
                pass  # a ':' that is part of the path (e.g. a Windows drive)
        return cls(text)

    def fingerprint(self) -> str:
        """Identity for cache keys: resolved path, file sizes and modification times, and scale.

        A re-trained adapter written to the same folder therefore gets a new key and is reloaded.
        """
        path = Path(self.path).expanduser()
        if not path.exists():
            return f"{self.path}@{self.scale:g}"
        files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file())
        stamp = ",".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)
        return f"{path.resolve()}[{stamp}]@{self.scale:g}"


def apply_loras(pipe: Any, loras: Sequence[LoraSpec]) -> list[str]:
    """Load ``loras`` into ``pipe`` and activate them with their scales; return the adapter names."""
    if not loras:
        return []
    if not hasattr(pipe, "load_lora_weights"):
        raise GeneratorLoadError(f"{type(pipe).__name__} does not support LoRA adapters; drop --lora")
    if importlib.util.find_spec("peft") is None:
        raise DependencyError("peft", "train", "Loading LoRA adapters")
    names: list[str] = []
    for i, spec in enumerate(loras):
        name = f"gcr_lora_{i}"
        try:
            _load_one(pipe, spec, name)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise GeneratorLoadError(
                f"cannot load LoRA {spec.path!r} into {type(pipe).__name__}: {exc}. "
                "Check that it was trained for this base model."
            ) from exc
        names.append(name)
        logger.info("loaded LoRA %s as %s (scale %g)", spec.path, name, spec.scale)
    pipe.set_adapters(names, adapter_weights=[spec.scale for spec in loras])
    return names


def _load_one(pipe: Any, spec: LoraSpec, name: str) -> None:
    path = Path(spec.path).expanduser()
    if path.is_dir() and (path / _PEFT_CONFIG).is_file():
        _load_peft_dir(pipe, path, name)
    elif path.is_dir():
        if not any(path.glob("*.safetensors")):
            raise GeneratorLoadError(
                f"no LoRA weights in {path}: expected {_PEFT_CONFIG} + {_PEFT_WEIGHTS} (peft) "
                "or a .safetensors file from save_lora_weights"
            )
        pipe.load_lora_weights(str(path), adapter_name=name)
    elif path.is_file():
        if path.suffix != ".safetensors":
            raise GeneratorLoadError(f"LoRA file {path} is not a .safetensors file")
        pipe.load_lora_weights(str(path.parent), weight_name=path.name, adapter_name=name)
    elif _HUB_ID.fullmatch(spec.path):
        pipe.load_lora_weights(spec.path, adapter_name=name)
    else:
        raise GeneratorLoadError(f"LoRA not found: {spec.path} (not a folder, a file or a hub id)")


def _load_peft_dir(pipe: Any, path: Path, name: str) -> None:
    """Inject a peft-saved adapter into the pipeline's denoiser, keeping its rank and alpha."""
    from safetensors.torch import load_file

    weights = path / _PEFT_WEIGHTS
    if not weights.is_file():
        raise GeneratorLoadError(f"{path} has {_PEFT_CONFIG} but no {_PEFT_WEIGHTS}")
    config = json.loads((path / _PEFT_CONFIG).read_text(encoding="utf-8"))
    if config.get("peft_type", "LORA") != "LORA":
        raise GeneratorLoadError(f"{path} holds a {config['peft_type']} adapter; only LoRA is supported")
    denoiser_name = "transformer" if getattr(pipe, "transformer", None) is not None else "unet"
    denoiser = getattr(pipe, denoiser_name, None)
    if denoiser is None or not hasattr(denoiser, "load_lora_adapter"):
        raise GeneratorLoadError(f"{type(pipe).__name__} has no transformer or UNet to stack a LoRA on")
    state = {_strip_peft_prefix(k): v for k, v in load_file(str(weights)).items()}
    denoiser.load_lora_adapter(
        state, prefix=None, adapter_name=name, metadata=_lora_config_fields(config), _pipeline=pipe
    )


def _strip_peft_prefix(key: str) -> str:
    # PeftModel.save_pretrained writes "base_model.model.<module path>.lora_A.weight".
    return key.removeprefix("base_model.model.")


def _lora_config_fields(config: dict[str, Any]) -> dict[str, Any]:
    """The LoraConfig fields of a saved ``adapter_config.json`` that shape the injected layers."""
    keep = (
        "r",
        "lora_alpha",
        "target_modules",
        "lora_dropout",
        "bias",
        "use_rslora",
        "use_dora",
        "rank_pattern",
        "alpha_pattern",
        "init_lora_weights",
        "lora_bias",
    )
    return {k: config[k] for k in keep if k in config}
