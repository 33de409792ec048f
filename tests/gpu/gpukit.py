"""What every GPU test shares: the CUDA gate, the peak-memory record, small helpers.

Imported by name (pytest puts this folder on ``sys.path``). The record of each
test (outcome, seconds, peak GPU memory of this process) goes to the JSON file
named by ``GCR_GPU_RESULTS`` when that is set; ``benchmarks/gpu_check.py`` sets
it and builds its report from the file, which is rewritten after every test so
that a run cut short by a time budget still leaves what it did.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from gcr.io import write_text_atomic

#: Environment variable naming the JSON file of per-test results.
RESULTS_ENV = "GCR_GPU_RESULTS"


def cuda_skip_reason() -> str | None:
    """Why the GPU tests cannot run here (one sentence), or None when CUDA is usable."""
    if torch.version.cuda is None:
        return (
            f"no CUDA: this torch build ({torch.__version__}) has no CUDA support; "
            "the gpu tests need a CUDA build of torch and an NVIDIA GPU"
        )
    if not torch.cuda.is_available():
        return "no CUDA device: torch.cuda.is_available() is False; the gpu tests need an NVIDIA GPU"
    return None


SKIP_REASON = cuda_skip_reason()
#: Marks for every test module here: opt-in with ``-m gpu``, skipped with one reason without CUDA.
GPU = [pytest.mark.gpu, pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or "")]


def gpu_count() -> int:
    return torch.cuda.device_count() if SKIP_REASON is None else 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def noise_image(seed: int, size: tuple[int, int] = (32, 32)) -> Image.Image:
    """A random-pixel RGB image (a source for edits, a candidate for the critic)."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")


def is_varied(image: Image.Image) -> bool:
    """False for a constant image, which is what NaN latents decode to (all black after clipping)."""
    return float(np.asarray(image, dtype=np.float32).std()) > 0.0


class ResultsFile:
    """Per-test records (outcome, seconds, peak memory), written as one JSON object keyed by test id."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.tests: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls) -> ResultsFile:
        value = os.environ.get(RESULTS_ENV, "").strip()
        return cls(Path(value) if value else None)

    def update(self, nodeid: str, **fields: Any) -> None:
        with self._lock:
            self.tests.setdefault(nodeid, {}).update(fields)
            if self.path is None:
                return
            device = torch.cuda.get_device_name(0) if SKIP_REASON is None else None
            write_text_atomic(self.path, json.dumps({"device": device, "tests": self.tests}, indent=2))


RESULTS = ResultsFile.from_env()


class PeakMemory:
    """Extra memory figures a test adds to its record (e.g. what its child processes used)."""

    def __init__(self) -> None:
        self.extra: dict[str, float] = {}

    def note(self, name: str, value_bytes: float) -> None:
        self.extra[name] = float(value_bytes)


def mib(n_bytes: float) -> float:
    return round(n_bytes / 2**20, 1)
