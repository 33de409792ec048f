"""Reading rows and images out of the files people download preference data in.

Rows come from Parquet files (the Hugging Face layout, images stored as
``{"bytes": ..., "path": ...}`` structs), JSON Lines, a JSON list, or the MMRB2
release JSON (``{"pairs": [...]}``, flattened as ``gcr eval`` flattens it); a folder
means every Parquet file in it (or, without any, every JSONL/JSON file), in name
order. An image may be given as such a struct, raw bytes, a PIL image, a
``data:`` URL, or a path relative to the file that names it. :class:`ImageStore`
decodes each one (so broken images are caught at import time) and writes it
into the preference set's ``images/`` folder.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from gcr.bench.eval.fields import mmrb2_release_rows
from gcr.errors import DatasetError, DependencyError
from gcr.io import json_lines, parse_json_line
from gcr.training.parrot.data import IMAGES_DIR

_ROW_FILE_SUFFIXES = (".parquet", ".jsonl", ".json")
_FORMAT_EXT = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp", "TIFF": ".tif"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class RowError(ValueError):
    """A source row cannot be turned into a preference item; the message says why."""


@dataclass(frozen=True)
class SourceRow:
    """One row of a source file, with where it came from (for problem reports and relative paths)."""

    file: Path
    number: int
    data: dict[str, Any]

    @property
    def where(self) -> str:
        return f"{self.file.name}:{self.number}"


def source_files(source: str | Path) -> list[Path]:
    """The files a source path stands for (see the module docstring)."""
    p = Path(source).expanduser()
    if p.is_file():
        if p.suffix.lower() not in _ROW_FILE_SUFFIXES:
            raise DatasetError(f"cannot read {p}: use a .parquet, .jsonl or .json file, or a folder of them")
        return [p]
    if p.is_dir():
        parquet = sorted(p.glob("*.parquet"))
        if parquet:
            return parquet
        files = sorted([*p.glob("*.jsonl"), *p.glob("*.json")])
        if files:
            return files
        raise DatasetError(f"no .parquet, .jsonl or .json files in {p}")
    raise DatasetError(f"source not found: {p}")


def iter_rows(source: str | Path) -> Iterator[SourceRow | tuple[Path, int, str]]:
    """Yield each row as a :class:`SourceRow`, or ``(file, number, reason)`` for an unreadable one."""
    for file in source_files(source):
        suffix = file.suffix.lower()
        if suffix == ".parquet":
            yield from _parquet_rows(file)
        elif suffix == ".jsonl":
            yield from _jsonl_rows(file)
        else:
            yield from _json_rows(file)


def _parquet_rows(file: Path) -> Iterator[SourceRow]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DependencyError("pyarrow", "train", "Reading Parquet preference data") from None

    try:
        parquet = pq.ParquetFile(file)
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise DatasetError(f"cannot read Parquet file {file}: {exc}") from None
    number = 0
    for batch in parquet.iter_batches(batch_size=64):
        for data in batch.to_pylist():
            number += 1
            yield SourceRow(file, number, data)


def _jsonl_rows(file: Path) -> Iterator[SourceRow | tuple[Path, int, str]]:
    for number, line in json_lines(file):
        try:
            data = parse_json_line(line)
        except ValueError as exc:
            yield (file, number, str(exc))
            continue
        if not isinstance(data, dict):
            yield (file, number, f"expected a JSON object, got {type(data).__name__}")
            continue
        yield SourceRow(file, number, data)


def _json_rows(file: Path) -> Iterator[SourceRow | tuple[Path, int, str]]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{file} is not valid JSON ({exc.msg}, line {exc.lineno})") from None
    release = mmrb2_release_rows(data)
    if release is not None:
        data = release
    elif isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise DatasetError(f"{file} must hold a JSON list of rows, or be an MMRB2 release file with 'pairs'")
    for number, row in enumerate(data, start=1):
        if isinstance(row, dict):
            yield SourceRow(file, number, row)
        else:
            yield (file, number, f"expected a JSON object, got {type(row).__name__}")


def safe_name(item_id: str) -> str:
    """A file-name-safe form of ``item_id`` that stays unique (a short hash is appended when changed)."""
    cleaned = _UNSAFE.sub("_", item_id).strip("._")[:60] or "item"
    if cleaned == item_id:
        return cleaned
    return f"{cleaned}-{hashlib.sha256(item_id.encode()).hexdigest()[:8]}"


class ImageStore:
    """Decodes image references and writes them under ``<set>/images/`` as files."""

    def __init__(self, set_root: Path) -> None:
        self.root = set_root
        self.folder = set_root / IMAGES_DIR
        self.folder.mkdir(parents=True, exist_ok=True)

    def store(self, ref: object, row: SourceRow, stem: str) -> str:
        """Save ``ref`` as ``images/<stem>.<ext>``; return the path relative to the set root."""
        if ref is None or (isinstance(ref, (str, bytes, list, dict)) and not ref):
            raise RowError("image is missing")
        if isinstance(ref, Image.Image):
            return self._write_pil(ref, stem)
        if isinstance(ref, dict):
            data = ref.get("bytes")
            if data:
                return self._write_bytes(_as_bytes(data), stem)
            path = ref.get("path")
            if path:
                return self._copy(self._resolve(str(path), row), stem)
            raise RowError("image struct has neither bytes nor a path")
        if isinstance(ref, (bytes, bytearray, memoryview)):
            return self._write_bytes(bytes(ref), stem)
        if isinstance(ref, str):
            if ref.startswith("data:"):
                return self._write_bytes(_decode_data_url(ref), stem)
            return self._copy(self._resolve(ref, row), stem)
        raise RowError(f"unsupported image value of type {type(ref).__name__}")

    def _resolve(self, path: str, row: SourceRow) -> Path:
        p = Path(path).expanduser()
        if not p.is_absolute():
            p = row.file.parent / p
        if not p.is_file():
            raise RowError(f"image file not found: {p}")
        return p

    def _write_pil(self, image: Image.Image, stem: str) -> str:
        rel = f"{IMAGES_DIR}/{stem}.png"
        image.save(self.root / rel, format="PNG")
        return rel

    def _write_bytes(self, data: bytes, stem: str) -> str:
        ext = _check_decodes(io.BytesIO(data), stem)
        rel = f"{IMAGES_DIR}/{stem}{ext}"
        (self.root / rel).write_bytes(data)
        return rel

    def _copy(self, src: Path, stem: str) -> str:
        with src.open("rb") as fh:
            ext = _check_decodes(fh, str(src))
        rel = f"{IMAGES_DIR}/{stem}{ext}"
        shutil.copyfile(src, self.root / rel)
        return rel


def _check_decodes(stream: io.IOBase | Any, what: str) -> str:
    """Fully decode the image in ``stream``; return the file extension of its format."""
    try:
        with Image.open(stream) as img:
            fmt = img.format or "PNG"
            img.load()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise RowError(f"image {what} does not decode: {exc}") from None
    return _FORMAT_EXT.get(fmt.upper(), ".png")


def _as_bytes(data: object) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if isinstance(data, str):
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise RowError("image bytes given as text are not base64") from None
    raise RowError(f"image bytes of unsupported type {type(data).__name__}")


def _decode_data_url(url: str) -> bytes:
    head, _, payload = url.partition(",")
    if ";base64" not in head or not payload:
        raise RowError("only base64 data: URLs are supported for images")
    return _as_bytes(payload)
