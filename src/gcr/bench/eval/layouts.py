"""The field layouts of the preference benchmarks gcr evaluates, and how to read their labels.

Each :class:`Layout` names the columns of one benchmark (the layout table in docs/eval.md)
and turns one row into a :class:`~gcr.bench.eval.pairs.PreferencePair`.

Labels and MMRB2 prompts are read by :mod:`gcr.bench.eval.fields`, the same
functions the PARROT importers use; a value that names no preference makes the
pair ``unknown`` (counted, not judged), never a tie. An EditReward-Bench file
without a ``ranking`` column is still recognised when it carries the
per-candidate score columns, whose sums then decide.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gcr.bench.eval.fields import (
    EDITREWARD_SCORE_FIELDS,
    Preference,
    UnreadableLabel,
    chosen_label,
    editreward_label,
    mmrb2_prompt,
    vote_label,
)
from gcr.bench.eval.pairs import ImageRef, Label, PreferencePair, image_refs
from gcr.task import Task

Row = Mapping[str, Any]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = str(value).strip()
    return text or None


def _or_unknown(read: Callable[[], Preference]) -> Label:
    try:
        return read()
    except UnreadableLabel:
        return "unknown"


def label_from_chosen(value: Any, row: Row) -> Label:
    """MMRB2: ``chosen`` is ``A`` or ``B``."""
    return _or_unknown(lambda: chosen_label(value))


def label_from_vote_type(value: Any, row: Row) -> Label:
    """GenAI-Bench: the four GenAI-Arena votes; any other value is unknown."""
    return _or_unknown(lambda: vote_label(value))


def label_from_editreward(value: Any, row: Row) -> Label:
    """EditReward-Bench: the ranking, or without one the per-candidate score sums."""
    return _or_unknown(lambda: editreward_label(row))


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
    #: Columns that together stand in for a missing ``label`` column (``read_label`` reads them).
    label_fallback: tuple[str, ...] = ()
    #: Applied to the prompt text as read (MMRB2: drop its image placeholders).
    clean_prompt: Callable[[str], str] | None = None

    @property
    def required_columns(self) -> tuple[str, ...]:
        cols = [self.prompt, self.image_a, self.image_b, self.label]
        if self.sources is not None and self.sources_required:
            cols.append(self.sources)
        return tuple(cols)

    def missing_columns(self, columns: Sequence[str]) -> list[str]:
        """Required columns absent from ``columns``; a label column whose fallback is present is not."""
        present = set(columns)
        missing = [c for c in self.required_columns if c not in present]
        if self.label in missing and self.label_fallback and set(self.label_fallback) <= present:
            missing.remove(self.label)
        return missing

    @property
    def family(self) -> str:
        """MMRB2 t2i and edit share their columns, so detection tells them apart by the data."""
        return "mmrb2" if self.name.startswith("mmrb2-") else self.name

    @property
    def key_columns(self) -> tuple[str, ...]:
        """The non-image columns a cheap scan reads: ids, label, category, comparison type."""
        return (*self.id_fields, self.label, *self.label_fallback, *self.category_fields, "comparison_type")

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
            if self.clean_prompt is not None:
                prompt = self.clean_prompt(prompt)
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
        clean_prompt=mmrb2_prompt,
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
            read_label=label_from_editreward,
            category_fields=("category", "dataset"),
            label_fallback=EDITREWARD_SCORE_FIELDS,
        ),
    )
}


def matching_families(columns: Sequence[str]) -> list[str]:
    """Names of the layout families whose required columns are all present (MMRB2 counted once)."""
    found: list[str] = []
    for layout in LAYOUTS.values():
        if not layout.missing_columns(columns) and layout.family not in found:
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
