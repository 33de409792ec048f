"""How GEdit-Bench and ImgEdit-Bench turn per-item judge scores into the figures they report.

Pure functions over plain per-item scores, so the arithmetic is testable on
hand-made numbers and the same whichever judge produced the scores.

GEdit-Bench (the statistics script of GEdit-Bench as reproduced in
``eval/gen/gedit/calculate_statistics.py`` of the BAGEL repositories, which
states it comes from GEdit-Bench; the Step1X-Edit repository's own copy is
not in the searchable index): for one language at a time, per task type the
mean semantic consistency (SC), the mean perceptual quality (PQ) and the mean
of ``sqrt(SC * PQ)`` per item (the overall score is recomputed from SC and PQ,
not taken from the judge); the headline figures are the plain means of the
per-task-type means (every task type weighs the same). The same is computed
on the items whose ``Intersection_exist`` is true.

ImgEdit-Bench (``Benchmark/Basic/step1_get_avgscore.py`` and
``step2_typescore.py``, PKU-YuanGroup/ImgEdit): an item's score is the mean
of its rubric scores rounded to 2 decimals; an edit type's score is the mean
of its items' scores rounded to 2 decimals. The official scripts stop there;
gcr's ``overall`` is the mean of the per-type scores (every type weighs the
same, as in GEdit-Bench), which is an assumption of gcr, not of ImgEdit.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gcr.errors import InputError

#: The published figures of the RationalRewards paper (Fig. 1): one round of prompt tuning with the
#: RationalRewards critic on Qwen-Image-Edit, judged by GPT-4.1 (docs/benchmarks.md).
PUBLISHED: dict[str, dict[str, Any]] = {
    "gedit-en": {
        "generator": "Qwen-Image-Edit",
        "judge": "GPT-4.1 (VIEScore)",
        "metric": "overall (0-10)",
        "round0": 7.56,
        "final": 8.33,
        "source": "RationalRewards paper, Fig. 1",
    },
    "imgedit": {
        "generator": "Qwen-Image-Edit",
        "judge": "GPT-4.1 (ImgEdit rubric)",
        "metric": "overall (1-5)",
        "round0": 4.27,
        "final": 4.43,
        "source": "RationalRewards paper, Fig. 1",
    },
}


@dataclass(frozen=True)
class GEditScore:
    """One judged GEdit-Bench item."""

    task_type: str
    language: str
    semantics: float
    quality: float
    intersection: bool | None = None

    @property
    def overall(self) -> float:
        return math.sqrt(self.semantics * self.quality)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _gedit_block(items: Sequence[GEditScore], task_types: Sequence[str]) -> dict[str, Any]:
    groups: dict[str, dict[str, float]] = {}
    for task_type in task_types:
        mine = [i for i in items if i.task_type == task_type]
        if not mine:
            continue
        groups[task_type] = {
            "semantics": _mean([i.semantics for i in mine]),
            "quality": _mean([i.quality for i in mine]),
            "overall": _mean([i.overall for i in mine]),
            "n": len(mine),
        }
    block: dict[str, Any] = {"groups": groups, "items": len(items)}
    if groups:
        block["average"] = {
            key: _mean([g[key] for g in groups.values()]) for key in ("semantics", "quality", "overall")
        }
    return block


def gedit_report(items: Iterable[GEditScore], task_types: Sequence[str] | None = None) -> dict[str, Any]:
    """GEdit-Bench figures per language: per task type SC/PQ/O, their averages, and the intersection subset.

    ``task_types`` fixes the order (default: GEdit-Bench's 11 types, then any
    other type seen); a type with no judged item is listed under ``missing``
    and left out of the averages rather than counted as zero.
    """
    from gcr.benchmarks.gedit import TASK_TYPES

    scored = list(items)
    for item in scored:
        for name in ("semantics", "quality"):
            value = getattr(item, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise InputError(f"GEdit {name} score {value!r} is not a non-negative number")
    order = list(task_types or TASK_TYPES)
    order += sorted({i.task_type for i in scored} - set(order))
    report: dict[str, Any] = {}
    for language in sorted({i.language for i in scored}):
        mine = [i for i in scored if i.language == language]
        block = _gedit_block(mine, order)
        block["missing"] = [t for t in (task_types or TASK_TYPES) if t not in block["groups"]]
        block["intersection"] = _gedit_block([i for i in mine if i.intersection], order)
        report[language] = block
    return report


def imgedit_item_score(scores: Sequence[float]) -> float:
    """An item's score as ``step1_get_avgscore.py`` computes it: the mean of its rubric scores, 2 decimals."""
    if not scores:
        raise InputError("an ImgEdit item needs at least one rubric score")
    return round(sum(scores) / len(scores), 2)


def imgedit_report(
    items: Iterable[tuple[str, float]], edit_types: Sequence[str] | None = None
) -> dict[str, Any]:
    """ImgEdit-Bench figures from ``(edit_type, item score)`` pairs: per type (2 decimals) and overall."""
    from gcr.benchmarks.imgedit import EDIT_TYPES

    by_type: dict[str, list[float]] = {}
    for edit_type, score in items:
        if not (isinstance(score, int | float) and math.isfinite(score)):
            raise InputError(f"ImgEdit score {score!r} is not a number")
        by_type.setdefault(edit_type, []).append(float(score))
    order = list(edit_types or EDIT_TYPES)
    order += sorted(set(by_type) - set(order))
    types = {t: {"score": round(_mean(by_type[t]), 2), "n": len(by_type[t])} for t in order if t in by_type}
    report: dict[str, Any] = {
        "types": types,
        "items": sum(len(v) for v in by_type.values()),
        "missing": [t for t in (edit_types or EDIT_TYPES) if t not in by_type],
    }
    if types:
        report["overall"] = _mean([t["score"] for t in types.values()])
    return report


def with_published(key: str, ours: Mapping[str, float | None]) -> dict[str, Any]:
    """Our round-0/final figures beside the paper's, for the report (``key``: gedit-en or imgedit)."""
    paper = PUBLISHED.get(key)
    row: dict[str, Any] = {"ours": dict(ours)}
    if paper is not None:
        row["published"] = paper
        row["published_gain"] = round(paper["final"] - paper["round0"], 4)
    if ours.get("round0") is not None and ours.get("final") is not None:
        row["gain"] = float(ours["final"]) - float(ours["round0"])  # type: ignore[arg-type]
    return row
