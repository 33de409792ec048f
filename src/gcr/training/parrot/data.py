"""The normalized preference format that every PARROT phase reads.

A preference set is a folder holding ``preferences.jsonl`` (one
:class:`PreferenceItem` per line) and the image files it names. Image paths are
relative to the folder, so a set can be moved or copied as a whole::

    my-prefs/
      preferences.jsonl
      images/0001_a.png  images/0001_b.png  images/0001_src0.png ...

One line looks like::

    {"id": "0001", "task": "edit", "request": "make the sky purple",
     "source_images": ["images/0001_src0.png"], "image_a": "images/0001_a.png",
     "image_b": "images/0001_b.png", "label": "A", "origin": "editreward", "meta": {}}

``label`` says which candidate people preferred: ``"A"``, ``"B"`` or ``"tie"``.
:func:`validate_preferences` checks every row (fields, labels, duplicate ids,
that the image files exist and decode) and reports each broken row instead of
stopping at the first; :func:`load_preferences` is the strict reader the
pipeline phases use.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gcr.errors import DatasetError, ImageError
from gcr.image_input import ImageInput
from gcr.images import load_image
from gcr.io import atomic_file, json_lines, parse_json_line
from gcr.task import Task

logger = logging.getLogger(__name__)

PREFERENCES_FILE = "preferences.jsonl"
IMAGES_DIR = "images"

Label = Literal["A", "B", "tie"]
LABELS: tuple[str, ...] = ("A", "B", "tie")


def normalize_label(value: object) -> Label:
    """Read ``A``/``B``/``tie`` in any case (also ``image a``, ``equal``); raise ``ValueError`` otherwise."""
    text = str(value).strip().lower().replace("_", " ")
    if text in ("a", "image a", "left"):
        return "A"
    if text in ("b", "image b", "right"):
        return "B"
    if text in ("tie", "equal", "same", "draw"):
        return "tie"
    raise ValueError(f"label {value!r} is not A, B or tie")


class PreferenceItem(BaseModel):
    """One labelled comparison: a request, optional source images, candidates A and B, the label."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, description="unique within the set")
    task: Task
    request: str = Field(description="the prompt (t2i) or the editing instruction (edit)")
    source_images: list[str] = Field(default_factory=list, description="paths, relative to the set folder")
    image_a: str
    image_b: str
    label: Label
    origin: str = Field(default="", description="where the pair came from (layout or dataset name)")
    meta: dict[str, Any] = Field(default_factory=dict)

    @field_validator("task", mode="before")
    @classmethod
    def _task(cls, value: object) -> Task:
        return Task.parse(value)  # type: ignore[arg-type]

    @field_validator("label", mode="before")
    @classmethod
    def _label(cls, value: object) -> str:
        return normalize_label(value)

    @field_validator("request")
    @classmethod
    def _request(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the request is empty")
        return value.strip()

    @model_validator(mode="after")
    def _images_fit_task(self) -> PreferenceItem:
        if self.task is Task.EDIT and not self.source_images:
            raise ValueError("an edit pair needs at least one source image")
        if self.task is Task.T2I and self.source_images:
            raise ValueError("a text-to-image pair takes no source images (use task 'edit')")
        if self.image_a == self.image_b:
            raise ValueError("image_a and image_b are the same file")
        return self

    def image_paths(self) -> list[str]:
        """Every image the item names: sources, then A, then B."""
        return [*self.source_images, self.image_a, self.image_b]


@dataclass(frozen=True)
class ItemImages:
    """The images of one item, as the critic and teacher backends take them.

    Each is an :class:`~gcr.image_input.ImageInput` over its file: the header is
    checked when it is made, the file's bytes are sent as they are where they can
    be, and pixels are decoded only where a destination needs them.
    """

    sources: list[ImageInput]
    a: ImageInput
    b: ImageInput

    def candidate(self, which: Literal["A", "B"]) -> ImageInput:
        return self.a if which == "A" else self.b


@dataclass
class PreferenceSet:
    """The items of a preference set and the folder their image paths are relative to."""

    root: Path
    items: list[PreferenceItem]

    @property
    def path(self) -> Path:
        return self.root / PREFERENCES_FILE

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[PreferenceItem]:
        return iter(self.items)

    def by_id(self) -> dict[str, PreferenceItem]:
        return {item.id: item for item in self.items}

    def resolve(self, relative: str) -> Path:
        return self.root / relative

    def load_images(self, item: PreferenceItem) -> ItemImages:
        """The item's images (headers checked); a missing or non-image file raises :class:`ImageError`."""
        return ItemImages(
            sources=[ImageInput.from_file(self.resolve(p)) for p in item.source_images],
            a=ImageInput.from_file(self.resolve(item.image_a)),
            b=ImageInput.from_file(self.resolve(item.image_b)),
        )


@dataclass(frozen=True)
class RowProblem:
    """Why one row of a preference file (or of a source file being imported) is unusable."""

    line: int
    message: str
    item_id: str | None = None

    def __str__(self) -> str:
        where = f"line {self.line}" + (f" (id {self.item_id})" if self.item_id else "")
        return f"{where}: {self.message}"


@dataclass
class ValidationReport:
    """Outcome of :func:`validate_preferences`: how many rows are usable and what is wrong with the rest."""

    path: Path
    total: int = 0
    valid: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)
    tasks: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "total": self.total,
            "valid": self.valid,
            "broken": self.total - self.valid,
            "labels": self.labels,
            "tasks": self.tasks,
            "problems": [str(p) for p in self.problems],
        }


