"""JSON Lines: strict reading of input files, and the resumable log gcr appends its results to.

Two kinds of JSONL file pass through gcr, and they are read by two rules.

**Input files** (prompt sets, datasets, preference sets) are written by people
or other tools. :func:`read_jsonl` reads them strictly: every line that is not
blank must be JSON; the first one that is not raises an error naming the file
and the line.

**Logs** (:class:`JsonlLog`) are written by gcr itself, one record per finished
piece of work, appended and flushed as each one finishes, so a killed process
loses only the work in flight. A process killed in the middle of a write may
leave the last line cut off. The one recovery rule:

* a line that ends with a newline must be a JSON object; one that is not is
  damage (not a cut-off write) and raises :class:`~gcr.errors.RunError` naming
  the file and line, with what to do: delete that line, and its work is done
  again;
* the last line, when it has no newline, is the write a killed process left:
  if it is a whole JSON object it is kept (only the newline was lost), else it
  is dropped. Reading never changes the file (other processes may be reading or
  writing it); the first append of a writer repairs it: it adds the missing
  newline, or truncates the cut-off line away with a logged warning;
* blank lines are skipped; a line longer than ``max_line_bytes`` is an error
  (gcr never writes one), so a crafted file cannot make a reader hold an
  unbounded line in memory.

An append is one ``write`` of the whole line to a file opened with
``O_APPEND``, so appends from several threads or processes to one log do not
interleave on a local file system. Records are plain JSON: nothing read back
is ever turned into code.
"""

from __future__ import annotations

import io
import json
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from gcr.errors import DatasetError, GCRError, RunError
from gcr.io.atomic import atomic_file

__all__ = ["MAX_LINE_BYTES", "JsonlLog", "dump_line", "json_lines", "parse_json_line", "read_jsonl"]

logger = logging.getLogger(__name__)

#: The longest line gcr reads from a JSONL file (input or log). Records gcr writes are a few
#: kilobytes; a dataset row may embed a base64 image of some megabytes.
MAX_LINE_BYTES = 64 * 1024 * 1024

_CHUNK = 1 << 16


