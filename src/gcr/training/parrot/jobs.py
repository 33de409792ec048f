"""Concurrent, resumable model calls with one JSON line per result.

Every PARROT phase that calls a model (anchoring, the consistency predictor,
projection) runs through :func:`run_jobs`: results are appended to a JSONL log
as soon as each call finishes, so a crash or Ctrl-C loses at most the calls in
flight. Rerunning the phase reads the log, skips keys whose latest record is
``ok`` and retries the ones that failed. The latest record of a key wins, so the
log also keeps the history of failed attempts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gcr.io import JsonlLog

logger = logging.getLogger(__name__)

STATUS_OK = "ok"
STATUS_FAILED = "failed"

Worker = Callable[[str], Awaitable[dict[str, Any]]]
Progress = Callable[[int, int], None]


class ResultLog:
    """An append-only JSONL file of ``{"key": ..., "status": ..., ...}`` records (a :class:`JsonlLog`).

    A line cut off by a crash is dropped, and a damaged line is an error, by the
    rule of :mod:`gcr.io.jsonl`. Values JSON has no type for are written as text.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._log = JsonlLog(self.path, default=str)

    def records(self) -> list[dict[str, Any]]:
        """Every record with a ``key``, in file order."""
        return [r for r in self._log.records() if "key" in r]

    def latest(self) -> dict[str, dict[str, Any]]:
        """The latest record of each key."""
        return {r["key"]: r for r in self.records()}

    def attempts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.records():
            counts[r["key"]] = counts.get(r["key"], 0) + 1
        return counts

    def ok(self) -> dict[str, dict[str, Any]]:
        return {k: r for k, r in self.latest().items() if r.get("status") == STATUS_OK}

    def append(self, record: dict[str, Any]) -> None:
        """Append one record and flush it; the file stays open until :meth:`close`."""
        self._log.append(record)

    def close(self) -> None:
        self._log.close()


@dataclass
class JobStats:
    """What one :func:`run_jobs` call did."""

    total: int = 0
    already_done: int = 0
    ok: int = 0
    failed: int = 0
    errors: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "already_done": self.already_done,
            "ok": self.ok,
            "failed": self.failed,
            "failed_keys": sorted(self.errors),
        }


def failed_record(key: str, error: BaseException | str, **extra: Any) -> dict[str, Any]:
    """A ``failed`` record; ``extra`` keeps whatever is worth keeping (e.g. the raw answer)."""
    return {"key": key, "status": STATUS_FAILED, "error": str(error), **extra}


async def run_jobs(
    keys: Iterable[str],
    worker: Worker,
    log: ResultLog,
    *,
    concurrency: int,
    progress: Progress | None = None,
) -> JobStats:
    """Run ``worker(key)`` for every key without an ``ok`` record in ``log``, ``concurrency`` at a time.

    ``worker`` returns the record to append (``status`` ``ok`` or ``failed``); it
    should turn expected failures into ``failed`` records itself. An unexpected
    exception is recorded as a failure of that key and the others carry on.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    keys = list(dict.fromkeys(keys))
    done = log.ok()
    todo = [k for k in keys if k not in done]
    stats = JobStats(total=len(keys), already_done=len(keys) - len(todo))
    attempts = log.attempts()
    if stats.already_done:
        logger.info(
            "%s: %d of %d already done; %d to run", log.path.name, stats.already_done, len(keys), len(todo)
        )
    finished = stats.already_done
    if progress is not None:
        progress(finished, len(keys))
    queue: asyncio.Queue[str] = asyncio.Queue()
    for key in todo:
        queue.put_nowait(key)

    async def one(key: str) -> None:
        nonlocal finished
        started = time.perf_counter()
        try:
            record = await worker(key)
        except Exception as exc:  # keep the batch going; the failure is recorded and retried on rerun
            logger.exception("%s: job %s failed unexpectedly", log.path.name, key)
            record = failed_record(key, f"{type(exc).__name__}: {exc}")
        record = {"key": key, **{k: v for k, v in record.items() if k != "key"}}
        record["attempt"] = attempts.get(key, 0) + 1
        record["seconds"] = round(time.perf_counter() - started, 3)
        log.append(record)
        if record.get("status") == STATUS_OK:
            stats.ok += 1
        else:
            stats.failed += 1
            stats.errors[key] = str(record.get("error", "failed"))
        finished += 1
        if progress is not None:
            progress(finished, len(keys))

    async def pull() -> None:
        # A fixed pool of workers, so a million keys do not become a million waiting tasks.
        while not queue.empty():
            await one(queue.get_nowait())

    try:
        await asyncio.gather(*(pull() for _ in range(min(concurrency, len(todo)))))
    finally:
        log.close()
    if stats.failed:
        logger.warning("%s: %d job(s) failed; rerun to retry them", log.path.name, stats.failed)
    return stats
