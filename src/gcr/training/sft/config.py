"""``SFTRunConfig``: one dataclass for the SFT run, read from YAML, CLI flags or Python.

Every field carries its help text in ``metadata["help"]`` (the CLI builds its
``--flags`` from them), and the defaults are the upstream RationalRewards SFT
settings (docs/training.md): full fine-tuning with the vision tower and
projector frozen, learning rate 1e-5, 3 epochs, cosine schedule, 5% warmup,
bf16, at most 802,816 image pixels, sequences cut at 32k tokens. Batch size and
gradient accumulation are not given upstream; ours are documented below.

Precedence: dataclass defaults < YAML file < CLI flags (or keyword overrides).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gcr.errors import ConfigError

FINETUNE_MODES = ("full", "lora")
LLM_LINEAR_LAYERS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def setting(default: Any, help: str, **meta: Any) -> Any:
    """A dataclass field with its help text (and optional ``choices``) in the metadata."""
    return field(default=default, metadata={"help": help, **meta})


@dataclass
class SFTRunConfig:
    """Settings of one supervised fine-tuning run of a critic (PARROT phase 3)."""

    model: str = setting(
        "", "Student model: a local folder or Hub id of a Qwen3-VL-class image-text-to-text model."
    )
    dataset: str = setting(
        "",
        "SFT dataset: the folder from `gcr train parrot build-dataset` (or its hf/ folder, "
        "or any datasets save_to_disk folder with messages + images records).",
    )
    output_dir: str = setting(
        "", "Where checkpoints, the final model (loadable with --critic PATH) and results go."
    )
    finetune: str = setting(
        "full",
        "full: train every unfrozen weight (upstream). lora: train LoRA adapters (peft), "
        "merged into the saved model at the end.",
        choices=FINETUNE_MODES,
    )
    lora_r: int = setting(16, "LoRA rank.")
    lora_alpha: int = setting(32, "LoRA scaling alpha.")
    lora_dropout: float = setting(0.05, "LoRA dropout.")
    lora_target_modules: list[str] = field(
        default_factory=lambda: list(LLM_LINEAR_LAYERS),
        metadata={
            "help": "Linear layers (by name) that get LoRA adapters; vision-tower layers are excluded "
            "while the tower is frozen."
        },
    )
    merge_lora: bool = setting(
        True,
        "Merge the LoRA adapters into the base weights and save a full model (the "
        "adapter is also kept under output_dir/adapter).",
    )
    freeze_vision_tower: bool = setting(True, "Keep the vision encoder frozen (upstream).")
    freeze_projector: bool = setting(True, "Keep the vision-language projector (merger) frozen (upstream).")
    learning_rate: float = setting(
        1e-5, "Peak learning rate (upstream full fine-tune: 1e-5; LoRA usually wants ~1e-4)."
    )
    num_train_epochs: float = setting(3.0, "Epochs over the training split (upstream: 3).")
    max_steps: int = setting(-1, "Stop after this many optimizer steps (-1: run the epochs).")
    lr_scheduler_type: str = setting("cosine", "Learning-rate schedule (upstream: cosine).")
    warmup_ratio: float = setting(0.05, "Share of the steps spent warming up (upstream: 5%).")
    weight_decay: float = setting(0.0, "AdamW weight decay.")
    max_grad_norm: float = setting(1.0, "Gradient clipping norm.")
    per_device_train_batch_size: int = setting(
        1, "Examples per device per step (ours; long multi-image prompts)."
    )
    gradient_accumulation_steps: int = setting(8, "Steps accumulated per optimizer update (ours).")
    bf16: bool = setting(True, "Train in bfloat16 mixed precision (upstream). Turn off on CPUs without bf16.")
    gradient_checkpointing: bool = setting(True, "Recompute activations in the backward pass to save memory.")
    max_image_pixels: int = setting(
        802_816, "Images are downscaled to at most this many pixels (upstream: 802,816)."
    )
    max_length: int = setting(32_768, "Sequences are cut at this many tokens (upstream cutoff: 32k).")
    seed: int = setting(42, "Random seed.")
    logging_steps: int = setting(10, "Log the loss every this many steps.")
    save_strategy: str = setting(
        "epoch", "When to write checkpoints: no, steps or epoch.", choices=("no", "steps", "epoch")
    )
    save_steps: int = setting(500, "Checkpoint interval when save_strategy is steps.")
    save_total_limit: int | None = setting(2, "Keep at most this many checkpoints (none: keep all).")
    eval_strategy: str = setting(
        "no",
        "When to compute the validation loss during training: no, steps or epoch.",
        choices=("no", "steps", "epoch"),
    )
    eval_pairwise: bool = setting(
        True,
        "After training, measure pairwise accuracy on the validation split's "
        "pairwise examples with the saved model (gcr eval's accuracy rules).",
    )
    eval_max_pairs: int | None = setting(None, "Evaluate at most this many validation pairs (none: all).")
    eval_max_new_tokens: int = setting(4096, "Token limit of each evaluation critique.")
    eval_temperature: float = setting(
        0.1, "Sampling temperature of the evaluation critiques (upstream: 0.1)."
    )
    eval_batch_size: int = setting(8, "Critiques generated together during the evaluation.")
    tie_tolerance: float = setting(0.0, "Score-sum difference still counted as a tie in the evaluation.")
    deepspeed: str | None = setting(
        None, "DeepSpeed JSON config for multi-GPU training (see examples/accelerate/)."
    )
    report_to: str = setting("none", "Where to log metrics: none, tensorboard, wandb, ...")
    dataloader_num_workers: int = setting(0, "Worker processes that load and decode examples.")

    def __post_init__(self) -> None:
        problems = []
        for name in ("model", "dataset", "output_dir"):
            if not str(getattr(self, name)).strip():
                problems.append(f"{name} is required")
        for f in dataclasses.fields(self):
            choices = f.metadata.get("choices")
            if choices and getattr(self, f.name) not in choices:
                problems.append(
                    f"{f.name} must be one of {', '.join(choices)}, not {getattr(self, f.name)!r}"
                )
        if self.learning_rate <= 0:
            problems.append("learning_rate must be positive")
        if self.num_train_epochs <= 0 and self.max_steps <= 0:
            problems.append("num_train_epochs or max_steps must be positive")
        if not 0 <= self.warmup_ratio < 1:
            problems.append("warmup_ratio must be in [0, 1)")
        for name in (
            "per_device_train_batch_size",
            "gradient_accumulation_steps",
            "max_image_pixels",
            "max_length",
            "lora_r",
            "eval_max_new_tokens",
            "eval_batch_size",
            "logging_steps",
        ):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1")
        if self.finetune == "lora" and not self.lora_target_modules:
            problems.append("lora_target_modules is empty")
        if problems:
            raise ConfigError("invalid SFT config: " + "; ".join(problems))

    # -- YAML and overrides ----------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: str | Path | None = None, **overrides: Any) -> SFTRunConfig:
        """Defaults, then the YAML file (if given), then ``overrides`` (None values are ignored)."""
        data: dict[str, Any] = read_yaml(path) if path is not None else {}
        data.update({k: v for k, v in overrides.items() if v is not None})
        return config_from_mapping(cls, data, str(path) if path else "the overrides")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False), encoding="utf-8")


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from ``path``, or a :class:`ConfigError` saying what is wrong with it."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p} must hold a mapping of settings, not a {type(data).__name__}")
    return data


_T = typing.TypeVar("_T")


def config_from_mapping(cls: type[_T], data: Mapping[str, Any], where: str) -> _T:
    """Build dataclass ``cls`` from ``data``; unknown keys and wrong types are a :class:`ConfigError`."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"unknown setting(s) in {where}: {', '.join(unknown)} (known: {', '.join(fields)})")
    hints = typing.get_type_hints(cls)
    values = {name: _coerce(value, hints[name], name, where) for name, value in data.items()}
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"invalid settings in {where}: {exc}") from None


def _coerce(value: Any, hint: Any, name: str, where: str) -> Any:
    """Accept what YAML gives (ints for floats, a single string for a list); refuse anything else."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], name, where) if len(inner) == 1 else value
    if origin is list:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise ConfigError(f"{name} in {where} must be a list, not {value!r}")
        return [_coerce(v, args[0] if args else Any, name, where) for v in items]
    if origin is tuple:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise ConfigError(f"{name} in {where} must be a list, not {value!r}")
        return tuple(items)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{name} in {where} must be true or false, not {value!r}")
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        try:
            return float(value)  # YAML reads "1e-5" as a string
        except ValueError:
            pass
    if (hint in (int, float, str) and not isinstance(value, hint)) or (
        hint is int and isinstance(value, bool)
    ):
        raise ConfigError(f"{name} in {where} must be {hint.__name__}, not {value!r}")
    return value
