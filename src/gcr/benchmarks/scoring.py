"""Score a ``gcr bench`` run of GEdit-Bench or ImgEdit-Bench with a rubric judge, as each benchmark reports.

The judge (``gcr.judges``: ``await judge.judge(prompt, image, sources)`` returning
a result with ``score``, ``subscores``, ``raw`` and ``judge``) looks at each
exported set (round 0, final, baseline) of each edit. Per-item results go to
``RUN/judged/<judge name>/<set>.jsonl`` as they arrive, so a rerun judges only
what is missing (failures are retried, never counted as a score). The figures
are then averaged by :mod:`gcr.benchmarks.aggregate`.

What the judge is shown follows each benchmark's evaluator:

* GEdit-Bench (``test_gedit_score.py`` as reproduced in the BAGEL repositories):
  the source is ``<key>_SRCIMG.png`` (the dataset's ``input_image``) and the
  edited image is resized to the source's size before judging; with the
  ``viescore`` rubric the item keeps ``semantic_consistency`` and
  ``perceptual_quality`` (0-10).
* ImgEdit-Bench (``Benchmark/Basic/basic_bench.py``): the original image and the
  edited image as they are; with the ``imgedit`` rubric the item's score is the
  mean of its three 1-5 criteria (or its ``overall``), rounded to 2 decimals as
  ``step1_get_avgscore.py`` does.

A judge error (``JudgeError`` and every other ``GCRError``) fails that item
only; it is recorded with its message and judged again on the next run.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from gcr.bench.folder import BenchFolder
from gcr.benchmarks.aggregate import (
    GEditScore,
    gedit_report,
    imgedit_item_score,
    imgedit_report,
    with_published,
)
from gcr.benchmarks.base import BenchmarkSet
from gcr.benchmarks.export import SETS, Item, set_images
from gcr.errors import GCRError, InputError
from gcr.io import ResultStore, write_json_atomic
from gcr.judges.base import Judge

logger = logging.getLogger(__name__)

EDIT_BENCHMARKS: tuple[str, ...] = ("gedit", "imgedit")
GEDIT_KEYS = ("semantic_consistency", "perceptual_quality")
#: The imgedit rubric's three 1-5 criteria (gcr.judges, rubrics/imgedit.md); an item is their mean.
IMGEDIT_CRITERIA = ("instruction_compliance", "visual_naturalness", "physical_integrity")


def judged_dir(run: str | Path, judge_name: str) -> Path:
    """Where the per-item verdicts of ``judge_name`` on the run ``run`` are kept."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", judge_name).strip("-.")[:48] or "judge"
    digest = hashlib.sha1(judge_name.encode("utf-8")).hexdigest()[:8]
    return BenchFolder(run).path / "judged" / f"{slug}-{digest}"


def _sources(
    item: Item, folder: BenchFolder, benchmark: str, bench_set: BenchmarkSet | None
) -> list[Image.Image]:
    if benchmark == "gedit" and bench_set is not None and item.id in bench_set.extras:
        return [bench_set.extras[item.id]["srcimg"].load()]
    images, index = [], 0
    while (path := folder.input_path(item.id, index)).is_file():
        with Image.open(path) as img:
            images.append(img.convert("RGB"))
        index += 1
    if not images:
        raise InputError(f"prompt {item.id}: its source image is missing from {folder.path / 'inputs'}")
    return images


def _item_fields(benchmark: str, result: Any) -> dict[str, Any]:
    subscores = dict(getattr(result, "subscores", None) or {})
    if benchmark == "gedit":
        missing = [k for k in GEDIT_KEYS if not isinstance(subscores.get(k), int | float)]
        if missing:
            raise InputError(
                f"the judge gave no {', '.join(missing)}: score GEdit-Bench with the viescore rubric"
            )
        return {
            "semantics": float(subscores["semantic_consistency"]),
            "quality": float(subscores["perceptual_quality"]),
        }
    criteria = [subscores.get(k) for k in IMGEDIT_CRITERIA]
    if all(isinstance(v, int | float) for v in criteria):
        return {"score": imgedit_item_score([float(v) for v in criteria])}  # type: ignore[arg-type]
    overall = subscores.get("overall")  # JudgeResult.score is normalized to [0, 1]: not ImgEdit's scale
    if not isinstance(overall, int | float):
        raise InputError("the judge gave no 1-5 overall score: score ImgEdit-Bench with the imgedit rubric")
    return {"score": imgedit_item_score([float(overall)])}


