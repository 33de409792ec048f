"""This process's timing record of a benchmark: ``sessions/<shard>-<time>-<pid>.json``.

One file per process run (a shard, a resume): when it started and ended, how long the
models took to load (kept apart from throughput), how many records it wrote, and the
stage split of :class:`~gcr.bench.stages.StageClock`. :mod:`gcr.bench.stats` merges
the files of every session into the throughput figures of ``summary.json``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from gcr.bench.folder import BenchFolder, Kind
from gcr.bench.shard import ShardInfo
from gcr.bench.stages import StageClock
from gcr.io import write_json_atomic


class SessionTiming:
    """This process's timing record in ``sessions/``, rewritten after a result (at most every few seconds)."""

    #: Seconds between two rewrites while running (each one merges every recorded interval).
    EVERY_S = 2.0

    def __init__(self, folder: BenchFolder, shard: ShardInfo, clock: StageClock) -> None:
        self.clock = clock
        self.started_wall = time.time()
        self.started = time.monotonic()
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        self.path = folder.session_file(shard, stamp)
        self.last_write = 0.0
        self.data: dict[str, Any] = {
            "rank": shard.rank,
            "world_size": shard.world_size,
            "started_at": self.started_wall,
            "results": 0,
            "baselines": 0,
            "failed": 0,
            "load_s": 0.0,
        }

    def loaded(self) -> None:
        """The models are loaded: throughput is measured from here (loading is reported apart)."""
        now = time.monotonic()
        self.data["load_s"] = now - self.started
        self.started_wall += now - self.started
        self.started = now
        self.data["started_at"] = self.started_wall

    def count(self, kind: Kind, record: dict[str, Any]) -> None:
        if record["status"] != "ok":
            self.data["failed"] += 1
        else:
            self.data["results" if kind == "results" else "baselines"] += 1
        self.write()

    def write(self, final: bool = False) -> dict[str, Any]:
        if not final and time.monotonic() - self.last_write < self.EVERY_S:
            return dict(self.data)
        self.last_write = time.monotonic()
        self.data.update(self.clock.figures())
        self.data["wall_s"] = time.monotonic() - self.started
        self.data["ended_at"] = self.started_wall + self.data["wall_s"]
        self.data["finished"] = final
        if final and not (self.data["results"] or self.data["baselines"] or self.data["failed"]):
            return dict(self.data)  # nothing ran: leave no session behind
        write_json_atomic(self.path, self.data)
        return dict(self.data)
