"""One rule for the device and dtype a local model runs in (diffusers generators and the in-process critic).

Device: ``None``/``"auto"`` picks CUDA, then Apple MPS, then the CPU. A CUDA
device always comes back with its index: a bare ``cuda`` means the current
device of the calling thread (``torch.cuda.set_device``, as accelerate sets it
per process), and models may later load in a worker thread whose current
device is 0. Explicit devices are checked, never silently replaced.

Dtype: ``None``/``"auto"`` gives bfloat16 on CUDA GPUs that support it
(float16 on older ones), bfloat16 on Apple MPS (the dtype FLUX, SD3, Qwen-Image
and Qwen3-VL are released in; MPS runs it on macOS 14 and later), float32 on
the CPU.

Training (:func:`training_dtype`) never picks float16 on its own: weights train
in bfloat16 on CUDA GPUs that support it and in float32 everywhere else, since
float16 weights without loss scaling lose small updates and overflow.

Half precision: FLUX, SD3 and Qwen-Image overflow in float16 and turn out NaN
latents, i.e. black images (huggingface/diffusers#9096 for FLUX,
Comfy-Org/ComfyUI#10751 for Qwen-Image); :func:`half_precision_warning` says so
where a generator of those families would run in float16 on a GPU.
"""

from __future__ import annotations

import torch

from gcr.errors import ConfigError

_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


def mps_available() -> bool:
    """Whether Apple's Metal backend can be used (False on builds without it)."""
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """The device to run on (see the module docstring); a :class:`ConfigError` names an unusable one."""
    if device is None or (isinstance(device, str) and device.strip().lower() == "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"unknown device {device!r}: use auto, cpu, cuda, cuda:N or mps") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} asked for, but CUDA is not available here: use --device cpu")
    if resolved.type == "cuda" and resolved.index is not None and resolved.index >= torch.cuda.device_count():
        # Caught here, the mistake is named; later it surfaces from .to() as "invalid device ordinal".
        count = torch.cuda.device_count()
        raise ConfigError(
            f"device {device!r} asked for, but this process sees {count} CUDA device(s) "
            f"(cuda:0 to cuda:{count - 1}); pick one of those or check CUDA_VISIBLE_DEVICES"
        )
    if resolved.type == "mps" and not mps_available():
        raise ConfigError(f"device {device!r} asked for, but MPS is not available here: use --device cpu")
    if resolved.type == "cuda" and resolved.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return resolved


def default_dtype(device: torch.device) -> torch.dtype:
    """The dtype a model runs in on ``device`` when none is asked for."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.bfloat16
    return torch.float32


def training_dtype(device: torch.device) -> torch.dtype:
    """The dtype weights are trained in on ``device`` when none is asked for (see the module docstring)."""
    return torch.bfloat16 if device.type == "cuda" and cuda_bf16_supported() else torch.float32


def cuda_bf16_supported() -> bool:
    """Whether this process has a CUDA GPU that computes in bfloat16 (Ampere or newer)."""
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def parse_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """A dtype name (``float32``, ``bf16``, ``torch.float16``, ...) as a torch dtype; no ``auto`` here."""
    if isinstance(dtype, torch.dtype):
        return dtype
    key = dtype.strip().lower().removeprefix("torch.")
    if key not in _DTYPES:
        raise ConfigError(f"unknown dtype {dtype!r}: use float32, bfloat16 or float16")
    return _DTYPES[key]


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """``dtype`` as a torch dtype; ``None``/``"auto"`` gives :func:`default_dtype` of ``device``."""
    if dtype is None or (isinstance(dtype, str) and dtype.strip().lower() == "auto"):
        return default_dtype(device)
    try:
        return parse_dtype(dtype)
    except ConfigError:
        raise ConfigError(f"unknown dtype {dtype!r}: use auto, float32, bfloat16 or float16") from None


def resolve_device_and_dtype(
    device: str | torch.device | None = None, dtype: str | torch.dtype | None = None
) -> tuple[torch.device, torch.dtype]:
    """The device and dtype a local model (generator or in-process critic) runs in."""
    resolved = resolve_device(device)
    return resolved, resolve_dtype(dtype, resolved)


def half_precision_warning(family: str, dtype: torch.dtype, device: torch.device) -> str | None:
    """The warning to log when a generator family that breaks in float16 would run in it on a GPU."""
    if dtype is not torch.float16 or device.type != "cuda":
        return None
    why = (
        "this GPU has no bfloat16 support, so float16 was picked"
        if not torch.cuda.is_bf16_supported()
        else "float16 was asked for"
    )
    return (
        f"{family} in float16 on {device}: {why}. {family} is known to overflow in float16 and give "
        "NaN latents (black images); use --dtype float32, or a GPU with bfloat16 (Ampere or newer)"
    )
