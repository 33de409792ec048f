"""PARROT phase 1, anchored generation: a teacher explains each known preference.

The teacher VLM sees the request, the source image(s), both candidates and the
human verdict, and writes a pairwise per-dimension comparison with scores in the
critic's pairwise answer layout. Calls run concurrently through any
:class:`~gcr.critic.backends.base.ChatBackend` (usually
:class:`~gcr.critic.backends.openai_http.OpenAICompatibleBackend` in front of
vLLM or a hosted API); every result, with the teacher's raw answer, is appended
to ``anchored.jsonl`` so the phase resumes where it stopped.

An answer counts as done only when it parses with
:func:`gcr.critic.parser.parse_pairwise`, judges every dimension of its task and
was not cut off at the token limit; anything else is recorded as failed (raw
text kept) and retried on the next run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gcr.critic.backends.base import ChatBackend, SamplingParams, is_truncated
from gcr.critic.parser import parse_pairwise
from gcr.critic.schema import TASK_DIMENSIONS, PairwiseCritique
from gcr.critic.templates import CritiqueTemplate
from gcr.errors import CritiqueParseError, GCRError
from gcr.task import Task
from gcr.training.parrot.data import PreferenceSet
from gcr.training.parrot.jobs import STATUS_OK, JobStats, Progress, ResultLog, failed_record, run_jobs
from gcr.training.parrot.prompts import load_parrot_template, render_anchor

logger = logging.getLogger(__name__)

#: Teacher sampling: a little temperature for varied wording, room for four long justifications.
DEFAULT_TEACHER_SAMPLING = SamplingParams(temperature=0.2, max_tokens=4096)


async def model_name(backend: ChatBackend) -> str:
    """The backend's model name, asking the server first when it was not given (``/v1/models``)."""
    resolve = getattr(backend, "resolve_model", None)
    if resolve is not None:
        return str(await resolve())
    return backend.model_id


def missing_dimensions(critique: PairwiseCritique) -> list[str]:
    """Dimensions of the task that the comparison does not judge."""
    have = {j.dimension for j in critique.judgements}
    return [d.value for d in TASK_DIMENSIONS[critique.task] if d not in have]


def templates_for(
    kind: str, tasks: set[Task], paths: Mapping[Task, str | Path] | None = None
) -> dict[Task, CritiqueTemplate]:
    """Load the ``kind`` template of every task present (the user's file where one is given)."""
    paths = paths or {}
    return {t: load_parrot_template(kind, t, paths.get(t)) for t in sorted(tasks)}  # type: ignore[arg-type]


async def anchor_preferences(
    prefs: PreferenceSet,
    backend: ChatBackend,
    log_path: str | Path,
    *,
    sampling: SamplingParams = DEFAULT_TEACHER_SAMPLING,
    concurrency: int = 8,
    template_paths: Mapping[Task, str | Path] | None = None,
    progress: Progress | None = None,
) -> JobStats:
    """Ask the teacher for an anchored rationale of every item not yet done; return the run's counts."""
    templates = templates_for("anchor", {i.task for i in prefs}, template_paths)
    by_id = prefs.by_id()
    teacher = await model_name(backend)

    async def work(key: str) -> dict[str, Any]:
        item = by_id[key]
        template = templates[item.task]
        base = {"task": item.task.value, "label": item.label, "teacher": teacher, "template": template.digest}
        try:
            request = render_anchor(template, item, prefs.load_images(item))
            answer = await backend.complete(request, sampling)
        except GCRError as exc:  # backend failures and unreadable image files
            return failed_record(key, exc, **base)
        text = str(answer)
        base["raw_text"] = text
        base["finish_reason"] = getattr(answer, "finish_reason", None)
        if is_truncated(answer):
            return failed_record(key, f"answer cut off at max_tokens={sampling.max_tokens}", **base)
        try:
            critique = parse_pairwise(text, item.task)
        except CritiqueParseError as exc:
            return failed_record(key, exc, **base)
        missing = missing_dimensions(critique)
        if missing:
            return failed_record(key, f"the comparison does not judge {', '.join(missing)}", **base)
        if critique.truncated:
            return failed_record(key, "the comparison looks truncated", **base)
        return {"status": STATUS_OK, **base}

    return await run_jobs(
        (i.id for i in prefs), work, ResultLog(log_path), concurrency=concurrency, progress=progress
    )


def load_anchored(log_path: str | Path, prefs: PreferenceSet) -> dict[str, PairwiseCritique]:
    """The parsed comparisons of every item whose latest anchoring record is ``ok``."""
    by_id = prefs.by_id()
    out: dict[str, PairwiseCritique] = {}
    for key, record in ResultLog(log_path).ok().items():
        item = by_id.get(key)
        if item is None:
            logger.warning("anchored rationale %s has no item in %s; ignored", key, prefs.path)
            continue
        out[key] = parse_pairwise(record["raw_text"], item.task)
    return out
