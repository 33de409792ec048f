"""The DiffusionNFT run configuration: one dataclass for Python, YAML and the CLI.

Every field carries help text. Defaults follow the RationalRewards release
(its FLUX.1 Kontext recipe) and the flow_grpo base configuration that recipe
extends; where a field has a different upstream value, the help text says so.
Fields left ``None`` take the model family's default (see
:mod:`gcr.training.rl.families`).

Overrides use dotted keys: ``learning_rate=3e-4``, ``rewards.0.weight=0.5``,
``lora_target_modules=[attn.to_q,attn.to_k]``. Values are read as YAML and then
checked against the field's type.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gcr.errors import ConfigError
from gcr.training.rl.typed_config import apply_overrides, build_dataclass


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass
class RewardConfig:
    """One reward source; the run's reward is the weighted sum of all of them."""

    name: str = field(metadata=_help("Name used in logs (``reward/<name>``); must be unique in a run."))
    weight: float = field(default=1.0, metadata=_help("Weight of this reward in the combined reward."))
    function: str | None = field(
        default=None,
        metadata=_help(
            "Import path 'package.module:attribute' of a reward callable "
            "(images, prompts, sources) -> list[float | None]; None marks a failed sample. "
            "With `kwargs`, the attribute is a factory called with them to make the callable. "
            "Built-in: 'gcr.training.rl.rewards:brightness'."
        ),
    )
    kwargs: dict[str, Any] = field(
        default_factory=dict, metadata=_help("Keyword arguments for the factory named by `function`.")
    )
    critic: str | None = field(
        default=None,
        metadata=_help(
            "A critic as the reward: an OpenAI-compatible server URL (e.g. a vLLM server on its own "
            "GPUs, 'http://host:8000/v1'), a local folder or a Hugging Face id (see gcr.critic.load_critic)."
        ),
    )
    critic_model: str | None = field(
        default=None, metadata=_help("Served model name on the critic server (default: its only model).")
    )
    dimensions: dict[str, float] | None = field(
        default=None,
        metadata=_help(
            "Critic dimensions and their weights in the critic's reward, e.g. {text_faithfulness: 1, "
            "physical_quality: 1}. Default: every dimension the task has, equal weights "
            "(upstream's RL code left image_faithfulness out; name the dimensions to do the same)."
        ),
    )
    max_concurrency: int = field(
        default=32, metadata=_help("Critic requests in flight at once (asyncio.gather over a semaphore).")
    )
    task: str | None = field(
        default=None,
        metadata=_help("Critic task 't2i' or 'edit'; default: 'edit' when a prompt has sources."),
    )

    def __post_init__(self) -> None:
        if not self.name or not str(self.name).strip():
            raise ConfigError("every reward needs a non-empty `name`")
        if (self.function is None) == (self.critic is None):
            raise ConfigError(f"reward {self.name!r}: set exactly one of `function` or `critic`")
        if self.function is not None and ":" not in self.function:
            raise ConfigError(
                f"reward {self.name!r}: `function` must look like 'package.module:attribute', "
                f"got {self.function!r}"
            )
        if self.kwargs and self.function is None:
            raise ConfigError(f"reward {self.name!r}: `kwargs` only applies to a `function` reward")
        if self.critic is None and (self.dimensions is not None or self.critic_model is not None):
            raise ConfigError(
                f"reward {self.name!r}: `dimensions` and `critic_model` apply to a `critic` reward"
            )
        if self.max_concurrency < 1:
            raise ConfigError(f"reward {self.name!r}: max_concurrency must be at least 1")