def preferences_path(path: str | Path) -> Path:
    """``path`` itself when it is a file, else ``path/preferences.jsonl``."""
    p = Path(path).expanduser()
    return p / PREFERENCES_FILE if p.is_dir() else p


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err.get("loc", ())) or "row"
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


def parse_row(line: str) -> PreferenceItem:
    """Parse one JSONL line; raise ``ValueError`` with a readable reason."""
    data = parse_json_line(line)
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    try:
        return PreferenceItem.model_validate(data)
    except ValidationError as exc:
        raise ValueError(_describe(exc)) from None


def load_preferences(path: str | Path) -> PreferenceSet:
    """Read a preference set strictly: the first broken row raises :class:`DatasetError`.

    Images are not opened here (see :func:`validate_preferences` for a full check).
    """
    file = preferences_path(path)
    if not file.is_file():
        raise DatasetError(f"preference file not found: {file} (import data with `gcr train parrot import`)")
    items: list[PreferenceItem] = []
    seen: set[str] = set()
    for number, line in json_lines(file):
        try:
            item = parse_row(line)
        except ValueError as exc:
            raise DatasetError(
                f"{file}, line {number}: {exc}; run `gcr train parrot validate {file}` "
                "to list every broken row"
            ) from None
        if item.id in seen:
            raise DatasetError(f"{file}, line {number}: duplicate id {item.id!r}")
        seen.add(item.id)
        items.append(item)
    if not items:
        raise DatasetError(f"preference file {file} holds no rows")
    return PreferenceSet(root=file.parent, items=items)


def validate_preferences(path: str | Path, *, check_images: bool = True) -> ValidationReport:
    """Check every row of a preference file and report each broken one with its line number.

    With ``check_images`` every image is opened and decoded, so missing, empty or
    corrupt files are found before a teacher is paid to look at them.
    """
    file = preferences_path(path)
    if not file.is_file():
        raise DatasetError(f"preference file not found: {file}")
    report = ValidationReport(path=file)
    seen: dict[str, int] = {}
    for number, line in json_lines(file):
        report.total += 1
        try:
            item = parse_row(line)
        except ValueError as exc:
            report.problems.append(RowProblem(number, str(exc), _peek_id(line)))
            continue
        if item.id in seen:
            report.problems.append(
                RowProblem(number, f"duplicate id (first on line {seen[item.id]})", item.id)
            )
            continue
        seen[item.id] = number
        if check_images:
            bad = _broken_images(file.parent, item)
            if bad:
                report.problems.append(RowProblem(number, "; ".join(bad), item.id))
                continue
        report.valid += 1
        report.labels[item.label] = report.labels.get(item.label, 0) + 1
        report.tasks[item.task.value] = report.tasks.get(item.task.value, 0) + 1
    logger.info("validated %s: %d of %d rows usable", file, report.valid, report.total)
    return report


def _peek_id(line: str) -> str | None:
    try:
        data = parse_json_line(line)
    except ValueError:
        return None
    value = data.get("id") if isinstance(data, dict) else None
    return str(value) if value is not None else None


def _broken_images(root: Path, item: PreferenceItem) -> list[str]:
    problems = []
    for rel in item.image_paths():
        try:
            load_image(root / rel)
        except ImageError as exc:
            problems.append(str(exc))
    return problems


def write_preferences(folder: str | Path, items: Iterable[PreferenceItem]) -> Path:
    """Write ``items`` to ``folder/preferences.jsonl`` (replacing it); return the file path."""
    file = Path(folder) / PREFERENCES_FILE
    with atomic_file(file, "w") as fh:
        for item in items:
            fh.write(item.model_dump_json() + "\n")
    return file
