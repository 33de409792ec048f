"""Supervised fine-tuning of a critic on PARROT data (TRL ``SFTTrainer``; phase 3 of PARROT).

``SFTRunConfig`` is the one settings dataclass (YAML, CLI flags, Python);
``run_sft`` (in :mod:`gcr.training.sft.trainer`, imported lazily because it
needs the ``train`` extra) trains, saves a critic folder and evaluates it.
"""

from typing import Any

from gcr.training.sft.config import SFTRunConfig


def run_sft(config: SFTRunConfig) -> Any:
    """Train a critic; see :func:`gcr.training.sft.trainer.run_sft`."""
    from gcr.training.sft.trainer import run_sft as _run

    return _run(config)


__all__ = ["SFTRunConfig", "run_sft"]
