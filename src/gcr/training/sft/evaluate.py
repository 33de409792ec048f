"""Pairwise accuracy of a fine-tuned critic on the held-out pairs of its SFT dataset.

The trained folder is loaded exactly as users will load it
(:class:`~gcr.critic.backends.transformers_local.TransformersBackend` behind a
:class:`~gcr.critic.critic.Critic`), each validation pair is compared with the
critic's own pairwise prompt, and the accuracy follows ``gcr eval``'s rules
(:func:`gcr.bench.eval.metrics.pairwise_accuracy`): the winner is the candidate
with the larger sum of dimension scores (N/A as 2.5, a tie only within the
tolerance); answers that cannot be parsed count as failed and stay out of the
denominator, and how many failed is reported.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from gcr.bench.eval.metrics import pairwise_accuracy
from gcr.critic.backends.base import SamplingParams
from gcr.critic.backends.transformers_local import TransformersBackend
from gcr.critic.critic import Critic
from gcr.critic.schema import preference_from_totals
from gcr.errors import CriticError, DatasetError
from gcr.io import atomic_file, dump_line

logger = logging.getLogger(__name__)

_NEEDED = ("kind", "request", "label", "task", "item_id")


def evaluate_pairwise(
    model_dir: str | Path,
    split: Any,
    *,
    max_pairs: int | None = None,
    max_new_tokens: int = 4096,
    temperature: float = 0.1,
    batch_size: int = 8,
    tie_tolerance: float = 0.0,
    max_pixels: int | None = 802_816,
    device: str | None = None,
    predictions_path: str | Path | None = None,
) -> dict[str, Any]:
    """Judge each pairwise example of ``split`` (a ``datasets.Dataset``) with the critic at ``model_dir``."""
    missing = [c for c in _NEEDED if c not in split.column_names]
    if missing:
        raise DatasetError(
            f"the validation split lacks {', '.join(missing)}; build it with `gcr train parrot build-dataset`"
        )
    pairs = split.filter(lambda kind: kind == "pairwise", input_columns="kind")
    if max_pairs is not None:
        pairs = pairs.select(range(min(max_pairs, len(pairs))))
    if len(pairs) == 0:
        logger.warning("the validation split has no pairwise examples; no accuracy to report")
        return {"pairs": 0, "accuracy": None}
    backend = TransformersBackend(model_dir, device=device, max_pixels=max_pixels, max_batch_size=batch_size)
    critic = Critic(
        backend, sampling=SamplingParams(temperature=temperature, max_tokens=max_new_tokens), max_reasks=0
    )
    rows = asyncio.run(_judge_all(critic, pairs, tie_tolerance))
    report = pairwise_accuracy(
        [r["prediction"] for r in rows], [r["label"] for r in rows], categories=[r["task"] for r in rows]
    )
    if predictions_path is not None:
        with atomic_file(predictions_path, "w") as fh:
            for row in rows:
                fh.write(dump_line(row))
    overall = report.overall
    logger.info(
        "pairwise accuracy on %d validation pairs: %s (%d evaluated, %d failed)",
        len(rows),
        "n/a" if overall.accuracy is None else f"{overall.accuracy:.3f}",
        overall.evaluated,
        overall.failed,
    )
    return {"pairs": len(rows), **report.to_dict()}


async def _judge_all(critic: Critic, pairs: Any, tie_tolerance: float) -> list[dict[str, Any]]:
    async def judge(row: dict[str, Any]) -> dict[str, Any]:
        images = row["images"]
        out = {"item_id": row["item_id"], "task": row["task"], "label": row["label"], "prediction": None}
        try:
            critique = await critic.acompare(
                row["request"], images[-2], images[-1], sources=images[:-2], task=row["task"]
            )
        except CriticError as exc:
            out["error"] = str(exc)
            out["raw_text"] = getattr(exc, "raw_text", None)
            return out
        out["prediction"] = preference_from_totals(*critique.totals(), tie_tolerance)
        out["raw_text"] = critique.raw_text
        return out

    try:
        return list(await asyncio.gather(*(judge(row) for row in pairs)))
    finally:
        await critic.aclose()
