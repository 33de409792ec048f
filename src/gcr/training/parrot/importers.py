"""Importers: common preference-data layouts → the normalized preference format.

Layouts (field names as the datasets publish them):

===================  ======================================================================
``mmrb2``            MMRB2 (t2i and edit): ``prompt_text`` (``<image_N>`` placeholders dropped),
                     ``prompt_images`` (source images; none for t2i), ``response_a_images``,
                     ``response_b_images`` (one image each), ``chosen`` (A/B); or the
                     official release JSON (``{"pairs": [...]}``), read as ``gcr eval`` reads
                     it. The task is inferred from the source images unless given.
``genai-bench-t2i``  GenAI-Bench t2i: ``prompt``, ``left_image``, ``right_image``,
                     ``vote_type`` (``leftvote`` → A, ``rightvote`` → B, ``tievote`` and
                     ``bothbad_vote`` → tie; any other vote skips the row).
``genai-bench-edit`` GenAI-Bench edit: ``instruct_prompt``, ``source_image``,
                     ``left_output_image``, ``right_output_image``, ``vote_type``.
``editreward-bench`` EditReward-Bench: ``instruction``, ``source_image``, ``candidate_1``,
                     ``candidate_2``, ``ranking`` read as ``gcr eval`` reads it (``A>B``; in the
                     3/4-candidate subsets over the letters of ``comparison_type``, e.g.
                     ``AvsC`` with ``C>A``), also ``2>1``, ``[2, 1]``, ...; without a ranking
                     the sums ``instruction_following_N + visual_quality_N`` decide.
``hpd``              HPD-style t2i (HPDv3 ``train.json``): ``prompt``, ``path1`` (the preferred
                     image), ``path2``, optional ``model1``/``model2``/``confidence``.
``editreward``       EditReward-style edit: the training JSON (``prompt``, ``path_src``,
                     ``path1`` preferred, ``path2``, ``tie_case``) or the EditReward-Data
                     Parquet rows (``instruction``, ``source_img``, ``left_output_image``,
                     ``right_output_image``, ``vote_type``).
===================  ======================================================================

Labels are read by :mod:`gcr.bench.eval.fields`, the functions ``gcr eval``
uses, so both agree on every row. Layouts that always list the preferred image
first (``hpd``, the ``editreward`` JSON) are shuffled into A/B order by a hash
of the item id, so labels come out balanced and reproducible. Broken rows are
skipped and reported, never guessed.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gcr.bench.eval.fields import (
    EDITREWARD_SCORE_FIELDS,
    UnreadableLabel,
    chosen_label,
    editreward_label,
    mmrb2_prompt,
    vote_label,
)
from gcr.errors import InputError
from gcr.task import Task
from gcr.training.parrot.data import Label, PreferenceItem, RowProblem, write_preferences
from gcr.training.parrot.sources import ImageStore, RowError, SourceRow, iter_rows, safe_name

logger = logging.getLogger(__name__)


@dataclass
class RawPair:
    """What a layout reads from one row, before its images are stored."""

    id: str
    task: Task
    request: str
    sources: list[Any]
    a: Any
    b: Any
    label: Label
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class ImportReport:
    """Outcome of :func:`import_preferences`."""

    source: str
    layout: str
    path: Path
    total: int = 0
    written: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "layout": self.layout,
            "path": str(self.path),
            "rows": self.total,
            "written": self.written,
            "skipped": len(self.problems),
            "labels": self.labels,
            "problems": [str(p) for p in self.problems],
        }


def _need(row: dict[str, Any], key: str) -> Any:
    value = row.get(key)
    if value is None or (isinstance(value, (str, list)) and not value):
        raise RowError(f"field {key!r} is missing or empty")
    return value


def _text(row: dict[str, Any], key: str) -> str:
    value = _need(row, key)
    if not isinstance(value, str) or not value.strip():
        raise RowError(f"field {key!r} must be non-empty text")
    return value.strip()


def _row_id(row: SourceRow, *keys: str) -> str:
    for key in keys:
        value = row.data.get(key)
        if value is not None and str(value).strip():
            return str(value).strip()
    return f"{row.file.stem}-{row.number}"


def _mmrb2_request(d: dict[str, Any]) -> str:
    request = mmrb2_prompt(_text(d, "prompt_text"))
    if not request:
        raise RowError("field 'prompt_text' holds only image placeholders")
    return request


def _single(value: Any, key: str) -> Any:
    """MMRB2 stores each response as a list of images; gcr compares single images."""
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise RowError(f"{key} holds {len(value)} images; only single-image responses can be compared")
        return value[0]
    return value


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _label(read: Callable[[], Label]) -> Label:
    try:
        return read()
    except UnreadableLabel as exc:
        raise RowError(str(exc)) from None


def _swapped(item_id: str) -> bool:
    return hashlib.sha256(f"gcr-ab:{item_id}".encode()).digest()[0] % 2 == 1


def _preferred_first(item_id: str, preferred: Any, other: Any, tie: bool) -> tuple[Any, Any, Label]:
    if _swapped(item_id):
        return other, preferred, "tie" if tie else "B"
    return preferred, other, "tie" if tie else "A"


def _mmrb2(row: SourceRow, task: Task | None) -> RawPair:
    d = row.data
    sources = _as_list(d.get("prompt_images"))
    label = _label(lambda: chosen_label(d.get("chosen")))
    inferred = Task.EDIT if sources else Task.T2I
    return RawPair(
        id=_row_id(row, "pair_id", "id"),
        task=task or inferred,
        request=_mmrb2_request(d),
        sources=sources,
        a=_single(_need(d, "response_a_images"), "response_a_images"),
        b=_single(_need(d, "response_b_images"), "response_b_images"),
        label=label,
        meta={k: d[k] for k in ("response_a_model", "response_b_model") if d.get(k)},
    )


def _genai_t2i(row: SourceRow, task: Task | None) -> RawPair:
    d = row.data
    return RawPair(
        id=_row_id(row, "pair_id", "index", "id"),
        task=Task.T2I,
        request=_text(d, "prompt"),
        sources=[],
        a=_need(d, "left_image"),
        b=_need(d, "right_image"),
        label=_label(lambda: vote_label(d.get("vote_type"))),
        meta={
            "vote_type": d.get("vote_type"),
            **{k: d[k] for k in ("left_model", "right_model") if d.get(k)},
        },
    )


def _genai_edit(row: SourceRow, task: Task | None) -> RawPair:
    d = row.data
    return RawPair(
        id=_row_id(row, "pair_id", "index", "id"),
        task=Task.EDIT,
        request=_text(d, "instruct_prompt"),
        sources=[_need(d, "source_image")],
        a=_need(d, "left_output_image"),
        b=_need(d, "right_output_image"),
        label=_label(lambda: vote_label(d.get("vote_type"))),
        meta={
            "vote_type": d.get("vote_type"),
            **{k: d[k] for k in ("left_model", "right_model") if d.get(k)},
        },
    )


def _editreward_bench(row: SourceRow, task: Task | None) -> RawPair:
    d = row.data
    if d.get("candidate_3") is not None:
        raise RowError("multi-way row (candidate_3 present): import the 2-way subset")
    scores = {k: d.get(k) for k in EDITREWARD_SCORE_FIELDS}
    label = _label(lambda: editreward_label(d))
    return RawPair(
        id=_row_id(row, "id", "dev_id", "pair_id"),
        task=Task.EDIT,
        request=_text(d, "instruction"),
        sources=[_need(d, "source_image")],
        a=_need(d, "candidate_1"),
        b=_need(d, "candidate_2"),
        label=label,
        meta={k: v for k, v in scores.items() if v is not None},
    )


def _hpd(row: SourceRow, task: Task | None) -> RawPair:
    d = row.data
    prompt = _text(d, "prompt")
    p1, p2 = _text(d, "path1"), _text(d, "path2")
    item_id = (
        _row_id(row, "id")
        if d.get("id")
        else hashlib.sha256(f"{prompt}\0{p1}\0{p2}".encode()).hexdigest()[:16]
    )
    a, b, label = _preferred_first(item_id, p1, p2, tie=False)
    meta = {k: d[k] for k in ("confidence", "choice_dist") if d.get(k) is not None}
    models = (d.get("model1"), d.get("model2"))
    if any(models):
        meta["model_a"], meta["model_b"] = models if a == p1 else models[::-1]
    return RawPair(id=item_id, task=Task.T2I, request=prompt, sources=[], a=a, b=b, label=label, meta=meta)


def _editreward(row: SourceRow, task: Task | None) -> RawPair:
    d = row.data
    if "left_output_image" in d or "right_output_image" in d:  # EditReward-Data Parquet rows
        item_id = _row_id(row, "unique_key", "id")
        return RawPair(
            id=item_id,
            task=Task.EDIT,
            request=_text(d, "instruction"),
            sources=[_need(d, "source_img")],
            a=_need(d, "left_output_image"),
            b=_need(d, "right_output_image"),
            label=_label(lambda: vote_label(d.get("vote_type"))),
            meta={
                k: d[k]
                for k in ("left_model", "right_model", "left_overall_score", "right_overall_score")
                if d.get(k) is not None
            },
        )
    prompt = _text(d, "prompt")
    src, p1, p2 = _text(d, "path_src"), _text(d, "path1"), _text(d, "path2")
    item_id = (
        _row_id(row, "id")
        if d.get("id")
        else hashlib.sha256(f"{prompt}\0{src}\0{p1}\0{p2}".encode()).hexdigest()[:16]
    )
    a, b, label = _preferred_first(item_id, p1, p2, tie=bool(d.get("tie_case")))
    meta = {
        k: d[k]
        for k in ("model1", "model2", "model1_overall_score", "model2_overall_score")
        if d.get(k) is not None
    }
    meta["preferred_listed_first"] = a == p1
    return RawPair(
        id=item_id, task=Task.EDIT, request=prompt, sources=[src], a=a, b=b, label=label, meta=meta
    )


#: Fields that name a row in the problem report, whichever layout it is in.
_ID_KEYS = ("id", "pair_id", "unique_key", "dev_id", "index")

LAYOUTS: dict[str, Callable[[SourceRow, Task | None], RawPair]] = {
    "mmrb2": _mmrb2,
    "genai-bench-t2i": _genai_t2i,
    "genai-bench-edit": _genai_edit,
    "editreward-bench": _editreward_bench,
    "hpd": _hpd,
    "editreward": _editreward,
}


def import_preferences(
    source: str | Path,
    layout: str,
    out_dir: str | Path,
    *,
    task: Task | str | None = None,
    origin: str | None = None,
    limit: int | None = None,
) -> ImportReport:
    """Convert ``source`` (file or folder) in ``layout`` into a preference set at ``out_dir``.

    Every usable row becomes one :class:`PreferenceItem` with its images written
    under ``out_dir/images``; broken rows (missing fields, unreadable labels,
    images that do not decode, duplicate ids) are skipped and listed in the report.
    ``limit`` stops after that many items were written.
    """
    if layout not in LAYOUTS:
        raise InputError(f"unknown layout {layout!r}: use one of {', '.join(LAYOUTS)}")
    read = LAYOUTS[layout]
    task_override = Task.parse(task) if task is not None else None
    out = Path(out_dir).expanduser()
    store = ImageStore(out)
    report = ImportReport(source=str(source), layout=layout, path=out)
    items: list[PreferenceItem] = []
    seen: set[str] = set()
    for row in iter_rows(source):
        if limit is not None and len(items) >= limit:
            break
        report.total += 1
        if isinstance(row, tuple):
            file, number, reason = row
            report.problems.append(RowProblem(number, f"{file.name}: {reason}"))
            continue
        try:
            item = _convert(read(row, task_override), row, store, origin or layout, seen)
        except RowError as exc:
            report.problems.append(RowProblem(row.number, f"{row.file.name}: {exc}", _row_id(row, *_ID_KEYS)))
            continue
        seen.add(item.id)
        items.append(item)
        report.labels[item.label] = report.labels.get(item.label, 0) + 1
    report.written = len(items)
    if items:
        report.path = write_preferences(out, items)
    logger.info("imported %d of %d rows from %s (%s)", report.written, report.total, source, layout)
    return report


def _convert(raw: RawPair, row: SourceRow, store: ImageStore, origin: str, seen: set[str]) -> PreferenceItem:
    if raw.id in seen:
        raise RowError(f"duplicate id {raw.id!r}")
    if raw.task is Task.EDIT and not raw.sources:
        raise RowError("an edit pair needs a source image")
    stem = safe_name(raw.id)
    sources = [store.store(ref, row, f"{stem}_src{i}") for i, ref in enumerate(raw.sources)]
    a = store.store(raw.a, row, f"{stem}_a")
    b = store.store(raw.b, row, f"{stem}_b")
    return PreferenceItem(
        id=raw.id,
        task=raw.task,
        request=raw.request,
        source_images=sources,
        image_a=a,
        image_b=b,
        label=raw.label,
        origin=origin,
        meta={k: v for k, v in raw.meta.items() if isinstance(v, (str, int, float, bool))},
    )
