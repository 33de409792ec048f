"""The normalized preference format: item rules, the strict reader and the row-by-row validator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from gcr.errors import DatasetError
from gcr.task import Task
from gcr.training.parrot.data import (
    PreferenceItem,
    load_preferences,
    normalize_label,
    validate_preferences,
)
from stubs.teacher_server import write_png


def _item(**kw):
    base = dict(id="x", task="t2i", request="a cat", image_a="a.png", image_b="b.png", label="A")
    return PreferenceItem(**{**base, **kw})


@pytest.mark.parametrize(
    ("raw", "want"),
    [("A", "A"), ("b", "B"), ("Image A", "A"), ("TIE", "tie"), ("equal", "tie"), ("left", "A")],
)
def test_labels_are_normalized(raw: str, want: str) -> None:
    assert normalize_label(raw) == want


def test_unknown_label_is_refused() -> None:
    with pytest.raises(ValueError, match="not A, B or tie"):
        normalize_label("maybe")


def test_item_rules() -> None:
    assert _item(task="EDIT", source_images=["s.png"]).task is Task.EDIT
    assert _item(request="  padded  ").request == "padded"
    with pytest.raises(ValidationError, match="edit pair needs at least one source image"):
        _item(task="edit")
    with pytest.raises(ValidationError, match="takes no source images"):
        _item(source_images=["s.png"])
    with pytest.raises(ValidationError, match="same file"):
        _item(image_b="a.png")
    with pytest.raises(ValidationError, match="request is empty"):
        _item(request="   ")
    with pytest.raises(ValidationError):
        _item(unexpected="field")


def _write_rows(root: Path, rows: list[object]) -> Path:
    write_png(root / "a.png", (255, 0, 0))
    write_png(root / "b.png", (0, 255, 0))
    write_png(root / "s.png", (0, 0, 255))
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    file = root / "preferences.jsonl"
    with file.open("w") as fh:
        for row in rows:
            fh.write((row if isinstance(row, str) else json.dumps(row)) + "\n")
    return file


GOOD = {
    "id": "ok1",
    "task": "t2i",
    "request": "a red cube",
    "image_a": "a.png",
    "image_b": "b.png",
    "label": "A",
}


def test_validator_reports_every_broken_row_with_its_line(tmp_path: Path) -> None:
    rows = [
        GOOD,
        {**GOOD, "id": "ok2", "label": "tie", "task": "edit", "source_images": ["s.png"]},
        "{not json",
        {**GOOD, "id": "bad-label", "label": "C"},
        {**GOOD, "id": "ok1"},
        {**GOOD, "id": "missing-img", "image_b": "nope.png"},
        {**GOOD, "id": "corrupt", "image_a": "broken.png"},
        {**GOOD, "id": "no-request", "request": ""},
        ["a", "list"],
    ]
    file = _write_rows(tmp_path, rows)
    report = validate_preferences(tmp_path)
    assert (report.total, report.valid) == (9, 2)
    assert report.labels == {"A": 1, "tie": 1}
    assert report.tasks == {"t2i": 1, "edit": 1}
    by_line = {p.line: p for p in report.problems}
    assert sorted(by_line) == [3, 4, 5, 6, 7, 8, 9]
    assert "not valid JSON" in by_line[3].message
    assert by_line[4].item_id == "bad-label" and "label" in by_line[4].message
    assert "duplicate id (first on line 1)" in by_line[5].message
    assert "image file not found" in by_line[6].message and "nope.png" in by_line[6].message
    assert "not an image" in by_line[7].message or "cannot read" in by_line[7].message
    assert "request is empty" in by_line[8].message
    assert "expected a JSON object" in by_line[9].message
    assert not report.ok
    assert report.to_dict()["broken"] == 7
    # without image checks the broken files pass
    assert validate_preferences(file, check_images=False).valid == 4


def test_strict_reader_stops_at_the_first_broken_row(tmp_path: Path) -> None:
    _write_rows(tmp_path, [GOOD, {**GOOD, "id": "x", "label": "C"}])
    with pytest.raises(DatasetError, match=r"line 2: .*label.*gcr train parrot validate"):
        load_preferences(tmp_path)
    _write_rows(tmp_path, [GOOD, GOOD])
    with pytest.raises(DatasetError, match="duplicate id 'ok1'"):
        load_preferences(tmp_path)


def test_reader_resolves_images_relative_to_the_set(tmp_path: Path) -> None:
    _write_rows(tmp_path, [{**GOOD, "task": "edit", "source_images": ["s.png"]}])
    prefs = load_preferences(tmp_path / "preferences.jsonl")
    images = prefs.load_images(prefs.items[0])
    # The images stay files (sent as their bytes) until something needs their pixels.
    assert images.a.path == (tmp_path / GOOD["image_a"]).resolve() and not images.a.has_pixels
    assert images.a.pixels().getpixel((0, 0)) == (255, 0, 0)
    assert images.candidate("B").pixels().getpixel((0, 0)) == (0, 255, 0)
    assert [im.pixels().getpixel((0, 0)) for im in images.sources] == [(0, 0, 255)]


def test_missing_or_empty_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        load_preferences(tmp_path)
    (tmp_path / "preferences.jsonl").write_text("\n")
    with pytest.raises(DatasetError, match="holds no rows"):
        load_preferences(tmp_path)
