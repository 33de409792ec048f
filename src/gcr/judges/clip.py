"""CLIP-family scorers through ``transformers``: CLIPScore and PickScore.

* **CLIPScore** (Hessel et al., 2021): ``2.5 * max(cos(image, text), 0)`` with a
  CLIP ViT-L/14 by default. gcr's ``score`` is ``max(cos, 0)`` (CLIPScore / 2.5,
  in [0, 1]); sub-scores ``clipscore`` and ``cosine``.
* **PickScore** (Kirstain et al., 2023) is a CLIP-H fine-tuned on Pick-a-Pic
  preferences; its published score is ``logit_scale.exp() * cos(image, text)``
  (about 18–23 for typical images). gcr's ``score`` is ``max(cos, 0)``, the same
  ordering as the published number; sub-scores ``pickscore`` (the published
  number) and ``cosine``. PickScore is meant for comparing images of one prompt,
  which is what a gain is.

Both judge a text-to-image result against the prompt; an edit instruction
("make it blue") is not a caption, so edits are refused with an error rather
than scored meaninglessly. CLIP reads at most 77 tokens: longer prompts are cut
there (logged). Models load with ``CLIPModel.from_pretrained`` on the device and
dtype given (default cpu and float32; the names of :mod:`gcr.devices`, ``auto``
included), and run in a worker thread, one call at a time per judge.

Specs: ``clip:[CHECKPOINT][,device=cuda][,dtype=float16]`` and
``pickscore:[CHECKPOINT][,processor=PROCESSOR_ID][,device=...][,dtype=...]``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from typing import Any

from PIL import Image

from gcr.errors import ConfigError, InputError, JudgeUnavailableError
from gcr.images import ensure_rgb
from gcr.judges.base import JudgeResult, Options
from gcr.task import Task

logger = logging.getLogger(__name__)

DEFAULT_CLIP = "openai/clip-vit-large-patch14"
DEFAULT_PICKSCORE = "yuvalkirstain/PickScore_v1"
#: PickScore's model card loads its processor from the CLIP-H it was fine-tuned from.
DEFAULT_PICKSCORE_PROCESSOR = "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"
#: CLIPScore's weight w (Hessel et al., 2021).
CLIPSCORE_WEIGHT = 2.5


class CLIPJudge:
    """A :class:`~gcr.judges.base.Judge` scoring image-text cosine similarity with a CLIP model."""

    tasks = (Task.T2I,)

    def __init__(
        self,
        model: Any,
        processor: Any,
        *,
        flavour: str,
        where: str,
        device: str = "cpu",
        dtype: str = "float32",
    ) -> None:
        if flavour not in ("clipscore", "pickscore"):
            raise ConfigError(f"unknown CLIP judge flavour {flavour!r}")
        self.model = model
        self.processor = processor
        self.flavour = flavour
        self.device = device
        self.identity = f"{'clip' if flavour == 'clipscore' else 'pickscore'}:{where};dtype={dtype}"
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CLIPJudge({self.identity!r})"

    async def judge(
        self, prompt: str, image: Image.Image, sources: Sequence[Image.Image] = ()
    ) -> JudgeResult:
        if len(sources):
            raise InputError(
                f"{self.flavour} judges text-to-image results against their prompt; an edit instruction is "
                "not a caption. Use a rubric judge (viescore, imgedit) for edits"
            )
        if not isinstance(prompt, str) or not prompt.strip():
            raise InputError("the prompt to judge against is empty")
        cosine, scale = await asyncio.to_thread(self._similarity, prompt.strip(), ensure_rgb(image))
        score = max(cosine, 0.0)
        if self.flavour == "clipscore":
            subscores = {"clipscore": CLIPSCORE_WEIGHT * score, "cosine": cosine}
        else:
            subscores = {"pickscore": scale * cosine, "cosine": cosine}
        raw = f"cosine={cosine:.6f} logit_scale={scale:.4f}"
        return JudgeResult(score=min(score, 1.0), subscores=subscores, raw=raw, judge=self.identity)

    def _similarity(self, prompt: str, image: Image.Image) -> tuple[float, float]:
        import torch

        with self._lock, torch.inference_mode():
            inputs = self.processor(
                text=[prompt], images=[image], return_tensors="pt", padding=True, truncation=True,
                max_length=77,
            )
            if inputs["input_ids"].shape[-1] >= 77:
                logger.info("prompt cut at CLIP's 77-token limit for %s", self.identity)
            dtype = next(self.model.parameters()).dtype
            inputs = {
                k: (v.to(self.device, dtype) if k == "pixel_values" else v.to(self.device))
                for k, v in inputs.items()
            }
            out = self.model(**inputs)
            img = out.image_embeds / out.image_embeds.norm(dim=-1, keepdim=True)
            txt = out.text_embeds / out.text_embeds.norm(dim=-1, keepdim=True)
            cosine = float((img * txt).sum(dim=-1)[0].float())
            scale = float(self.model.logit_scale.exp().float())
        return cosine, scale

    async def aclose(self) -> None:
        return None


def clip_judge(target: str, **options: Any) -> CLIPJudge:
    """``clip:[CHECKPOINT],...``: CLIPScore with ``CHECKPOINT`` (default openai/clip-vit-large-patch14)."""
    return _load("clipscore", target or DEFAULT_CLIP, options, default_processor=None)


def pickscore_judge(target: str, **options: Any) -> CLIPJudge:
    """``pickscore:[CHECKPOINT],processor=...``: PickScore (default yuvalkirstain/PickScore_v1)."""
    default_processor = DEFAULT_PICKSCORE_PROCESSOR if not target else None
    return _load("pickscore", target or DEFAULT_PICKSCORE, options, default_processor=default_processor)


def _load(flavour: str, where: str, options: dict[str, Any], *, default_processor: str | None) -> CLIPJudge:
    kind = "clip" if flavour == "clipscore" else "pickscore"
    opts = Options(f"{kind}:{where}", options)
    processor_id = opts.str("processor", default_processor) or where
    device_name = opts.str("device", "cpu") or "cpu"
    dtype_name = opts.str("dtype", "float32") or "float32"
    opts.done()
    from transformers import AutoProcessor, CLIPModel

    from gcr.devices import resolve_device, resolve_dtype

    try:  # the device and dtype names every local model in gcr takes (gcr.devices)
        resolved = resolve_device(device_name)
        torch_dtype = resolve_dtype(dtype_name, resolved)
    except ConfigError as exc:
        raise ConfigError(f"judge {kind}:{where}: {exc}") from None
    device = str(resolved)
    dtype = str(torch_dtype).removeprefix("torch.")  # one spelling in the identity: bf16 -> bfloat16
    try:
        model = CLIPModel.from_pretrained(where, dtype=torch_dtype)
        processor = AutoProcessor.from_pretrained(processor_id)
    except (OSError, ValueError) as exc:
        raise JudgeUnavailableError(
            f"judge {kind}:{where}: cannot load the CLIP model or its processor ({processor_id}): {exc}"
        ) from None
    model.to(device).eval()
    label = where if processor_id == where else f"{where}+{processor_id}"
    return CLIPJudge(model, processor, flavour=flavour, where=label, device=device, dtype=dtype)
