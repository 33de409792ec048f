"""ImgEdit-Bench, basic single-turn set (PKU-YuanGroup/ImgEdit, ``Benchmark/Basic/``).

Published layout (cited from the repository):

* ``Benchmark/Basic/basic_edit.json``: one JSON object keyed by the item key,
  ``{"<key>": {"id": "<folder>/<file>.jpg", "prompt": ..., "edit_type": ...}}``;
  ``id`` is the original image's path under ``--origin_img_root``
  (``basic_bench.py``: ``os.path.join(origin_img_root, item['id'])``). The edit
  types found in the file: add, remove, replace, alter, background, style,
  extract, action, compose (``basic_bench_readme.md``: 9 categories).
* The results the evaluator reads: ``<result_img_folder>/<key>.png``
  (``basic_bench.py``, ``process_single_item``: ``f"{key}.png"``).

Each entry becomes an edit case: id = key, category = ``edit_type``, source =
the original image; ``meta`` keeps ``key``, ``image_id`` (the ``id`` field)
and the prompt as written, for the exporter.

The original images are looked up under ``origin_root`` (the folder given to
the official ``--origin_img_root``); by default the JSON file's own folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gcr.bench.eval.pairs import ImageRef
from gcr.bench.prompt_set import BenchCase
from gcr.benchmarks.base import BenchmarkSet, build_set, read_dataset_text, require_file
from gcr.errors import DatasetError
from gcr.task import Task

NAME = "imgedit"
EDIT_FILE = "basic_edit.json"
EDIT_TYPES: tuple[str, ...] = (
    "add", "remove", "replace", "alter", "background", "style", "extract", "action", "compose",
)  # fmt: skip
FIELDS = ("id", "prompt", "edit_type")


def load(path: Path, split: str | None = None, *, origin_root: Path | None = None) -> BenchmarkSet:
    """Read ``basic_edit.json`` (or a folder holding it) with its original images."""
    if split is not None:
        raise DatasetError("ImgEdit-Bench has no splits")
    file = path / EDIT_FILE if path.is_dir() else path
    require_file(file, "imgedit")
    root = origin_root if origin_root is not None else file.parent
    try:
        entries = json.loads(read_dataset_text(file))
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{file}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(entries, dict):
        raise DatasetError(f"{file}: expected a JSON object keyed by item key (the basic_edit.json layout)")
    cases = [_case(key, value, index, file, root) for index, (key, value) in enumerate(entries.items())]
    return build_set(NAME, "imgedit-bench", file, cases, Task.EDIT)


def _case(key: str, entry: Any, index: int, file: Path, root: Path) -> BenchCase:
    where = f"{file} item {key!r}"
    if not isinstance(entry, dict):
        raise DatasetError(f"{where}: expected an object with {', '.join(FIELDS)}")
    for name in FIELDS:
        value = entry.get(name)
        if not isinstance(value, str) or not value.strip():
            raise DatasetError(f"{where}: field {name!r} is missing or not text")
    if not key.strip() or "/" in key or "\\" in key or key in (".", ".."):
        raise DatasetError(f"{where}: the key cannot be a file name")
    image_id = entry["id"]
    relative = Path(image_id)
    if relative.is_absolute() or ".." in relative.parts:
        raise DatasetError(f"{where}: field 'id' {image_id!r} must be a path inside the image root")
    image = root / relative
    if not image.is_file():
        raise DatasetError(f"{where}: original image {image_id!r} not found under {root}")
    return BenchCase(
        id=key,
        prompt=" ".join(entry["prompt"].split()),
        sources=(ImageRef(str(image), f"{where}, field 'id'", (root,)),),
        category=entry["edit_type"],
        row=index,
        meta={
            "benchmark": NAME,
            "key": key,
            "image_id": image_id,
            "edit_type": entry["edit_type"],
            "prompt_text": entry["prompt"],
        },
    )
