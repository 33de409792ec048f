"""Reading prompt sets for ``gcr bench`` from a file, a folder or a built-in set.

The data model (:class:`~gcr.bench.prompt_set.BenchCase`,
:class:`~gcr.bench.prompt_set.PromptSet`) lives in :mod:`gcr.bench.prompt_set`.

Accepted inputs (:func:`load_prompt_set`):

* ``*.jsonl``: one JSON object per line; ``*.json``: a JSON array of such objects;
* ``*.csv``: a header row, then one case per row;
* ``*.parquet``: one case per row;
* ``*.txt`` (or any other text file): one prompt per line; blank lines and lines
  starting with ``#`` are skipped;
* a folder of edit cases, in one of two layouts:

  - ``FOLDER/cases.jsonl`` (same fields as a JSONL file), image paths relative to ``FOLDER``;
  - one subfolder per case, ``FOLDER/<id>/instruction.txt`` (or ``prompt.txt``) and its
    source image(s) ``FOLDER/<id>/source.png`` (``source-0.png``, ``source-1.jpg``, ... for
    several; png, jpg, jpeg or webp); the subfolder name is the case id;

* ``builtin:NAME``: a set that ships with gcr (see :mod:`gcr.bench.builtin`);
* ``BENCHMARK:PATH``: a standard benchmark in its published layout (``geneval``,
  ``dpg``, ``t2icompbench``, ``gedit``, ``gedit-en``, ``gedit-cn``, ``imgedit``;
  see :mod:`gcr.benchmarks`).

Fields of a structured row: ``prompt`` (or ``instruction``; required), ``id``
(default: ``p`` + the row number, e.g. ``p0007``), ``category`` (optional, used
for breakdowns), and for edits ``image`` (one source image) or ``images`` (a
list; in CSV separated by ``;``). Images are file paths relative to the file's
folder, or (Parquet) embedded image records ``{"bytes": ..., "path": ...}``.
Other fields are kept as the case's ``meta``. A set is all text-to-image (no
images) or all edits (every case has a source image).

Every problem raises :class:`~gcr.errors.DatasetError` naming the file, the row
and the field.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gcr.bench.eval.pairs import ImageRef
from gcr.bench.prompt_set import BenchCase, PromptSet
from gcr.errors import DatasetError, DependencyError
from gcr.io import read_jsonl
from gcr.limits import prompt_too_long
from gcr.task import Task

logger = logging.getLogger(__name__)
BUILTIN_PREFIX = "builtin:"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
_PROMPT_FIELDS = ("prompt", "instruction")
_IMAGE_FIELDS = ("image", "images")
_KNOWN_FIELDS = {"id", "category", *_PROMPT_FIELDS, *_IMAGE_FIELDS}


def load_prompt_set(spec: str | Path) -> PromptSet:
    """Read a prompt set from ``spec`` (a path or ``builtin:NAME``); see the module docstring."""
    text = str(spec)
    if text.startswith(BUILTIN_PREFIX):
        return _load_builtin(text[len(BUILTIN_PREFIX) :])
    from gcr.benchmarks import load_benchmark, split_spec

    if split_spec(text) is not None:  # geneval:PATH, gedit-en:PATH ... (gcr.benchmarks)
        return load_benchmark(text)
    path = Path(text).expanduser()
    if not path.exists():
        raise DatasetError(
            f"prompt set {text!r} not found: give a .jsonl/.csv/.parquet/.txt file, a folder of edit cases, "
            "or builtin:NAME (gcr bench list-sets)"
        )
    return _load_path(path)


def _load_builtin(name: str) -> PromptSet:
    from gcr.bench.builtin import builtin_parts

    parts = [_load_path(path) for path in builtin_parts(name)]
    cases = tuple(case for part in parts for case in part.cases)
    where = Path(parts[0].source)
    ids = [c.id for c in cases]
    if len(set(ids)) != len(ids):
        raise DatasetError(f"built-in set {name!r} repeats a prompt id")
    return PromptSet(
        name=name.strip().lower(),
        source=BUILTIN_PREFIX + name.strip().lower(),
        cases=cases,
        task=_set_task(cases, where),
    )


def _load_path(path: Path) -> PromptSet:
    # Made absolute once, here: every image path of the set is then resolved against an absolute
    # folder (the file's, or the case's), whatever the working directory is when it is loaded.
    path = Path(os.path.abspath(path))
    if path.is_dir():
        rows, where = _folder_rows(path)
    else:
        rows, where = _file_rows(path), path
    cases = _build_cases(rows, where)
    if not cases:
        raise DatasetError(f"{where} holds no prompts")
    return PromptSet(
        name=path.stem if path.is_file() else path.name,
        source=str(path),
        cases=cases,
        task=_set_task(cases, where),
    )


# --------------------------------------------------------------------------- rows


@dataclass
class _Row:
    """A raw row: its fields, the folder its image paths start from, and how to name it in errors."""

    fields: dict[str, Any]
    base: Path
    where: str
    index: int


def _file_rows(path: Path) -> list[_Row]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return list(_jsonl_rows(path))
    if suffix == ".json":
        return list(_json_rows(path))
    if suffix == ".csv":
        return list(_csv_rows(path))
    if suffix == ".parquet":
        return list(_parquet_rows(path))
    return list(_text_rows(path))


def read_dataset_text(path: Path) -> str:
    """A dataset file's text (UTF-8, a leading BOM dropped); a :class:`DatasetError` saying why not."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from None


