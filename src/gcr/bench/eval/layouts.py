"""The field layouts of the preference benchmarks gcr evaluates, and how to read their labels.

Each :class:`Layout` names the columns of one benchmark (shared/DESIGN.md §3)
and turns one row into a :class:`~gcr.bench.eval.records.PreferencePair`.

Label conventions (assumptions documented here, tested in tests/bench/eval):

* MMRB2 ``chosen``: ``"A"`` or ``"B"`` (case-insensitive). Anything else is
  ``unknown``; the benchmark has no ties.
* GenAI-Bench ``vote_type``: ``leftvote`` → A, ``rightvote`` → B, any other
  non-empty vote (``tievote``, ``bothbad_vote``, ...) → tie; an empty or
  missing vote → unknown.
* EditReward-Bench ``ranking``: strings such as ``"A>B"``, ``"B>A"``,
  ``"A=B"``. In the 3- and 4-candidate subsets a row compares two of the
  group's candidates and says which in ``comparison_type`` (``"AvsC"``):
  ``candidate_1`` is the first letter, ``candidate_2`` the second, and the
  ranking uses those letters (``"C>A"``). Without ``comparison_type`` the
  letters are A (``candidate_1``) and B (``candidate_2``). ``<`` is read as the
  mirror of ``>``. A ranking naming letters that are not the two compared
  candidates, or anything unparseable, is ``unknown``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gcr.bench.eval.records import ImageRef, Label, PreferencePair, image_refs
from gcr.critic.schema import Task

Row = Mapping[str, Any]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = str(value).strip()
    return text or None


def label_from_chosen(value: Any, row: Row) -> Label:
    """MMRB2: ``chosen`` is ``A`` or ``B``."""
    text = (_text(value) or "").upper()
    if text in ("A", "B"):
        return text  # type: ignore[return-value]
    return "unknown"


def label_from_vote_type(value: Any, row: Row) -> Label:
    """GenAI-Bench: left/right votes pick a side; every other vote is a tie."""
    text = (_text(value) or "").lower()
    if not text:
        return "unknown"
    if text == "leftvote":
        return "A"
    if text == "rightvote":
        return "B"
    return "tie"


_RANKING_RE = re.compile(r"^\s*([A-Za-z])\s*(>|<|=|==)\s*([A-Za-z])\s*$")
_COMPARISON_RE = re.compile(r"^\s*([A-Za-z])\s*vs\.?\s*([A-Za-z])\s*$", re.IGNORECASE)


def label_from_ranking(value: Any, row: Row) -> Label:
    """EditReward-Bench: ``"A>B"``-style rankings over the letters in ``comparison_type``."""
    text = _text(value)
    if text is None:
        return "unknown"
    match = _RANKING_RE.match(text)
    if match is None:
        return "unknown"
    first, op, second = match.group(1).upper(), match.group(2), match.group(3).upper()
    left, right = "A", "B"
    comparison = _text(row.get("comparison_type"))
    if comparison is not None:
        cmp_match = _COMPARISON_RE.match(comparison)
        if cmp_match is None:
            return "unknown"
        left, right = cmp_match.group(1).upper(), cmp_match.group(2).upper()
    if {first, second} != {left, right}:
        return "unknown"
    if op in ("=", "=="):
        return "tie"
    winner = first if op == ">" else second
    return "A" if winner == left else "B"


@dataclass(frozen=True)
class Layout:
    """The columns of one benchmark and how to read them."""

    name: str
    title: str
    task: Task
    prompt: str
    image_a: str
    image_b: str
    label: str
    read_label: Callable[[Any, Row], Label]
    sources: str | None = None
    sources_required: bool = True
    category_fields: tuple[str, ...] = ("category",)
    id_fields: tuple[str, ...] = ("id",)

    @property
    def required_columns(self) -> tuple[str, ...]:
        cols = [self.prompt, self.image_a, self.image_b, self.label]
        if self.sources is not None and self.sources_required:
            cols.append(self.sources)
        return tuple(cols)

    @property
    def family(self) -> str:
        """MMRB2 t2i and edit share their columns, so detection tells them apart by the data."""
        return "mmrb2" if self.name.startswith("mmrb2-") else self.name

    @property
    def key_columns(self) -> tuple[str, ...]:
        """The non-image columns a cheap scan reads: ids, label, category, comparison type."""
        return (*self.id_fields, self.label, *self.category_fields, "comparison_type")

    def row_id(self, row: Row) -> str | None:
        for name in self.id_fields:
            text = _text(row.get(name))
            if text is not None:
                return text
        return None

    def category(self, row: Row) -> str | None:
        for name in self.category_fields:
            text = _text(row.get(name))
            if text is not None:
                return text
        return None

    def read(self, row: Row, *, pair_id: str, index: int, base_dirs: Sequence[Path]) -> PreferencePair:
        """Turn one row into a pair; never raises (problems surface from ``PreferencePair.check``)."""
        problems: list[str] = []
        prompt_value = row.get(self.prompt)
        if prompt_value is not None and not isinstance(prompt_value, str | bytes):
            problems.append(f"field {self.prompt!r} is a {type(prompt_value).__name__}, not text")
            prompt = ""
        else:
            prompt = _text(prompt_value) or ""
        where = f"row {index} (id {pair_id})"
        sources: tuple[ImageRef, ...] = ()
        if self.sources is not None:
            sources = image_refs(row.get(self.sources), f"{where}, field {self.sources!r}", base_dirs)
        raw_label = row.get(self.label)
        return PreferencePair(
            id=pair_id,
            task=self.task,
            prompt=prompt,
            image_a=ImageRef(row.get(self.image_a), f"{where}, field {self.image_a!r}", tuple(base_dirs)),
            image_b=ImageRef(row.get(self.image_b), f"{where}, field {self.image_b!r}", tuple(base_dirs)),
            label=self.read_label(raw_label, row),
            sources=sources,
            category=self.category(row),
            raw_label=None if raw_label is None else str(raw_label),
            row=index,
            problems=tuple(problems),
        )


def _mmrb2(task: Task) -> Layout:
    return Layout(
        name=f"mmrb2-{task.value}",
        title=f"MMRB2 {'T2I' if task is Task.T2I else 'Edit'}",
        task=task,
        prompt="prompt_text",
        sources="prompt_images",
        sources_required=False,
        image_a="response_a_images",
        image_b="response_b_images",
        label="chosen",
        read_label=label_from_chosen,
        category_fields=("category", "prompt_source"),
        id_fields=("id", "pair_id"),
    )


LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        _mmrb2(Task.T2I),
        _mmrb2(Task.EDIT),
        Layout(
            name="genai-t2i",
            title="GenAI-Bench T2I",
            task=Task.T2I,
            prompt="prompt",
            image_a="left_image",
            image_b="right_image",
            label="vote_type",
            read_label=label_from_vote_type,
        ),
        Layout(
            name="genai-edit",
            title="GenAI-Bench Edit",
            task=Task.EDIT,
            prompt="instruct_prompt",
            sources="source_image",
            image_a="left_output_image",
            image_b="right_output_image",
            label="vote_type",
            read_label=label_from_vote_type,
        ),
        Layout(
            name="editreward",
            title="EditReward-Bench",
            task=Task.EDIT,
            prompt="instruction",
            sources="source_image",
            image_a="candidate_1",
            image_b="candidate_2",
            label="ranking",
            read_label=label_from_ranking,
            category_fields=("category", "dataset"),
        ),
    )
}


def matching_families(columns: Sequence[str]) -> list[str]:
    """Names of the layout families whose required columns are all present (MMRB2 counted once)."""
    present = set(columns)
    found: list[str] = []
    for layout in LAYOUTS.values():
        if set(layout.required_columns) <= present and layout.family not in found:
            found.append(layout.family)
    return found


def has_images(value: Any) -> bool:
    """Whether a source-image field holds at least one image."""
    if value is None:
        return False
    if isinstance(value, list | tuple):
        return any(item is not None for item in value)
    if isinstance(value, str):
        return bool(value.strip())
    return True
