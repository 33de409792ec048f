"""Reading preference benchmarks from local files, with the layout detected or given.

Accepted inputs (``open_dataset(path)``):

* a Parquet file, or a folder of Parquet shards (searched recursively, as a
  Hugging Face dataset repository stores them: ``data/train-00000-of-00002.parquet``
  or ``2pair/train-00000-of-00001.parquet``); ``split`` keeps the shards whose
  file name starts with it;
* a folder written by ``datasets``' ``save_to_disk`` (a ``Dataset``, or a
  ``DatasetDict`` whose split is chosen with ``split`` when it has several);
* a JSON Lines file (or a folder of them), a JSON array of rows, or the MMRB2
  release JSON (``{"pairs": [...]}``), flattened into the MMRB2 layout.

Images may be embedded (Hugging Face ``Image`` records ``{"bytes", "path"}``,
raw bytes, base64 text, ``data:`` URLs) or be file paths relative to the file's
folder or to the dataset root. Rows are streamed: only a batch is in memory.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gcr.bench.eval.fields import mmrb2_release_rows
from gcr.bench.eval.layouts import LAYOUTS, Layout, has_images, matching_families
from gcr.bench.eval.pairs import Label, PreferencePair
from gcr.errors import DatasetError, DependencyError, InputError
from gcr.io import read_jsonl

logger = logging.getLogger(__name__)

_BATCH_ROWS = 32


class _Source(ABC):
    """Rows of one dataset, streamed, each with the folder its relative paths start from."""

    columns: list[str]
    num_rows: int

    @abstractmethod
    def rows(self, columns: Sequence[str] | None = None) -> Iterator[tuple[dict[str, Any], Path]]:
        """Yield ``(row, base folder)`` pairs, reading only ``columns`` when given."""


def _pyarrow_parquet() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DependencyError("pyarrow", "eval", "Reading Parquet benchmarks") from None
    return pq


class _ParquetSource(_Source):
    def __init__(self, files: Sequence[Path]) -> None:
        pq = _pyarrow_parquet()
        self.files = list(files)
        self.num_rows = 0
        first: list[str] | None = None
        for f in self.files:
            try:
                meta = pq.ParquetFile(f)
            except Exception as exc:  # pyarrow raises several unrelated types for a bad file
                raise DatasetError(f"cannot read Parquet file {f}: {exc}") from None
            names = list(meta.schema_arrow.names)
            if first is None:
                first = names
            elif set(names) != set(first):
                raise DatasetError(
                    f"Parquet shards disagree on their columns: {self.files[0].name} has {sorted(first)},"
                    f" {f.name} has {sorted(names)}; pass one split or file"
                )
            self.num_rows += meta.metadata.num_rows
        self.columns = first or []

    def rows(self, columns: Sequence[str] | None = None) -> Iterator[tuple[dict[str, Any], Path]]:
        pq = _pyarrow_parquet()
        wanted = None if columns is None else [c for c in self.columns if c in set(columns)]
        for f in self.files:
            pf = pq.ParquetFile(f)
            for batch in pf.iter_batches(batch_size=_BATCH_ROWS, columns=wanted):
                for row in batch.to_pylist():
                    yield row, f.parent


class _ArrowDiskSource(_Source):
    """A folder written by ``Dataset.save_to_disk`` (or one split of a ``DatasetDict``)."""

    def __init__(self, folder: Path, split: str | None) -> None:
        try:
            import datasets
        except ImportError:
            raise DependencyError("datasets", "eval", "Reading datasets saved with save_to_disk") from None
        try:
            loaded = datasets.load_from_disk(str(folder))
        except Exception as exc:  # datasets raises FileNotFoundError, ValueError, JSON errors...
            raise DatasetError(f"cannot load the dataset folder {folder}: {exc}") from None
        if isinstance(loaded, datasets.DatasetDict):
            splits = list(loaded.keys())
            if split is None:
                if len(splits) != 1:
                    names = ", ".join(splits)
                    raise InputError(f"{folder} holds the splits {names}: choose one with --split")
                split = splits[0]
            if split not in loaded:
                raise InputError(f"{folder} has no split {split!r}; it has {', '.join(splits)}")
            loaded = loaded[split]
        elif split is not None:
            raise InputError(f"{folder} is a single dataset without splits; drop --split")
        # The arrow format hands out the stored records ({"bytes", "path"} for images) undecoded.
        self.dataset = loaded.with_format("arrow")
        self.folder = folder
        self.columns = list(loaded.column_names)
        self.num_rows = len(loaded)

    def rows(self, columns: Sequence[str] | None = None) -> Iterator[tuple[dict[str, Any], Path]]:
        ds = self.dataset
        if columns is not None:
            ds = ds.select_columns([c for c in self.columns if c in set(columns)])
        for table in ds.iter(batch_size=_BATCH_ROWS):
            for row in table.to_pylist():
                yield row, self.folder


class _JsonSource(_Source):
    def __init__(self, files: Sequence[Path]) -> None:
        self.files = list(files)
        self._cache: dict[Path, list[dict[str, Any]]] = {}
        self.num_rows = 0
        columns: dict[str, None] = {}
        for f in self.files:
            count = 0
            for row in self._read(f):
                count += 1
                if len(columns) < 512:
                    columns.update(dict.fromkeys(row))
            self.num_rows += count
        self.columns = list(columns)

    def _read(self, path: Path) -> Iterator[dict[str, Any]]:
        if path.suffix == ".json":
            if path not in self._cache:
                self._cache[path] = self._read_json(path)
            yield from self._cache[path]
            return
        for lineno, row in read_jsonl(path):
            if not isinstance(row, dict):
                raise DatasetError(f"{path}:{lineno}: each line must be a JSON object")
            yield row

    @staticmethod
    def _read_json(path: Path) -> list[dict[str, Any]]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        release = mmrb2_release_rows(data)
        if release is not None:
            return release
        if isinstance(data, list) and all(isinstance(r, dict) for r in data):
            return data
        raise DatasetError(f"{path}: expected a JSON array of row objects or an MMRB2 file with 'pairs'")

    def rows(self, columns: Sequence[str] | None = None) -> Iterator[tuple[dict[str, Any], Path]]:
        for f in self.files:
            for row in self._read(f):
                yield row, f.parent


def _shards(folder: Path, suffixes: tuple[str, ...], split: str | None) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in suffixes)
    files = [p for p in files if not any(part.startswith(".") for part in p.relative_to(folder).parts)]
    if split is not None:
        files = [p for p in files if p.name.startswith(f"{split}-") or p.name.startswith(f"{split}.")]
    return files


def _open_source(path: Path, split: str | None) -> _Source:
    if not path.exists():
        raise InputError(f"dataset not found: {path}")
    if path.is_file():
        if split is not None:
            raise InputError("--split applies to dataset folders, not to a single file")
        if path.suffix == ".parquet":
            return _ParquetSource([path])
        if path.suffix in (".jsonl", ".json"):
            return _JsonSource([path])
        raise InputError(f"unsupported dataset file {path.name}: use .parquet, .jsonl or .json")
    if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
        return _ArrowDiskSource(path, split)
    parquet = _shards(path, (".parquet",), split)
    if parquet:
        return _ParquetSource(parquet)
    jsonl = _shards(path, (".jsonl",), split)
    if jsonl:
        return _JsonSource(jsonl)
    where = f" for split {split!r}" if split else ""
    raise InputError(
        f"{path} holds no dataset{where}: expected Parquet shards, JSON Lines files,"
        " or a folder written by datasets' save_to_disk"
    )


@dataclass(frozen=True)
class PairKey:
    """What a cheap scan learns about a row without touching its images."""

    id: str
    label: Label
    category: str | None
    row: int


@dataclass
class EvalDataset:
    """A benchmark on disk read through one :class:`Layout`."""

    path: Path
    layout: Layout
    source: _Source = field(repr=False)
    detected: bool = True

    @property
    def name(self) -> str:
        return self.path.name if self.path.is_dir() else self.path.stem

    def __len__(self) -> int:
        return self.source.num_rows

    def _rows(
        self, columns: Sequence[str] | None, limit: int | None
    ) -> Iterator[tuple[int, str, dict[str, Any], Path]]:
        seen: dict[str, int] = {}
        for index, (row, base) in enumerate(self.source.rows(columns)):
            if limit is not None and index >= limit:
                return
            raw_id = self.layout.row_id(row)
            pair_id = raw_id if raw_id is not None else f"row-{index:06d}"
            # Duplicate ids get a stable suffix so that every row has its own resumable record.
            count = seen.get(pair_id, 0)
            seen[pair_id] = count + 1
            if count:
                pair_id = f"{pair_id}#{count}"
            yield index, pair_id, row, base

    def scan(self, limit: int | None = None) -> Iterator[PairKey]:
        """Ids, labels and categories of the first ``limit`` rows, reading no image columns."""
        for index, pair_id, row, _ in self._rows(self.layout.key_columns, limit):
            label = self.layout.read_label(row.get(self.layout.label), row)
            yield PairKey(pair_id, label, self.layout.category(row), index)

    def pairs(self, limit: int | None = None) -> Iterator[PreferencePair]:
        """The first ``limit`` rows as pairs, in file order; images stay encoded until loaded."""
        root = self.path if self.path.is_dir() else self.path.parent
        for index, pair_id, row, base in self._rows(None, limit):
            bases = (base,) if base == root else (base, root)
            yield self.layout.read(row, pair_id=pair_id, index=index, base_dirs=bases)


def _detect(source: _Source, path: Path) -> Layout:
    families = matching_families(source.columns)
    if not families:
        wanted = "; ".join(f"{name}: {', '.join(lay.required_columns)}" for name, lay in LAYOUTS.items())
        shown = ", ".join(source.columns[:20]) or "none"
        raise DatasetError(
            f"cannot tell which benchmark {path} is: its columns are {shown}. Known layouts need {wanted}."
            " Rename the columns or pass --layout"
        )
    if len(families) > 1:
        raise DatasetError(f"{path} matches several layouts ({', '.join(families)}): pass --layout")
    family = families[0]
    if family != "mmrb2":
        return LAYOUTS[family]
    # MMRB2 t2i and edit share columns: an edit row carries its input image(s) in prompt_images.
    first = next(iter(source.rows(["prompt_images"])), None)
    is_edit = first is not None and has_images(first[0].get("prompt_images"))
    return LAYOUTS["mmrb2-edit" if is_edit else "mmrb2-t2i"]


def open_dataset(path: str | Path, *, layout: str | None = None, split: str | None = None) -> EvalDataset:
    """Open a local benchmark; ``layout`` (a key of :data:`LAYOUTS`) overrides detection."""
    p = Path(path).expanduser()
    source = _open_source(p, split)
    if source.num_rows == 0:
        raise DatasetError(f"{p} has no rows")
    if layout is None:
        chosen = _detect(source, p)
        logger.info("detected layout %s for %s", chosen.name, p)
        return EvalDataset(p, chosen, source, detected=True)
    if layout not in LAYOUTS:
        raise InputError(f"unknown layout {layout!r}: use one of {', '.join(LAYOUTS)}")
    chosen = LAYOUTS[layout]
    missing = chosen.missing_columns(source.columns)
    if missing:
        raise DatasetError(
            f"{p} lacks the column(s) {', '.join(missing)} that layout {layout} needs;"
            f" its columns are {', '.join(source.columns[:20])}"
        )
    return EvalDataset(p, chosen, source, detected=False)


def open_row_source(path: Path, split: str | None = None) -> _Source:
    """The streamed rows of a local dataset (file, Parquet shards, save_to_disk folder), no layout applied;
    the standard-benchmark readers of :mod:`gcr.benchmarks` read through it."""
    return _open_source(path, split)
