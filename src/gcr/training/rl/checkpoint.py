"""Checkpoints of a DiffusionNFT run, and resuming from them.

``<output_dir>/checkpoint-<epochs done>/`` holds:

* ``pytorch_lora_weights.safetensors``: the trained adapter in diffusers' LoRA
  format (``pipeline.load_lora_weights(folder)``, ``gcr generate --lora folder``);
* ``adapters.safetensors``: the trained and the old adapter as peft state dicts;
* ``optimizer.pt``: the AdamW state;
* ``trainer_state.json``: epochs done, optimizer steps, dropped prompts, and the config.

The final adapter of a run is written to ``<output_dir>/lora/`` in the same format.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from gcr.errors import RunError
from gcr.io import write_text_atomic
from gcr.training.rl.adapters import OLD, TRAINED, adapter_state, load_adapter_state, save_lora

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^checkpoint-(\d+)$")
STATE_FILE = "trainer_state.json"
ADAPTERS_FILE = "adapters.safetensors"
OPTIMIZER_FILE = "optimizer.pt"


@dataclass
class TrainerState:
    """Progress that a resumed run continues from."""

    epoch: int = 0  # epochs completed
    global_step: int = 0  # optimizer steps taken
    dropped_prompts: list[str] = field(default_factory=list)  # ids of saturated prompts no longer sampled
    family: str = ""
    config: dict[str, Any] = field(default_factory=dict)


def checkpoint_dirs(output_dir: str | Path) -> list[Path]:
    """Checkpoint folders of a run, oldest first."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def resolve_resume(spec: str, output_dir: str | Path) -> Path:
    """The folder named by ``resume_from``: a path, or ``latest`` for the newest checkpoint."""
    if spec == "latest":
        found = checkpoint_dirs(output_dir)
        if not found:
            raise RunError(f"resume_from=latest, but {output_dir} holds no checkpoint-* folder")
        return found[-1]
    path = Path(spec).expanduser()
    if not (path / STATE_FILE).is_file():
        raise RunError(f"{path} is not a checkpoint folder (no {STATE_FILE})")
    return path


def save_checkpoint(
    output_dir: str | Path,
    *,
    pipeline_cls: type,
    transformer: torch.nn.Module,
    optimizer: Any,
    state: TrainerState,
    keep: int | None = None,
) -> Path:
    """Write a checkpoint for ``state.epoch`` and prune old ones down to ``keep``."""
    from safetensors.torch import save_file

    folder = Path(output_dir) / f"checkpoint-{state.epoch}"
    folder.mkdir(parents=True, exist_ok=True)
    save_lora(pipeline_cls, transformer, folder)
    tensors = {f"{TRAINED}.{k}": v for k, v in adapter_state(transformer, TRAINED).items()}
    tensors.update({f"{OLD}.{k}": v for k, v in adapter_state(transformer, OLD).items()})
    save_file(tensors, str(folder / ADAPTERS_FILE))
    torch.save(optimizer.state_dict(), folder / OPTIMIZER_FILE)
    # Written last, atomically and durably: its presence marks the checkpoint complete.
    write_text_atomic(folder / STATE_FILE, json.dumps(asdict(state), indent=2, default=str), durable=True)
    logger.info("saved checkpoint %s (epoch %d, step %d)", folder, state.epoch, state.global_step)
    if keep is not None:
        for old in checkpoint_dirs(output_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
            logger.info("removed old checkpoint %s", old)
    return folder


def load_checkpoint(folder: str | Path, *, transformer: torch.nn.Module, optimizer: Any) -> TrainerState:
    """Restore both adapters and the optimizer from ``folder``; return its progress."""
    from safetensors.torch import load_file

    path = Path(folder)
    try:
        data = json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
        state = TrainerState(**data)
    except (OSError, json.JSONDecodeError, TypeError) as exc:
        raise RunError(f"cannot read {path / STATE_FILE}: {exc}") from None
    adapters_path = path / ADAPTERS_FILE
    if not adapters_path.is_file() or not (path / OPTIMIZER_FILE).is_file():
        raise RunError(f"{path} is incomplete: it needs {ADAPTERS_FILE} and {OPTIMIZER_FILE}")
    tensors = load_file(str(adapters_path))
    for name in (TRAINED, OLD):
        prefix = f"{name}."
        part = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        if not part:
            raise RunError(f"{adapters_path} has no {name!r} adapter")
        load_adapter_state(transformer, name, part)
    optimizer.load_state_dict(torch.load(path / OPTIMIZER_FILE, map_location="cpu", weights_only=True))
    logger.info("resumed from %s (epoch %d, step %d)", path, state.epoch, state.global_step)
    return state
