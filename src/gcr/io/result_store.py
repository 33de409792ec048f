"""Result files keyed by work item: one ``ok`` record per finished item, in a :class:`JsonlLog`.

``gcr bench`` (one record per prompt), ``gcr eval`` (one per judged pair) and
the benchmark scorers (one per judged image) keep their results this way. A
record is a JSON object with an ``id`` (text) and a ``status``; ``ok`` means the
item is finished. Cut-off and damaged lines follow the rule of
:mod:`gcr.io.jsonl`.

A writer opens its file with :meth:`ResultStore.load`, which compacts it: the
first ``ok`` record of each key is kept, failed records are dropped (so those
items are tried again) and duplicates too; the file is rewritten atomically
when anything was dropped, so it never holds two records for one key. Other
processes' files are read with :func:`read_results`, which changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from operator import itemgetter
from pathlib import Path
from typing import Any

from gcr.errors import RunError
from gcr.io.jsonl import JsonlLog

__all__ = ["ResultStore", "read_results"]

logger = logging.getLogger(__name__)

STATUS_OK = "ok"


def _checked(path: Path, number: int, record: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(record.get("id"), str):
        raise RunError(f"{path}:{number} is not a result record (no 'id')")
    return record


class ResultStore:
    """Per-item results: load-and-compact once, then append and flush one record per finished item.

    ``key`` names the unit of work a record stands for (default: its ``id``).
    """

    def __init__(
        self, path: str | Path, key: Callable[[dict[str, Any]], Hashable] = itemgetter("id")
    ) -> None:
        self.path = Path(path)
        self.key = key
        self.log = JsonlLog(self.path)

    def load(self) -> dict[Any, dict[str, Any]]:
        """Successful records by key; failed and duplicate records are compacted away."""
        kept: dict[Any, dict[str, Any]] = {}
        dropped_failed = dropped_dupes = 0
        for number, record in self.log.numbered():
            _checked(self.path, number, record)
            if record.get("status") != STATUS_OK:
                dropped_failed += 1
            elif self.key(record) in kept:
                dropped_dupes += 1
            else:
                kept[self.key(record)] = record
        if dropped_failed or dropped_dupes:
            logger.info(
                "%s compacted: %d kept, %d failed to retry, %d duplicates",
                self.path, len(kept), dropped_failed, dropped_dupes,
            )
            self.log.rewrite(kept.values())
        return kept

    def append(self, record: dict[str, Any]) -> None:
        """Write one record and flush it, so a killed run keeps it."""
        self.log.append(record)

    def close(self) -> None:
        self.log.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_results(path: str | Path) -> dict[str, dict[str, Any]]:
    """The records of one result file by ``id``, without changing the file.

    An ``ok`` record is final: a later record for the same id replaces only a failed one.
    """
    file = Path(path)
    out: dict[str, dict[str, Any]] = {}
    for number, record in JsonlLog(file).numbered():
        _checked(file, number, record)
        previous = out.get(record["id"])
        if previous is None or previous.get("status") != STATUS_OK:
            out[record["id"]] = record
    return out