def parse_json_line(text: str) -> Any:
    """The JSON value of one line, or :class:`ValueError` with a readable reason."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None


def dump_line(record: Any, *, default: Callable[[Any], Any] | None = None) -> str:
    """One record as a JSONL line (non-ASCII kept, newline included)."""
    return json.dumps(record, ensure_ascii=False, default=default) + "\n"


def json_lines(
    path: str | Path, *, max_line_bytes: int = MAX_LINE_BYTES, error: type[GCRError] = DatasetError
) -> Iterator[tuple[int, str]]:
    """The non-blank lines of a text file with their 1-based numbers, read one at a time.

    A leading byte order mark is dropped. A line over ``max_line_bytes`` or one that
    is not UTF-8 raises ``error`` naming the file and line; so does an unreadable file.
    """
    file = Path(path)
    try:
        fh = file.open("rb")
    except OSError as exc:
        raise error(f"cannot read {file}: {exc}") from None
    with fh:
        number = 0
        while True:
            raw = fh.readline(max_line_bytes + 1)
            if not raw:
                return
            number += 1
            if len(raw) > max_line_bytes and not raw.endswith(b"\n"):
                raise error(f"{file}:{number}: the line is longer than {max_line_bytes} bytes")
            if number == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise error(f"{file}:{number}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
            if text.strip():
                yield number, text


def read_jsonl(
    path: str | Path, *, max_line_bytes: int = MAX_LINE_BYTES, error: type[GCRError] = DatasetError
) -> Iterator[tuple[int, Any]]:
    """The JSON value of every non-blank line of an input file, with its line number.

    Strict: the first line that is not JSON raises ``error`` as ``FILE:LINE: not valid JSON (...)``.
    Values are returned as parsed; callers check that they are the objects they expect.
    """
    for number, text in json_lines(path, max_line_bytes=max_line_bytes, error=error):
        try:
            yield number, parse_json_line(text)
        except ValueError as exc:
            raise error(f"{path}:{number}: {exc}") from None


class JsonlLog:
    """An append-only JSONL file of records (JSON objects) with the recovery rule of this module.

    Reading (:meth:`records`) never changes the file. The first :meth:`append`
    repairs a cut-off last line, then keeps the file open; :meth:`rewrite`
    replaces the whole file atomically and durably. ``default`` converts values
    JSON has no type for when appending (e.g. ``str``); ``durable`` fsyncs after
    every append (a power cut, not only a killed process, keeps each record).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        max_line_bytes: int = MAX_LINE_BYTES,
        durable: bool = False,
        default: Callable[[Any], Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self.max_line_bytes = max_line_bytes
        self.durable = durable
        self.default = default
        self._fh: io.FileIO | None = None
        self._lock = threading.Lock()
        self._noted_tail: int | None = None

    def __repr__(self) -> str:
        return f"JsonlLog({str(self.path)!r})"

    # ------------------------------------------------------------------ reading

    def numbered(self) -> list[tuple[int, dict[str, Any]]]:
        """Every record with its line number, in file order (an empty list when there is no file)."""
        try:
            fh = self.path.open("rb")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise RunError(f"cannot read {self.path}: {exc}") from None
        out: list[tuple[int, dict[str, Any]]] = []
        with fh:
            number = 0
            while True:
                start = fh.tell()
                raw = fh.readline(self.max_line_bytes + 1)
                if not raw:
                    break
                number += 1
                complete = raw.endswith(b"\n")
                if not complete and len(raw) > self.max_line_bytes:
                    raise self._damage(number, f"longer than {self.max_line_bytes} bytes")
                try:
                    record = _parse_record(raw)
                except ValueError as exc:
                    if complete:
                        raise self._damage(number, str(exc)) from None
                    self._note_cut_off(number, start)
                    break
                if record is not None:
                    out.append((number, record))
        return out

    def records(self) -> list[dict[str, Any]]:
        """Every record in file order."""
        return [record for _, record in self.numbered()]

    def _damage(self, number: int, why: str) -> RunError:
        return RunError(
            f"{self.path} line {number} is damaged ({why}); delete that line (its work is done again) "
            "or start in another folder"
        )

    def _note_cut_off(self, number: int, offset: int) -> None:
        if self._noted_tail != offset:  # once per reader, not on every re-read
            self._noted_tail = offset
            logger.info("%s: ignoring line %d, a write cut off (or still in progress)", self.path, number)

    # ------------------------------------------------------------------ writing

    def append(self, record: dict[str, Any]) -> None:
        """Append one record as one line and flush it (to disk as well when ``durable``)."""
        data = dump_line(record, default=self.default).encode("utf-8")
        if len(data) > self.max_line_bytes:
            raise RunError(
                f"a record for {self.path} is {len(data)} bytes, "
                f"over the {self.max_line_bytes} a line may hold"
            )
        with self._lock:
            fh = self._open()
            view = memoryview(data)
            while view:
                view = view[fh.write(view) or 0 :]
            if self.durable:
                os.fsync(fh.fileno())

    def rewrite(self, records: Iterable[dict[str, Any]]) -> None:
        """Replace the whole file with ``records`` atomically and durably (compaction)."""
        with self._lock:
            self._close()
            with atomic_file(self.path, "wb", durable=True) as fh:
                for record in records:
                    fh.write(dump_line(record, default=self.default).encode("utf-8"))

    def close(self) -> None:
        with self._lock:
            self._close()

    def __enter__(self) -> JsonlLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def _open(self) -> io.FileIO:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.is_file():
                self._repair_tail()
            # Unbuffered and O_APPEND: each record is one write() at the end of the file.
            self._fh = io.FileIO(self.path, "a")
        return self._fh

    def _repair_tail(self) -> None:
        """Give a last line without a newline its newline (a whole record) or cut it off (a torn write)."""
        with self.path.open("r+b") as fh:
            size = fh.seek(0, os.SEEK_END)
            if size == 0:
                return
            fh.seek(size - 1)
            if fh.read(1) == b"\n":
                return
            start = _last_line_start(fh, size, self.max_line_bytes)
            if start is None:
                raise RunError(
                    f"{self.path} ends with a line longer than {self.max_line_bytes} bytes; "
                    "it was not written by gcr: delete it or start in another folder"
                )
            fh.seek(start)
            tail = fh.read(size - start)
            try:
                whole = _parse_record(tail) is not None
            except ValueError:
                whole = False
            if whole:
                fh.seek(size)
                fh.write(b"\n")
                return
            if tail.strip():
                logger.warning(
                    "%s: dropping its last line (%d bytes), a write cut off when a process stopped",
                    self.path, size - start,
                )
            fh.truncate(start)


def _parse_record(raw: bytes) -> dict[str, Any] | None:
    """The record of one raw line; None for a blank line; ValueError when it is not a JSON object."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not text.strip():
        return None
    value = parse_json_line(text)
    if not isinstance(value, dict):
        raise ValueError(f"a JSON {type(value).__name__}, not a record object")
    return value


def _last_line_start(fh: Any, size: int, limit: int) -> int | None:
    """The offset just after the last newline before ``size`` (0 if none); None when that line is too long."""
    end = size
    while end > 0:
        begin = max(0, end - _CHUNK)
        fh.seek(begin)
        chunk = fh.read(end - begin)
        cut = chunk.rfind(b"\n")
        if cut >= 0:
            start = begin + cut + 1
            return start if size - start <= limit else None
        if size - begin > limit:
            return None
        end = begin
    return 0 if size <= limit else None
