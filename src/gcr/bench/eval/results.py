"""The on-disk record of an evaluation: one JSON line per judged pair, plus the run's settings.

``results.jsonl`` is append-only while a run is going and flushed after every
pair, so a killed process loses only the pairs in flight (and at most one torn
last line, which the next run discards). When a run starts, the file is
compacted: successful records are kept (one per pair), failed ones are dropped
so that those pairs are judged again, and the file is rewritten atomically.
The file therefore never holds two records for one pair.

``run.json`` remembers what produced the results (the dataset's name and row
count, layout, mode, critic) so a rerun into the same folder with a different
dataset or settings is refused instead of mixing incompatible results. The
dataset's path is recorded but not compared, so a moved dataset still resumes.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Hashable
from operator import itemgetter
from pathlib import Path
from typing import IO, Any

from gcr.errors import RunError

logger = logging.getLogger(__name__)

RESULTS_FILE = "results.jsonl"
RUN_FILE = "run.json"
SUMMARY_FILE = "summary.json"

#: Settings that must match between runs sharing an output folder.
_BINDING_KEYS = ("dataset_name", "dataset_rows", "layout", "mode", "critic")


def check_run_settings(out_dir: Path, settings: dict[str, Any]) -> None:
    """Write ``run.json`` on the first run; on later runs refuse settings that would mix results."""
    path = out_dir / RUN_FILE
    if path.exists():
        try:
            previous = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise RunError(f"{path} is unreadable ({exc}); delete it or use another --out") from None
        for key in _BINDING_KEYS:
            old, new = previous.get(key), settings.get(key)
            if old is not None and new is not None and old != new:
                raise RunError(
                    f"{out_dir} holds results made with {key}={old!r}, not {new!r};"
                    " use another --out folder or the same settings"
                )
        merged = {**previous, **{k: v for k, v in settings.items() if v is not None}}
    else:
        merged = settings
    _write_atomic(path, json.dumps(merged, indent=2, sort_keys=True) + "\n")


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class ResultStore:
    """Per-pair results in a JSON Lines file: load-and-compact once, then append and flush per pair.

    ``key`` names the unit of work a record stands for (default: its ``id``);
    a later record with the same key replaces nothing, it is a duplicate.
    """

    def __init__(self, path: Path, key: Callable[[dict[str, Any]], Hashable] = itemgetter("id")) -> None:
        self.path = path
        self.key = key
        self._fh: IO[str] | None = None

    def load(self) -> dict[Any, dict[str, Any]]:
        """Successful records by key; failed and duplicate records are compacted away."""
        if not self.path.exists():
            return {}
        lines = self.path.read_text(encoding="utf-8").splitlines()
        kept: dict[Any, dict[str, Any]] = {}
        dropped_failed = dropped_dupes = torn = 0
        for lineno, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                if lineno == len(lines):
                    torn += 1  # the last write of a killed run
                    continue
                raise RunError(
                    f"{self.path}:{lineno} is not valid JSON; the results file is corrupt."
                    " Delete that line (its pair will be judged again) or use another --out"
                ) from None
            if not isinstance(record, dict) or not isinstance(record.get("id"), str):
                raise RunError(f"{self.path}:{lineno} is not a result record (no 'id')")
            if record.get("status") != "ok":
                dropped_failed += 1
            elif self.key(record) in kept:
                dropped_dupes += 1
            else:
                kept[self.key(record)] = record
        if dropped_failed or dropped_dupes or torn:
            logger.info(
                "results file compacted: %d kept, %d failed to retry, %d duplicates, %d torn line",
                len(kept), dropped_failed, dropped_dupes, torn,
            )
            body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept.values())
            _write_atomic(self.path, body)
        return kept

    def append(self, record: dict[str, Any]) -> None:
        """Write one record and flush it, so a killed run keeps it."""
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("a", encoding="utf-8")
        self._fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

