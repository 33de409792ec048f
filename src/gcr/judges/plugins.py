"""Adapters for reward models that ship as their own maintained packages: ImageReward and HPSv3.

Both are text-to-image preference models; edits are refused with an error.

* ``image-reward:[NAME_OR_FILE][,device=cuda][,download_root=DIR]`` uses the
  ``image-reward`` package (PyPI ``image-reward``, import name ``ImageReward``):
  ``ImageReward.load(name, device=..., download_root=...)`` then
  ``model.score(prompt, pil_image)``, which returns a reward already standardized
  (the package subtracts its training mean and divides by its standard
  deviation). gcr's score is the logistic ``1 / (1 + e^-z)`` of that z-score;
  sub-score ``image_reward`` is the package's number. Default model
  ``ImageReward-v1.0``.
* ``hpsv3:[CHECKPOINT][,config=YAML][,device=cuda][,scale=S]`` uses the ``hpsv3``
  package: ``HPSv3RewardInferencer(config_path, checkpoint_path, device)`` then
  ``reward(image_paths, prompts)``, whose rows are (μ, σ) of an
  uncertainty-aware preference score; the package's own example keeps μ. gcr's
  score is ``1 / (1 + e^(-μ / scale))`` (``scale`` default 1); sub-scores
  ``hpsv3`` (μ) and ``sigma``. With no checkpoint the package downloads its own.

What could not be verified here: neither package imports next to gcr's
dependencies today. ``image-reward`` 1.5 imports ``apply_chunking_to_forward``,
``find_pruneable_heads_and_indices`` and ``prune_linear_layer`` from
``transformers.modeling_utils``, which transformers 5 removed; ``hpsv3`` 1.0.0
pins ``transformers==4.45.2``. So there is no ``gcr[...]`` extra for them (one
that cannot be installed or imported would only fail later); install them in a
separate environment with an older transformers, or register your own judge
kind. The adapters are tested against stand-in modules with the same API, not
against the real weights.
"""

from __future__ import annotations

import asyncio
import importlib
import math
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from gcr.errors import ConfigError, InputError, JudgeUnavailableError
from gcr.images import ensure_rgb
from gcr.judges.base import JudgeResult, Options
from gcr.task import Task


def _logistic(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _import(module: str, package: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = getattr(exc, "name", None) == module
        why = "is not installed" if missing else f"failed to import ({exc})"
        raise JudgeUnavailableError(
            f"the {package} judge needs the '{package}' package, which {why}. It does not install next to "
            "gcr's transformers 5 today: use it from an environment with the transformers version it needs "
            "(see docs/judges.md)"
        ) from None


class _ThreadedJudge:
    """Shared parts: text-to-image only, one model call at a time in a worker thread."""

    tasks = (Task.T2I,)
    name = ""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def _check(self, prompt: str, sources: Sequence[Image.Image]) -> str:
        if len(sources):
            raise InputError(f"{self.name} scores text-to-image results; use a rubric judge for edits")
        if not isinstance(prompt, str) or not prompt.strip():
            raise InputError("the prompt to judge against is empty")
        return prompt.strip()

    async def aclose(self) -> None:
        return None


class ImageRewardJudge(_ThreadedJudge):
    name = "image-reward"

    def __init__(self, model: Any, where: str) -> None:
        super().__init__()
        self.model = model
        self.identity = f"image-reward:{where}"

    async def judge(
        self, prompt: str, image: Image.Image, sources: Sequence[Image.Image] = ()
    ) -> JudgeResult:
        text = self._check(prompt, sources)
        z = await asyncio.to_thread(self._score, text, ensure_rgb(image))
        return JudgeResult(
            score=_logistic(z),
            subscores={"image_reward": z},
            raw=f"image_reward={z:.6f}",
            judge=self.identity,
        )

    def _score(self, prompt: str, image: Image.Image) -> float:
        with self._lock:
            value = float(self.model.score(prompt, image))
        if not math.isfinite(value):
            raise JudgeUnavailableError(f"{self.identity} returned a non-finite reward ({value})")
        return value


class HPSv3Judge(_ThreadedJudge):
    name = "hpsv3"

    def __init__(self, inferencer: Any, where: str, scale: float) -> None:
        super().__init__()
        self.inferencer = inferencer
        self.scale = scale
        self.identity = f"hpsv3:{where};scale={scale:g}"

    async def judge(
        self, prompt: str, image: Image.Image, sources: Sequence[Image.Image] = ()
    ) -> JudgeResult:
        text = self._check(prompt, sources)
        mu, sigma = await asyncio.to_thread(self._score, text, ensure_rgb(image))
        return JudgeResult(
            score=_logistic(mu / self.scale),
            subscores={"hpsv3": mu, "sigma": sigma},
            raw=f"mu={mu:.6f} sigma={sigma:.6f}",
            judge=self.identity,
        )

    def _score(self, prompt: str, image: Image.Image) -> tuple[float, float]:
        # The package's documented call takes image paths, so the image goes through a temporary PNG.
        with self._lock, tempfile.TemporaryDirectory(prefix="gcr-hpsv3-") as tmp:
            path = str(Path(tmp) / "image.png")
            image.save(path, format="PNG")
            rows = self.inferencer.reward([path], [prompt])
            mu, sigma = float(rows[0][0]), float(rows[0][1])
        if not (math.isfinite(mu) and math.isfinite(sigma)):
            raise JudgeUnavailableError(f"{self.identity} returned a non-finite reward ({mu}, {sigma})")
        return mu, sigma


def image_reward_judge(target: str, **options: Any) -> ImageRewardJudge:
    """``image-reward:[NAME_OR_FILE],...`` (see the module docstring)."""
    name = target or "ImageReward-v1.0"
    opts = Options(f"image-reward:{name}", options)
    device = opts.str("device", "cpu")
    root = opts.str("download_root")
    opts.done()
    package = _import("ImageReward", "image-reward")
    try:
        model = package.load(name, device=device, download_root=root)
    except (RuntimeError, OSError) as exc:
        raise JudgeUnavailableError(f"judge image-reward:{name}: cannot load the model: {exc}") from None
    return ImageRewardJudge(model, name)


def hpsv3_judge(target: str, **options: Any) -> HPSv3Judge:
    """``hpsv3:[CHECKPOINT],...`` (see the module docstring)."""
    where = target or "default"
    opts = Options(f"hpsv3:{where}", options)
    config = opts.str("config")
    device = opts.str("device", "cpu")
    scale = opts.float("scale", 1.0)
    opts.done()
    assert scale is not None
    if scale <= 0:
        raise ConfigError(f"judge hpsv3:{where}: scale must be positive, got {scale}")
    package = _import("hpsv3", "hpsv3")
    try:
        inferencer = package.HPSv3RewardInferencer(
            config_path=config, checkpoint_path=target or None, device=device
        )
    except (RuntimeError, OSError, ValueError) as exc:
        raise JudgeUnavailableError(f"judge hpsv3:{where}: cannot load the model: {exc}") from None
    return HPSv3Judge(inferencer, where, scale)
