"""The three policies of DiffusionNFT as LoRA adapters on one transformer.

* ``"default"``: the policy being trained (the only trainable weights);
* ``"old"``: the sampling policy, a slowly moving copy of ``"default"``;
* reference: the base model, i.e. every adapter switched off.

peft's ``set_adapter`` and ``enable_adapters`` change ``requires_grad`` as a side
effect; every switch here puts the trainable set back (``"default"`` only) so the
optimizer and DDP always see the same parameters.

The trained adapter is saved in diffusers' LoRA format (``pytorch_lora_weights.safetensors``
plus the adapter's peft config as metadata), which ``pipeline.load_lora_weights(dir)``
loads with the right rank and alpha.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch

from gcr.errors import ConfigError, DependencyError

logger = logging.getLogger(__name__)

TRAINED = "default"
OLD = "old"


def old_adapter_decay(step: int, rate: float = 0.001, cap: float = 0.5) -> float:
    """Decay of the old adapter after ``step`` optimizer steps: d = min(rate · step, cap)."""
    if step < 0:
        raise ValueError(f"step must not be negative, got {step}")
    return min(rate * step, cap)


def add_lora_adapters(
    transformer: torch.nn.Module,
    *,
    rank: int,
    alpha: float,
    target_modules: Sequence[str],
    dropout: float = 0.0,
    init: str = "gaussian",
    seed: int | None = None,
) -> None:
    """Attach the trained and old LoRA adapters (identical at start) to ``transformer``.

    With ``seed``, the random initialisation of the LoRA matrices is drawn from that seed
    (without touching the global generator), so identical runs start identically.
    """
    try:
        from peft import LoraConfig
    except ImportError:  # pragma: no cover - peft is in the train extra
        raise DependencyError("peft", "train", "DiffusionNFT training") from None
    init_value: bool | str = {"true": True, "false": False}.get(init.lower(), init)

    def make() -> LoraConfig:
        return LoraConfig(
            r=rank,
            lora_alpha=alpha,
            lora_dropout=dropout,
            init_lora_weights=init_value,
            target_modules=list(target_modules),
        )

    transformer.requires_grad_(False)
    devices = [transformer.device] if transformer.device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices, enabled=seed is not None), warnings.catch_warnings():
            if seed is not None:
                torch.manual_seed(seed)
            # peft warns whenever a model gets a second adapter; two adapters are the point here.
            warnings.filterwarnings("ignore", message=".*multiple adapters.*")
            transformer.add_adapter(make(), adapter_name=TRAINED)
            transformer.add_adapter(make(), adapter_name=OLD)
    except ValueError as exc:
        raise ConfigError(f"cannot add LoRA adapters to {type(transformer).__name__}: {exc}") from None
    pairs = adapter_pairs(transformer)
    if not pairs:
        raise ConfigError(f"no module of the transformer matched lora_target_modules={list(target_modules)}")
    with torch.no_grad():
        for new, old in pairs:
            new.data = new.data.float()
            old.data = old.data.float()
            old.copy_(new)
    restore_trainable(transformer)
    logger.info(
        "LoRA r=%d alpha=%g on %d matrices (%d trainable parameters)",
        rank,
        alpha,
        len(pairs),
        sum(p.numel() for p in trainable_parameters(transformer)),
    )


def _is_lora(name: str) -> bool:
    return ".lora_" in name


def adapter_pairs(transformer: torch.nn.Module) -> list[tuple[torch.nn.Parameter, torch.nn.Parameter]]:
    """(trained, old) parameter pairs in a fixed order."""
    params = dict(transformer.named_parameters())
    pairs = []
    for name, p in params.items():
        if _is_lora(name) and f".{TRAINED}." in name:
            twin = name.replace(f".{TRAINED}.", f".{OLD}.")
            if twin not in params:
                raise RuntimeError(f"the old adapter has no counterpart of {name}")
            pairs.append((p, params[twin]))
    return pairs


def trainable_parameters(transformer: torch.nn.Module) -> list[torch.nn.Parameter]:
    return [p for p, _ in adapter_pairs(transformer)]


def restore_trainable(transformer: torch.nn.Module) -> None:
    """Make the trained adapter the active one and the only trainable weights."""
    transformer.set_adapter(TRAINED)
    for name, p in transformer.named_parameters():
        if _is_lora(name):
            p.requires_grad_(f".{TRAINED}." in name)


@contextlib.contextmanager
def use_old_adapter(transformer: torch.nn.Module) -> Iterator[None]:
    """Run the transformer as the old (sampling) policy inside the block."""
    transformer.set_adapter(OLD)
    try:
        yield
    finally:
        restore_trainable(transformer)


@contextlib.contextmanager
def use_reference(transformer: torch.nn.Module) -> Iterator[None]:
    """Run the transformer as the base model (all adapters off) inside the block."""
    transformer.disable_adapters()
    try:
        yield
    finally:
        transformer.enable_adapters()
        restore_trainable(transformer)


@torch.no_grad()
def update_old_adapter(transformer: torch.nn.Module, decay: float) -> None:
    """θ_old ← d·θ_old + (1 − d)·θ for every LoRA matrix."""
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"decay must be in [0, 1], got {decay}")
    for new, old in adapter_pairs(transformer):
        old.mul_(decay).add_(new.detach().to(old.dtype), alpha=1.0 - decay)


def adapter_state(transformer: torch.nn.Module, adapter: str) -> dict[str, torch.Tensor]:
    """The peft state dict of one adapter (keys without the adapter name), on the CPU."""
    from peft.utils import get_peft_model_state_dict

    state = get_peft_model_state_dict(transformer, adapter_name=adapter)
    return {k: v.detach().to("cpu").contiguous() for k, v in state.items()}


def load_adapter_state(transformer: torch.nn.Module, adapter: str, state: dict[str, torch.Tensor]) -> None:
    """Load a state from :func:`adapter_state` into ``adapter``; every key must match."""
    from peft.utils import set_peft_model_state_dict

    result = set_peft_model_state_dict(transformer, state, adapter_name=adapter)
    unexpected = list(getattr(result, "unexpected_keys", []) or [])
    missing = [k for k in (getattr(result, "missing_keys", []) or []) if _is_lora(k) and f".{adapter}." in k]
    if unexpected or missing:
        raise ConfigError(
            f"the checkpoint's {adapter!r} adapter does not fit this model "
            f"(unexpected: {unexpected[:3]}, missing: {missing[:3]}); were rank or target modules changed?"
        )
    restore_trainable(transformer)


def save_lora(pipeline_cls: type, transformer: torch.nn.Module, out_dir: str | Path) -> Path:
    """Write the trained adapter in the diffusers LoRA format that ``load_lora_weights`` reads."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    saver = getattr(pipeline_cls, "save_lora_weights", None)
    if saver is None:
        raise ConfigError(f"{pipeline_cls.__name__} cannot save LoRA weights (no LoRA loader mixin)")
    metadata = transformer.peft_config[TRAINED].to_dict()
    saver(
        out,
        transformer_lora_layers=adapter_state(transformer, TRAINED),
        transformer_lora_adapter_metadata=metadata,
        safe_serialization=True,
    )
    return out