_PRECISIONS = ("auto", "no", "bf16", "fp16")
_DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass
class RLConfig:
    """Settings of a DiffusionNFT run (docs/training.md)."""

    # -- model -----------------------------------------------------------------
    pretrained_model: str = field(
        default="",
        metadata=_help(
            "Diffusers pipeline folder or Hugging Face id (FLUX.1, FLUX.1 Kontext, "
            "SD3/3.5, Qwen-Image, Qwen-Image-Edit)."
        ),
    )
    family: str = field(
        default="auto",
        metadata=_help(
            "Model family: auto (from the pipeline class), flux, flux-kontext, sd3, qwen-image, "
            "qwen-image-edit."
        ),
    )
    dtype: str = field(
        default="auto",
        metadata=_help(
            "Weights dtype: auto (bfloat16 on CUDA, float32 on CPU), float32, "
            "bfloat16, float16. LoRA weights are always kept in float32."
        ),
    )
    mixed_precision: str = field(
        default="auto",
        metadata=_help(
            "accelerate mixed precision: auto (bf16 where the GPU supports it, "
            "else no), no, bf16, fp16. Upstream: bf16."
        ),
    )
    # -- data ------------------------------------------------------------------
    train_prompts: str = field(
        default="", metadata=_help('JSONL of training prompts: {"prompt": ..., "source"|"sources": ...}.')
    )
    eval_prompts: str | None = field(
        default=None, metadata=_help("JSONL of held-out prompts scored every `eval_every` epochs.")
    )
    output_dir: str = field(default="rl-output", metadata=_help("Where checkpoints, LoRA and logs go."))
    rewards: list[RewardConfig] = field(
        default_factory=list, metadata=_help("Reward sources, combined by weight (see RewardConfig).")
    )
    # -- sampling ----------------------------------------------------------------
    resolution: int = field(default=512, metadata=_help("Square image side in pixels. Upstream: 512."))
    num_inference_steps: int = field(
        default=15,
        metadata=_help(
            "Rollout denoising steps; training uses these timesteps. Upstream: 10-15 (15 for FLUX.1 Kontext)."
        ),
    )
    eval_num_inference_steps: int | None = field(
        default=None,
        metadata=_help(
            "Denoising steps for evaluation (default: num_inference_steps; upstream evaluated with 20)."
        ),
    )
    guidance_scale: float | None = field(
        default=None,
        metadata=_help(
            "Embedded guidance for guidance-distilled models (default: family's; "
            "2.5 for FLUX.1 Kontext as upstream). True CFG is not used: NFT trains "
            "CFG-free."
        ),
    )
    max_sequence_length: int | None = field(
        default=None, metadata=_help("Text tokens kept by the prompt encoder (default: family's).")
    )
    group_size: int = field(default=8, metadata=_help("Images sampled per prompt (one group). Upstream: 8."))
    prompts_per_epoch: int = field(
        default=8,
        metadata=_help(
            "Prompts (groups) sampled per epoch on each process. Upstream: 64 groups per epoch over 8 GPUs."
        ),
    )
    sample_batch_size: int = field(default=8, metadata=_help("Images per rollout forward pass."))
    overlap_scoring: bool = field(
        default=True,
        metadata=_help(
            "Score each rollout batch (decoded at once) while the next one samples, instead of scoring "
            "the whole epoch after sampling; the rewards are the same."
        ),
    )
    # -- optimisation -------------------------------------------------------------
    num_epochs: int = field(default=100, metadata=_help("Sample-then-train epochs."))
    train_batch_size: int = field(
        default=8, metadata=_help("Samples per training forward pass. Upstream: 16 per GPU.")
    )
    gradient_steps_per_epoch: int = field(
        default=1,
        metadata=_help(
            "Optimizer steps per inner epoch; gradients of all batches in between are "
            "accumulated. Upstream: 1."
        ),
    )
    inner_epochs: int = field(default=1, metadata=_help("Passes over each epoch's samples. Upstream: 1."))
    timestep_fraction: float = field(
        default=1.0, metadata=_help("Fraction of the rollout timesteps trained on per sample. Upstream: 1.0.")
    )
    learning_rate: float | None = field(
        default=None,
        metadata=_help(
            "AdamW learning rate (default: family's; 2e-4 FLUX.1 Kontext, 3e-4 Qwen-Image-Edit as upstream)."
        ),
    )
    adam_beta1: float = field(default=0.9, metadata=_help("AdamW beta1. Upstream: 0.9."))
    adam_beta2: float = field(default=0.999, metadata=_help("AdamW beta2. Upstream: 0.999."))
    adam_weight_decay: float = field(default=1e-4, metadata=_help("AdamW weight decay. Upstream: 1e-4."))
    adam_epsilon: float = field(default=1e-8, metadata=_help("AdamW epsilon. Upstream: 1e-8."))
    max_grad_norm: float = field(default=1.0, metadata=_help("Gradient clipping norm. Upstream: 1.0."))
    gradient_checkpointing: bool = field(
        default=True, metadata=_help("Recompute transformer activations in backward to save memory.")
    )
    # -- NFT objective -----------------------------------------------------------
    beta: float = field(
        default=1.0,
        metadata=_help("NFT mixing β: v+ = βv_θ + (1-β)v_old, v- = (1+β)v_old - βv_θ. Upstream: 1.0."),
    )
    kl_weight: float = field(
        default=1e-4,
        metadata=_help("Weight of the ‖v_θ - v_ref‖² term (reference = adapter off). Upstream: 1e-4."),
    )
    policy_loss_scale: float = field(
        default=1.0,
        metadata=_help(
            "Constant factor on the NFT term. The objective in docs/training.md has none (1.0); "
            "upstream's code multiplies by adv_clip_max (5.0)."
        ),
    )
    adv_clip_max: float = field(default=5.0, metadata=_help("Advantages are clipped to ±this. Upstream: 5."))
    advantage_eps: float = field(
        default=1e-4,
        metadata=_help("Added to the epoch's global reward std before dividing. Upstream: 1e-4."),
    )
    old_decay_rate: float = field(
        default=0.001,
        metadata=_help("Old-adapter decay d = min(rate·step, max) per optimizer step. Upstream: 0.001."),
    )
    old_decay_max: float = field(default=0.5, metadata=_help("Cap of the old-adapter decay. Upstream: 0.5."))
    safeguard_std: float = field(
        default=0.05,
        metadata=_help(
            "A group with reward std below this AND mean above `safeguard_mean` is "
            "masked and its prompt dropped from later sampling."
        ),
    )
    safeguard_mean: float = field(default=0.9, metadata=_help("See `safeguard_std`. Upstream: 0.9."))
    drop_saturated_prompts: bool = field(
        default=True, metadata=_help("Drop saturated prompts from later epochs (besides masking them).")
    )
    min_valid_per_group: int = field(
        default=2,
        metadata=_help(
            "Groups with fewer successfully scored samples than this are masked (no group-relative signal)."
        ),
    )
    # -- LoRA ----------------------------------------------------------------------
    lora_rank: int = field(default=32, metadata=_help("LoRA rank. Upstream: 32."))
    lora_alpha: float = field(default=64.0, metadata=_help("LoRA alpha. Upstream: 64."))
    lora_dropout: float = field(default=0.0, metadata=_help("LoRA dropout."))
    lora_target_modules: list[str] | None = field(
        default=None, metadata=_help("Module names to adapt (default: the family's attention projections).")
    )
    lora_init: str = field(
        default="gaussian",
        metadata=_help(
            "peft init_lora_weights: gaussian (upstream) or true (Kaiming); B starts at zero either way."
        ),
    )
    # -- bookkeeping ---------------------------------------------------------------
    seed: int = field(
        default=42, metadata=_help("Seed of prompts order, noise and timestep draws. Upstream: 42.")
    )
    eval_every: int = field(default=20, metadata=_help("Evaluate every N epochs (0: never). Upstream: 20."))
    eval_images_per_prompt: int = field(
        default=1, metadata=_help("Images per held-out prompt at evaluation.")
    )
    save_every: int = field(
        default=20, metadata=_help("Checkpoint every N epochs (0: only at the end). Upstream: 20.")
    )
    checkpoints_total_limit: int | None = field(
        default=5, metadata=_help("Keep at most this many checkpoints (None: all). Upstream: 5.")
    )
    resume_from: str | None = field(
        default=None, metadata=_help("Checkpoint folder to resume from, or 'latest' (newest in output_dir).")
    )
    log_with: list[str] = field(
        default_factory=lambda: ["auto"],
        metadata=_help(
            "accelerate trackers: tensorboard, wandb, ... 'auto': tensorboard if installed, plus "
            "wandb if installed and WANDB_API_KEY or WANDB_MODE is set. [] disables."
        ),
    )
    project_name: str = field(default="gcr-rl", metadata=_help("Tracker project / run group name."))

    def __post_init__(self) -> None:
        self.rewards = [build_dataclass(RewardConfig, r, f"rewards.{i}") for i, r in enumerate(self.rewards)]
        self.validate()

    # -- checks --------------------------------------------------------------------
    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first bad value."""
        positive = (
            "resolution",
            "num_inference_steps",
            "group_size",
            "prompts_per_epoch",
            "sample_batch_size",
            "num_epochs",
            "train_batch_size",
            "gradient_steps_per_epoch",
            "inner_epochs",
            "lora_rank",
            "eval_images_per_prompt",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.eval_num_inference_steps is not None and self.eval_num_inference_steps < 1:
            raise ConfigError("eval_num_inference_steps must be at least 1")
        if self.group_size < 2:
            raise ConfigError("group_size must be at least 2: advantages are relative to the prompt's group")
        if not 0.0 < self.timestep_fraction <= 1.0:
            raise ConfigError(f"timestep_fraction must be in (0, 1], got {self.timestep_fraction}")
        if self.beta <= 0:
            raise ConfigError(f"beta must be positive, got {self.beta}")
        for name in ("kl_weight", "adam_weight_decay", "old_decay_rate", "max_grad_norm", "lora_dropout"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative, got {getattr(self, name)}")
        if not 0.0 <= self.old_decay_max < 1.0:
            raise ConfigError(f"old_decay_max must be in [0, 1), got {self.old_decay_max}")
        if self.adv_clip_max <= 0 or self.advantage_eps <= 0 or self.policy_loss_scale <= 0:
            raise ConfigError("adv_clip_max, advantage_eps and policy_loss_scale must be positive")
        if self.learning_rate is not None and self.learning_rate <= 0:
            raise ConfigError(f"learning_rate must be positive, got {self.learning_rate}")
        if self.mixed_precision not in _PRECISIONS:
            raise ConfigError(f"mixed_precision must be one of {', '.join(_PRECISIONS)}")
        if self.dtype not in _DTYPES:
            raise ConfigError(f"dtype must be one of {', '.join(_DTYPES)}")
        if self.min_valid_per_group < 2 or self.min_valid_per_group > self.group_size:
            raise ConfigError("min_valid_per_group must be between 2 and group_size")
        if self.eval_every < 0 or self.save_every < 0:
            raise ConfigError("eval_every and save_every must be 0 (off) or positive")
        if self.checkpoints_total_limit is not None and self.checkpoints_total_limit < 1:
            raise ConfigError("checkpoints_total_limit must be at least 1 (or null for no limit)")
        names = [r.name for r in self.rewards]
        if len(set(names)) != len(names):
            raise ConfigError(f"reward names must be unique, got {names}")

    def check_runnable(self) -> None:
        """The checks that only a real run needs (a model, prompts, at least one reward)."""
        if not self.pretrained_model:
            raise ConfigError("set pretrained_model (a diffusers pipeline folder or Hub id)")
        if not self.train_prompts:
            raise ConfigError("set train_prompts (a JSONL file of prompts)")
        if not self.rewards:
            raise ConfigError("set at least one reward under `rewards`")

    # -- (de)serialisation -----------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RLConfig:
        return build_dataclass(cls, data, "config")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: Iterable[str] = ()) -> RLConfig:
        """Read ``path`` and apply ``key=value`` overrides on top."""
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p} is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{p} must hold a mapping of settings at the top level")
        return cls.from_dict(apply_overrides(data, overrides))

    def to_yaml(self, path: str | Path | None = None) -> str:
        text = yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text


def field_help(cls: type = RLConfig) -> dict[str, str]:
    """Help text of every field of ``cls`` (for CLIs and docs)."""
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}
