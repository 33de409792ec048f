"""gcr's one I/O layer: atomic file writes and the JSON Lines files results are kept in.

* :mod:`gcr.io.atomic`: :func:`write_text_atomic`, :func:`write_json_atomic`,
  :func:`write_bytes_atomic`, :func:`copy_file_atomic` and :func:`atomic_file`
  (temporary file in the same folder, then :func:`os.replace`; ``durable=True``
  adds ``fsync``).
* :mod:`gcr.io.jsonl`: :func:`read_jsonl` for input files (strict: a bad line is
  an error naming file and line) and :class:`JsonlLog`, the append-only log with
  the one recovery rule for a line cut off by a killed process (see there and
  ``docs/io.md``).
* :mod:`gcr.io.result_store`: :class:`ResultStore` and :func:`read_results`, the
  per-item result files of ``gcr bench``, ``gcr eval`` and the benchmark scorers.
"""

from gcr.io.atomic import (
    atomic_file,
    copy_file_atomic,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)
from gcr.io.jsonl import MAX_LINE_BYTES, JsonlLog, dump_line, json_lines, parse_json_line, read_jsonl
from gcr.io.result_store import ResultStore, read_results

__all__ = [
    "MAX_LINE_BYTES",
    "JsonlLog",
    "ResultStore",
    "atomic_file",
    "copy_file_atomic",
    "dump_line",
    "json_lines",
    "parse_json_line",
    "read_jsonl",
    "read_results",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_text_atomic",
]