def _jsonl_rows(path: Path, base: Path | None = None) -> Iterator[_Row]:
    for index, (lineno, value) in enumerate(read_jsonl(path)):
        where = f"{path}:{lineno}"
        yield _Row(_as_object(value, where), base or path.parent, where, index)


def _json_rows(path: Path) -> Iterator[_Row]:
    try:
        value = json.loads(read_dataset_text(path))
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(value, list):
        raise DatasetError(f"{path}: expected a JSON array of objects with a 'prompt' field")
    for index, item in enumerate(value):
        where = f"{path} item {index}"
        yield _Row(_as_object(item, where), path.parent, where, index)


def _as_object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise DatasetError(
            f"{where}: expected a JSON object with a 'prompt' field, got {type(value).__name__}"
        )
    return value


def _csv_rows(path: Path) -> Iterator[_Row]:
    text = read_dataset_text(path)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    if not any(name in header for name in _PROMPT_FIELDS):
        raise DatasetError(
            f"{path}: the header has no 'prompt' (or 'instruction') column; "
            f"it has {', '.join(header) or 'none'}"
        )
    for index, record in enumerate(reader):
        where = f"{path}:{reader.line_num}"
        if None in record:
            raise DatasetError(f"{where}: the row has more cells than the header has columns")
        fields: dict[str, Any] = {k: v for k, v in record.items() if v is not None and v != ""}
        if isinstance(fields.get("images"), str):
            fields["images"] = [p.strip() for p in fields["images"].split(";") if p.strip()]
        yield _Row(fields, path.parent, where, index)


def _parquet_rows(path: Path) -> Iterator[_Row]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DependencyError("pyarrow", "eval", "Reading Parquet prompt sets") from None
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise DatasetError(f"cannot read Parquet file {path}: {exc}") from None
    if not any(name in table.column_names for name in _PROMPT_FIELDS):
        raise DatasetError(
            f"{path}: no 'prompt' (or 'instruction') column; it has {', '.join(table.column_names)}"
        )
    for index, record in enumerate(table.to_pylist()):
        fields = {k: v for k, v in record.items() if v is not None}
        yield _Row(fields, path.parent, f"{path} row {index}", index)


