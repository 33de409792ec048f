"""What every benchmark reader shares: the set it returns, lazy images, and row sources.

A reader turns a benchmark's published files into a :class:`BenchmarkSet`, a
:class:`~gcr.bench.prompt_set.PromptSet` that ``gcr bench`` runs like any other,
whose cases carry the benchmark's own fields in ``meta`` (always with
``meta["benchmark"]`` naming the reader) so the exporters can write each
result back under the name the official evaluator expects.

Rows are streamed: Hugging Face datasets (Parquet shards, ``save_to_disk``
folders) are read through the row sources of ``gcr eval``
(:mod:`gcr.bench.eval.datasets`) with only the text columns; their images stay
in the files and are read one row at a time when a case is actually run
(:class:`RowImage`), so a benchmark of a thousand edits never sits in memory.
"""

from __future__ import annotations

import csv
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gcr.bench.eval.pairs import ImageRef
from gcr.bench.prompt_files import read_dataset_text
from gcr.bench.prompt_set import BenchCase, PromptSet
from gcr.errors import DatasetError, GCRError
from gcr.task import Task

logger = logging.getLogger(__name__)

#: Parquet row groups (one image column each) kept in memory while a benchmark runs.
_CACHED_GROUPS = 4


@dataclass(frozen=True)
class BenchmarkSet(PromptSet):
    """A prompt set read from a standard benchmark.

    ``benchmark`` is the reader's name (``geneval``, ``gedit``...). ``extras``
    holds, per case id, images the exporter needs but the generator must not
    see (GEdit-Bench's ``input_image``, written as ``<key>_SRCIMG.png``).
    """

    benchmark: str = ""
    extras: dict[str, dict[str, ImageRef]] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, eq=False)
class RowImage(ImageRef):
    """An image that stays in its dataset file until it is loaded.

    ``value`` is a locator text (file, row, column): it is what the set's digest
    sees, so a moved dataset is a different set, as for image paths. ``fetch``
    reads the stored value (an image record or bytes) when the image is needed.
    """

    fetch: Callable[[], Any] | None = None

    def _encoded(self) -> Any:
        if self.fetch is None:
            raise DatasetError(f"{self.where}: the image has no reader")
        return ImageRef(self.fetch(), self.where, self.base_dirs)._encoded()


def require_file(path: Path, what: str) -> Path:
    """``path`` when it is a file, else a :class:`DatasetError` saying which file is missing."""
    if not path.is_file():
        raise DatasetError(f"{what}: file {path} not found")
    return path


def require_columns(columns: Sequence[str], needed: Sequence[str], where: str, benchmark: str) -> None:
    """Raise a :class:`DatasetError` naming the columns of ``needed`` that ``columns`` lacks."""
    missing = [c for c in needed if c not in columns]
    if missing:
        shown = ", ".join(columns[:30]) or "none"
        raise DatasetError(
            f"{where} is not in the {benchmark} layout: column(s) {', '.join(missing)} missing"
            f" (it has {shown})"
        )


def text_field(row: dict[str, Any], name: str, where: str) -> str:
    """A required text field of a row, stripped; a :class:`DatasetError` naming it otherwise."""
    value = row.get(name)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if value is None or (isinstance(value, str) and not value.strip()):
        raise DatasetError(f"{where}: field {name!r} is missing or empty")
    if not isinstance(value, str | int):
        raise DatasetError(f"{where}: field {name!r} must be text, got {type(value).__name__}")
    return str(value).strip()