async def score_run(
    run: str | Path,
    benchmark: str,
    judge: Judge,
    judge_name: str,
    *,
    sets: Sequence[str] = SETS,
    bench_set: BenchmarkSet | None = None,
    concurrency: int = 4,
) -> dict[str, Any]:
    """Judge every image of ``sets`` in the bench folder ``run``; return and save the figures."""
    if benchmark not in EDIT_BENCHMARKS:
        raise InputError(
            f"gcr scores only the edit benchmarks ({', '.join(EDIT_BENCHMARKS)}), not {benchmark!r}"
        )
    if concurrency < 1:
        raise InputError("--concurrency must be at least 1")
    folder = BenchFolder(run)
    root = judged_dir(run, judge_name)
    gate = asyncio.Semaphore(concurrency)
    summary: dict[str, Any] = {"benchmark": benchmark, "judge": judge_name, "sets": {}}
    for image_set in sets:
        items, missing = set_images(folder, image_set)
        store = ResultStore(root / f"{image_set}.jsonl")
        done = store.load()
        failures: dict[str, str] = {}

        async def one(
            item: Item,
            store: ResultStore = store,
            failures: dict[str, str] = failures,
            done: dict[str, dict[str, Any]] = done,
        ) -> None:
            async with gate:
                try:
                    record = await _judge_one(item, folder, benchmark, judge, bench_set)
                except GCRError as exc:
                    failures[item.id] = str(exc)
                    store.append({"id": item.id, "status": "failed", "error": str(exc)})
                    return
            store.append(record)
            done[item.id] = record

        with store:
            await asyncio.gather(*(one(item) for item in items if item.id not in done))
        records = [done[i.id] for i in items if i.id in done]
        summary["sets"][image_set] = {
            "report": _report(benchmark, records),
            "judged": len(records),
            "failed": failures,
            "left_out": missing,
        }
    summary["published"] = _published(benchmark, summary["sets"])
    write_json_atomic(root / f"{benchmark}-summary.json", summary)
    return summary


async def _judge_one(
    item: Item, folder: BenchFolder, benchmark: str, judge: Judge, bench_set: BenchmarkSet | None
) -> dict[str, Any]:
    sources = await asyncio.to_thread(_sources, item, folder, benchmark, bench_set)
    with Image.open(item.image) as img:
        edited = img.convert("RGB")
    if benchmark == "gedit":
        edited = edited.resize(sources[0].size)
    prompt = str(item.record.get("prompt") or "")
    result = await judge.judge(prompt, edited, sources)
    meta = item.meta
    return {
        "id": item.id,
        "status": "ok",
        "category": item.record.get("category"),
        "language": meta.get("instruction_language"),
        "intersection": meta.get("intersection_exist"),
        **_item_fields(benchmark, result),
        "subscores": dict(getattr(result, "subscores", None) or {}),
        "judge": getattr(result, "judge", None),
        "raw": getattr(result, "raw", None),
    }


def _report(benchmark: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    if benchmark == "gedit":
        return gedit_report(
            GEditScore(
                str(r["category"]), str(r["language"]), r["semantics"], r["quality"], r.get("intersection")
            )
            for r in records
        )
    return imgedit_report((str(r["category"]), r["score"]) for r in records)


def headline(benchmark: str, report: dict[str, Any], language: str = "en") -> float | None:
    """The figure the paper's Fig. 1 quotes: GEdit-Bench-EN overall, or ImgEdit overall."""
    if benchmark == "gedit":
        return ((report.get(language) or {}).get("average") or {}).get("overall")
    return report.get("overall")


def _published(benchmark: str, sets: dict[str, Any]) -> dict[str, Any]:
    ours = {name: headline(benchmark, block["report"]) for name, block in sets.items()}
    return with_published("gedit-en" if benchmark == "gedit" else "imgedit", ours)