def _text_rows(path: Path) -> Iterator[_Row]:
    index = 0
    for lineno, line in enumerate(read_dataset_text(path).splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        yield _Row({"prompt": text, "id": f"line-{lineno:04d}"}, path.parent, f"{path}:{lineno}", index)
        index += 1


def _folder_rows(folder: Path) -> tuple[list[_Row], Path]:
    manifest = folder / "cases.jsonl"
    if manifest.is_file():
        return list(_jsonl_rows(manifest, base=folder)), manifest
    rows: list[_Row] = []
    for index, sub in enumerate(sorted(p for p in folder.iterdir() if p.is_dir())):
        texts = [sub / name for name in ("instruction.txt", "prompt.txt") if (sub / name).is_file()]
        if not texts:
            raise DatasetError(f"{sub}: a case folder needs instruction.txt (or prompt.txt)")
        if len(texts) > 1:
            raise DatasetError(f"{sub}: has both instruction.txt and prompt.txt; keep one")
        images = sorted(
            p.name
            for p in sub.iterdir()
            if p.stem.startswith("source") and p.suffix.lower() in IMAGE_SUFFIXES
        )
        prompt = read_dataset_text(texts[0]).strip()
        fields: dict[str, Any] = {"id": sub.name, "prompt": prompt, "images": images}
        rows.append(_Row(fields, sub, str(sub), index))
    if not rows:
        raise DatasetError(
            f"{folder} is neither a folder of edit cases (cases.jsonl, or one subfolder per case with "
            "instruction.txt and source.png) nor a prompt file"
        )
    return rows, folder


# --------------------------------------------------------------------------- cases


def _build_cases(rows: Iterable[_Row], where: Path) -> tuple[BenchCase, ...]:
    cases: list[BenchCase] = []
    seen: dict[str, str] = {}
    for row in rows:
        case = _case(row)
        if case.id in seen:
            raise DatasetError(f"{row.where}: id {case.id!r} is used again (first at {seen[case.id]})")
        seen[case.id] = row.where
        cases.append(case)
    return tuple(cases)


def _case(row: _Row) -> BenchCase:
    fields = row.fields
    given = [name for name in _PROMPT_FIELDS if name in fields]
    if not given:
        raise DatasetError(
            f"{row.where}: field 'prompt' is missing (write the prompt as 'prompt' or 'instruction')"
        )
    if len(given) > 1:
        raise DatasetError(f"{row.where}: has both 'prompt' and 'instruction'; keep one")
    prompt = fields[given[0]]
    if not isinstance(prompt, str):
        raise DatasetError(f"{row.where}: field {given[0]!r} must be text, got {type(prompt).__name__}")
    prompt = " ".join(prompt.split())
    if not prompt:
        raise DatasetError(f"{row.where}: field {given[0]!r} is empty")
    too_long = prompt_too_long(prompt)
    if too_long is not None:
        raise DatasetError(f"{row.where}: field {given[0]!r} {too_long}")
    case_id = fields.get("id", f"p{row.index:04d}")
    if isinstance(case_id, bool) or not isinstance(case_id, str | int):
        raise DatasetError(f"{row.where}: field 'id' must be text or a number, got {type(case_id).__name__}")
    case_id = str(case_id).strip()
    if not case_id:
        raise DatasetError(f"{row.where}: field 'id' is empty")
    category = fields.get("category")
    if category is not None and not isinstance(category, str):
        raise DatasetError(f"{row.where}: field 'category' must be text, got {type(category).__name__}")
    sources = _sources(fields, row)
    meta = {k: v for k, v in fields.items() if k not in _KNOWN_FIELDS}
    return BenchCase(case_id, prompt, sources, category or None, row.index, _jsonable(meta, row.where))


def _sources(fields: Mapping[str, Any], row: _Row) -> tuple[ImageRef, ...]:
    if "image" in fields and "images" in fields:
        raise DatasetError(f"{row.where}: has both 'image' and 'images'; use one")
    if "image" in fields:
        values, name = [fields["image"]], "image"
    elif "images" in fields:
        value = fields["images"]
        if not isinstance(value, list | tuple):
            raise DatasetError(f"{row.where}: field 'images' must be a list of image paths")
        values, name = list(value), "images"
    else:
        return ()
    refs = []
    for i, value in enumerate(values):
        label = f"{row.where}: field {name!r}" + (f"[{i}]" if name == "images" else "")
        refs.append(_image_ref(value, label, row.base))
    return tuple(refs)


def _image_ref(value: Any, where: str, base: Path) -> ImageRef:
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise DatasetError(f"{where} is empty")
        path = Path(text).expanduser()
        resolved = path if path.is_absolute() else base / path
        if not resolved.is_file():
            raise DatasetError(f"{where}: image file {text!r} not found (looked in {base})")
        return ImageRef(str(resolved), where, (base,))
    if isinstance(value, dict) and (value.get("bytes") or value.get("path")):
        if not value.get("bytes"):
            return _image_ref(str(value["path"]), where, base)
        return ImageRef(value, where, (base,))
    if isinstance(value, bytes | bytearray) and value:
        return ImageRef(bytes(value), where, (base,))
    raise DatasetError(
        f"{where}: expected an image file path (or an embedded image record), got {type(value).__name__}"
    )


def _jsonable(meta: dict[str, Any], where: str) -> dict[str, Any]:
    try:
        json.dumps(meta)
    except (TypeError, ValueError):
        kept = {}
        for key, value in meta.items():
            try:
                json.dumps(value)
            except (TypeError, ValueError):
                # Binary or nested objects (Parquet): not carried into the JSON results.
                logger.debug("%s: field %r is not JSON data and is left out of the case's meta", where, key)
                continue
            kept[key] = value
        return kept
    return meta


def _set_task(cases: tuple[BenchCase, ...], where: Path) -> Task:
    edits = [c for c in cases if c.sources]
    if edits and len(edits) != len(cases):
        plain = next(c for c in cases if not c.sources)
        raise DatasetError(
            f"{where} mixes edit cases (with source images, e.g. id {edits[0].id!r}) and text-to-image "
            f"prompts (e.g. id {plain.id!r}); put them in separate prompt sets"
        )
    return Task.EDIT if edits else Task.T2I