def csv_rows(path: Path, needed: Sequence[str], benchmark: str) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line number, row)`` of a CSV file, streamed; the header must hold ``needed``."""
    try:
        handle = path.open("r", encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from None
    with handle:
        reader = csv.DictReader(handle)
        try:
            header = list(reader.fieldnames or [])
            require_columns(header, needed, str(path), benchmark)
            for record in reader:
                if None in record:
                    raise DatasetError(f"{path}:{reader.line_num}: the row has more cells than the header")
                yield reader.line_num, {k: v for k, v in record.items() if v is not None}
        except (csv.Error, UnicodeDecodeError) as exc:
            raise DatasetError(f"{path}:{reader.line_num}: unreadable CSV ({exc})") from None


def build_set(
    benchmark: str,
    name: str,
    source: Path,
    cases: Sequence[BenchCase],
    task: Task,
    extras: dict[str, dict[str, ImageRef]] | None = None,
) -> BenchmarkSet:
    """The finished set; refuses an empty one and repeated ids."""
    if not cases:
        raise DatasetError(f"{source} holds no {benchmark} items")
    seen: set[str] = set()
    for case in cases:
        if case.id in seen:
            raise DatasetError(f"{source}: item id {case.id!r} appears twice")
        seen.add(case.id)
    return BenchmarkSet(
        name=name,
        source=f"{benchmark}:{source}",
        cases=tuple(cases),
        task=task,
        benchmark=benchmark,
        extras=extras or {},
    )


# --------------------------------------------------------------------------- Hugging Face rows


class HFRows:
    """A Hugging Face dataset on disk (Parquet shards or a ``save_to_disk`` folder), read by row.

    Reuses ``gcr eval``'s row sources; :meth:`image` makes a :class:`RowImage`
    that reads one column of one row when it is loaded.
    """

    def __init__(self, path: Path, split: str | None, benchmark: str) -> None:
        from gcr.bench.eval.datasets import open_row_source

        if not path.exists():
            raise DatasetError(f"{benchmark}: dataset {path} not found")
        try:
            self.source = open_row_source(path, split)
        except DatasetError:
            raise
        except GCRError as exc:  # "holds no dataset", bad split: a dataset problem here
            raise DatasetError(f"{benchmark}: {exc}") from None
        self.path = path
        self.benchmark = benchmark
        self.columns = list(self.source.columns)
        self._offsets: list[tuple[int, int, Path]] | None = None
        self._lock = threading.Lock()
        self._groups: OrderedDict[tuple[Path, int, str], Any] = OrderedDict()

    def rows(self, columns: Sequence[str]) -> Iterator[tuple[int, dict[str, Any]]]:
        for index, (row, _) in enumerate(self.source.rows(columns)):
            yield index, row

    def image(self, index: int, column: str, where: str) -> ImageRef:
        locator = f"{self.path}#row={index}&column={column}"
        base = self.path if self.path.is_dir() else self.path.parent
        return RowImage(locator, where, (base,), fetch=lambda: self._fetch(index, column))

    def _fetch(self, index: int, column: str) -> Any:
        from gcr.bench.eval.datasets import _ArrowDiskSource, _ParquetSource

        source = self.source
        if isinstance(source, _ArrowDiskSource):
            table = source.dataset.select_columns([column])[index]
            return table.column(column)[0].as_py()
        if isinstance(source, _ParquetSource):
            with self._lock:  # source images are read from worker threads
                for start, rows, file in self._file_offsets():
                    if index < start + rows:
                        return _parquet_cell(file, index - start, column, self._groups)
            raise DatasetError(f"{self.path}: row {index} is past the end of the dataset")
        for i, (row, base) in enumerate(source.rows([column])):
            if i == index:
                value = row.get(column)
                if isinstance(value, str):
                    return str(base / value) if not Path(value).is_absolute() else value
                return value
        raise DatasetError(f"{self.path}: row {index} is past the end of the dataset")

    def _file_offsets(self) -> list[tuple[int, int, Path]]:
        """``(first row, rows, file)`` of each Parquet shard, in reading order."""
        if self._offsets is None:
            import pyarrow.parquet as pq

            offsets, start = [], 0
            for file in self.source.files:  # type: ignore[attr-defined]
                rows = pq.ParquetFile(file).metadata.num_rows
                offsets.append((start, rows, file))
                start += rows
            self._offsets = offsets
        return self._offsets


def _parquet_cell(file: Path, row: int, column: str, cache: OrderedDict[tuple[Path, int, str], Any]) -> Any:
    """One cell of a Parquet file. Parquet reads whole row groups, so the last few groups read are kept:
    cases run in file order, and consecutive rows share a group."""
    import pyarrow.parquet as pq

    handle = pq.ParquetFile(file)
    for group in range(handle.num_row_groups):
        size = handle.metadata.row_group(group).num_rows
        if row < size:
            key = (file, group, column)
            table = cache.get(key)
            if table is None:
                table = handle.read_row_group(group, columns=[column])
                cache[key] = table
                while len(cache) > _CACHED_GROUPS:
                    cache.popitem(last=False)
            else:
                cache.move_to_end(key)
            return table.column(column)[row].as_py()
        row -= size
    raise DatasetError(f"{file}: row {row} not found")


__all__ = [
    "BenchmarkSet",
    "HFRows",
    "RowImage",
    "build_set",
    "csv_rows",
    "read_dataset_text",
    "require_columns",
    "require_file",
    "text_field",
]
