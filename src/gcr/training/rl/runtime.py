"""Devices, precision, trackers and model loading for an RL run.

``auto`` settings resolve to bf16 weights and bf16 autocast on CUDA devices that
support it and to float32 elsewhere (CPU runs, tests): the training rule of
:func:`gcr.devices.training_dtype`. Trackers resolve to what
is installed: TensorBoard when ``tensorboard`` imports, W&B when ``wandb``
imports and is configured (``WANDB_API_KEY`` or ``WANDB_MODE`` set), so a run
never stops to ask for a login.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import torch

from gcr.devices import cuda_bf16_supported, parse_dtype, training_dtype
from gcr.errors import ConfigError, GeneratorLoadError
from gcr.generators.presets import pipeline_class_name
from gcr.training.rl.config import RLConfig
from gcr.training.rl.families import FlowFamily, family_for_class, get_family

logger = logging.getLogger(__name__)


def resolve_mixed_precision(config: RLConfig) -> str:
    if config.mixed_precision != "auto":
        if config.mixed_precision != "no" and not torch.cuda.is_available():
            raise ConfigError(f"mixed_precision={config.mixed_precision} needs a CUDA device; use auto or no")
        return config.mixed_precision
    return "bf16" if cuda_bf16_supported() else "no"


def resolve_dtype(config: RLConfig, device: torch.device) -> torch.dtype:
    """The weights' dtype on ``device``: the config's, else the training rule of :mod:`gcr.devices`."""
    if config.dtype != "auto":
        return parse_dtype(config.dtype)
    return training_dtype(device)


def resolve_trackers(config: RLConfig) -> list[str]:
    trackers: list[str] = []
    for name in config.log_with:
        if name != "auto":
            trackers.append(name)
            continue
        if importlib.util.find_spec("tensorboard") is not None:
            trackers.append("tensorboard")
        if importlib.util.find_spec("wandb") is not None and (
            os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_MODE")
        ):
            trackers.append("wandb")
    return list(dict.fromkeys(trackers))


def make_accelerator(config: RLConfig) -> Any:
    """An ``accelerate.Accelerator`` for data-parallel training with the run's precision and trackers."""
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration

    output = Path(config.output_dir)
    project = ProjectConfiguration(project_dir=str(output), logging_dir=str(output / "logs"))
    trackers = resolve_trackers(config)
    return Accelerator(
        mixed_precision=resolve_mixed_precision(config),
        log_with=trackers or None,
        project_config=project,
    )


def tracker_config(config: RLConfig) -> dict[str, Any]:
    """The config flattened to scalars, as TensorBoard's hparams and W&B accept."""
    flat: dict[str, Any] = {}
    for key, value in config.to_dict().items():
        if isinstance(value, bool | int | float | str):
            flat[key] = value
        elif value is None:
            flat[key] = "none"
        else:
            flat[key] = str(value)
    return flat


def load_pipeline(config: RLConfig, device: torch.device, dtype: torch.dtype) -> tuple[Any, type[FlowFamily]]:
    """Load the pipeline, freeze it, move it to ``device``; return it with its family class."""
    from diffusers import DiffusionPipeline

    class_name = pipeline_class_name(config.pretrained_model)
    if config.family == "auto" and class_name is not None:
        family_for_class(class_name)  # fail before loading weights
    try:
        with warnings.catch_warnings():
            # `torch_dtype=` works on every supported diffusers (>= 0.35); `dtype=` is accepted only
            # since huggingface/diffusers#14205 (older versions do not take it and load fp32 weights).
            warnings.filterwarnings("ignore", message=r".*torch_dtype.*", category=FutureWarning)
            pipe = DiffusionPipeline.from_pretrained(config.pretrained_model, torch_dtype=dtype)
    except (OSError, ValueError) as exc:
        raise GeneratorLoadError(f"cannot load the pipeline {config.pretrained_model!r}: {exc}") from None
    family = family_for_class(type(pipe).__name__) if config.family == "auto" else get_family(config.family)
    if config.family != "auto" and type(pipe).__name__ not in family.pipeline_classes:
        raise ConfigError(
            f"family {config.family!r} expects {', '.join(family.pipeline_classes)}, but "
            f"{config.pretrained_model} is a {type(pipe).__name__}"
        )
    if not family.verified:
        logger.warning(
            "the %s call layout was written from diffusers' source but has not been run in gcr's tests; "
            "check the first epoch's rewards and samples",
            family.name,
        )
    for name, component in pipe.components.items():
        if isinstance(component, torch.nn.Module):
            component.requires_grad_(False)
            component.eval()
            logger.debug("froze %s", name)
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe, family


def gather_all(accelerator: Any, value: Any) -> list[Any]:
    """``value`` from every process, in process order (a list of one on a single process)."""
    if accelerator.num_processes == 1:
        return [value]
    from accelerate.utils import gather_object

    return list(gather_object([value]))
