"""Pointwise projection: one single-image critique per candidate of every kept comparison.

The critic must also score one image on its own (the GCR loop and RL rewards
use pointwise critiques), so each kept pairwise rationale is projected into two
pointwise critiques. The teacher sees the request, the source image(s), one
candidate, the comparison and that candidate's scores, and writes a standalone
critique in the exact pointwise layout of docs/critique-format.md, refined request
included. Calls are concurrent and resumable (``projected.jsonl``, raw answers
kept); an answer counts only when :func:`gcr.critic.parser.parse_critique` reads
every dimension, a refined request, and no truncation.

Order check: the two projected critiques must keep the pair's order: the sum
of A's pointwise scores against B's (N/A as 2.5 on both sides, a tie only within
``tie_tolerance``) must give the same winner as the comparison they came from.
A pair that does not is a *violation* (pointwise scoring drifted away from the
comparison, the calibration risk the paper names); both of its critiques are
dropped and the pair is counted and listed in the report.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gcr.critic.backends.base import ChatBackend, SamplingParams, is_truncated
from gcr.critic.parser import parse_critique
from gcr.critic.schema import (
    NA_PAIRWISE_SCORE,
    TASK_DIMENSIONS,
    Critique,
    PairwiseCritique,
    Winner,
    preference_from_totals,
)
from gcr.errors import CritiqueParseError, GCRError, RunError
from gcr.io import atomic_file, dump_line, read_jsonl
from gcr.task import Task
from gcr.training.parrot.anchor import DEFAULT_TEACHER_SAMPLING, model_name, templates_for
from gcr.training.parrot.answers import format_pointwise
from gcr.training.parrot.data import PreferenceSet
from gcr.training.parrot.filter import scores_winner
from gcr.training.parrot.jobs import STATUS_OK, Progress, ResultLog, failed_record, run_jobs
from gcr.training.parrot.prompts import render_projection

logger = logging.getLogger(__name__)

Candidate = Literal["A", "B"]


def projection_key(item_id: str, candidate: Candidate) -> str:
    return f"{item_id}::{candidate}"


def pointwise_total(critique: Critique) -> float:
    """Sum of the dimension scores, N/A counted as 2.5 (as in pairwise comparison)."""
    return sum(NA_PAIRWISE_SCORE if j.score is None else j.score for j in critique.judgements)


def pointwise_order(a: Critique, b: Critique, tie_tolerance: float = 0.0) -> Winner:
    """The pair's winner implied by two pointwise critiques (same rule as pairwise totals)."""
    return preference_from_totals(pointwise_total(a), pointwise_total(b), tie_tolerance)


def projection_problem(critique: Critique) -> str | None:
    """Why a projected critique is not a usable training answer, or None when it is."""
    have = {j.dimension for j in critique.judgements}
    missing = [d.value for d in TASK_DIMENSIONS[critique.task] if d not in have]
    if missing:
        return f"the critique does not judge {', '.join(missing)}"
    if not critique.refined_request:
        return "the critique has no refined request"
    if critique.truncated:
        return "the critique looks truncated"
    return None


@dataclass
class ProjectionReport:
    """Outcome of :func:`project_rationales` (written to ``projection_report.json``)."""

    pairs: int = 0
    projected: list[str] = field(default_factory=list)
    violations: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        checked = len(self.projected) + len(self.violations)
        return {
            "pairs": self.pairs,
            "projected_pairs": len(self.projected),
            "pointwise_critiques": 2 * len(self.projected),
            "violations": len(self.violations),
            "violation_rate": len(self.violations) / checked if checked else None,
            "failed": len(self.failed),
            "violation_items": dict(sorted(self.violations.items())),
            "failed_items": dict(sorted(self.failed.items())),
        }


async def project_rationales(
    prefs: PreferenceSet,
    kept: Mapping[str, PairwiseCritique],
    backend: ChatBackend,
    *,
    log_path: str | Path,
    pointwise_path: str | Path,
    report_path: str | Path,
    sampling: SamplingParams = DEFAULT_TEACHER_SAMPLING,
    concurrency: int = 8,
    tie_tolerance: float = 0.0,
    template_paths: Mapping[Task, str | Path] | None = None,
    progress: Progress | None = None,
) -> ProjectionReport:
    """Project every kept comparison into two pointwise critiques; check the order; write them out."""
    by_id = prefs.by_id()
    templates = templates_for("project", {by_id[k].task for k in kept}, template_paths)
    model = await model_name(backend)

    async def work(key: str) -> dict[str, Any]:
        item_id, candidate = key.rsplit("::", 1)
        item = by_id[item_id]
        base = {"teacher": model, "template": templates[item.task].digest}
        try:
            request = render_projection(
                templates[item.task],
                item,
                prefs.load_images(item),
                kept[item_id],
                candidate,  # type: ignore[arg-type]
            )
            answer = await backend.complete(request, sampling)
        except GCRError as exc:
            return failed_record(key, exc, **base)
        text = str(answer)
        base["raw_text"] = text
        if is_truncated(answer):
            return failed_record(key, f"answer cut off at max_tokens={sampling.max_tokens}", **base)
        try:
            critique = parse_critique(text, item.task)
        except CritiqueParseError as exc:
            return failed_record(key, exc, **base)
        problem = projection_problem(critique)
        if problem is not None:
            return failed_record(key, problem, **base)
        return {"status": STATUS_OK, **base}

    keys = [projection_key(k, c) for k in sorted(kept) for c in ("A", "B")]
    log = ResultLog(log_path)
    await run_jobs(keys, work, log, concurrency=concurrency, progress=progress)
    done = log.ok()

    report = ProjectionReport(pairs=len(kept))
    out = Path(pointwise_path)
    with atomic_file(out, "w") as fh:
        for item_id in sorted(kept):
            task = by_id[item_id].task
            records = [done.get(projection_key(item_id, c)) for c in ("A", "B")]
            if any(r is None for r in records):
                report.failed[item_id] = "a projection call failed; rerun the projection to retry it"
                continue
            a, b = (parse_critique(r["raw_text"], task) for r in records)  # type: ignore[index]
            expected = scores_winner(kept[item_id], tie_tolerance)
            got = pointwise_order(a, b, tie_tolerance)
            if got != expected:
                report.violations[item_id] = (
                    f"pointwise totals give {got} (A {pointwise_total(a):g}, B {pointwise_total(b):g}), "
                    f"the comparison gives {expected}"
                )
                continue
            report.projected.append(item_id)
            for candidate, critique in (("A", a), ("B", b)):
                record = {
                    "id": item_id,
                    "candidate": candidate,
                    "task": task.value,
                    "answer": format_pointwise(critique),
                }
                fh.write(dump_line(record))
    Path(report_path).write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    logger.info(
        "projection: %d of %d pairs projected, %d order violations dropped, %d failed",
        len(report.projected),
        report.pairs,
        len(report.violations),
        len(report.failed),
    )
    return report


def load_pointwise(path: str | Path) -> list[dict[str, Any]]:
    """The records of ``pointwise.jsonl``: ``id``, ``candidate``, ``task``, ``answer``."""
    return [record for _, record in read_jsonl(path, error=RunError)]
