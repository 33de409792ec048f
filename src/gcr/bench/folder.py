"""The benchmark folder: settings that bind it, per-prompt result records, and the run folders.

Layout::

    OUT/
      bench.json                 what the results were made with (a rerun with other settings is refused)
      results.jsonl              one line per finished prompt (refine runs)
      baseline.jsonl             one line per finished best-of-n baseline
      shards/rank-R-of-N/        the same two files for each shard of a sharded run
      sessions/<shard>-<time>-<pid>.json   timing of each process run (throughput, stage split)
      inputs/<case>/source-K.png source images of edit cases, as sent to the runs
      runs/<case>/               each prompt's refine run folder (checkpoints.sqlite, rounds/, summary.json)
      baseline/<case>/           each prompt's best-of-n run folder
      summary.json  report.html  the combined figures and report

Result files are JSON Lines, appended and flushed once per finished prompt
(through :class:`gcr.io.ResultStore`, which ``gcr eval`` uses too): a killed
process loses only the prompts in flight, whose run folders keep their
checkpoints, so the next run continues them; a line cut off by the kill is
dropped by the rule of :mod:`gcr.io.jsonl`. A process compacts
only its own file (failed records are dropped there so they are retried) and
reads the other shards' files without touching them. Every record carries the
prompt's ``id``; a prompt that has an ``ok`` record in any file is finished
and is never run again, so no prompt is ever recorded twice as ``ok``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from gcr.bench.shard import ShardInfo
from gcr.errors import RunError
from gcr.folder_paths import contained_path
from gcr.io import ResultStore, read_results, write_json_atomic

logger = logging.getLogger(__name__)

Kind = Literal["results", "baseline"]
KINDS: tuple[Kind, ...] = ("results", "baseline")
SETTINGS_FILE = "bench.json"
SUMMARY_FILE = "summary.json"
REPORT_FILE = "report.html"
SETTINGS_VERSION = 1


def safe_name(case_id: str) -> str:
    """A folder name for a prompt id: the id itself when it is already safe, else a slug plus a hash."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", case_id).strip("._")[:60]
    if slug == case_id:
        return slug
    return f"{slug or 'case'}-{hashlib.sha1(case_id.encode('utf-8')).hexdigest()[:8]}"


class BenchFolder:
    """Paths, settings and result files of one benchmark folder."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser().resolve()

    def __repr__(self) -> str:
        return f"BenchFolder({str(self.path)!r})"

    # ------------------------------------------------------------------ paths

    def resolve(self, recorded: str | Path) -> Path:
        """A path a result record holds, inside this folder (see :func:`gcr.folder_paths.contained_path`)."""
        return contained_path(self.path, recorded)

    def run_dir(self, case_id: str) -> Path:
        return self.path / "runs" / safe_name(case_id)

    def baseline_dir(self, case_id: str) -> Path:
        return self.path / "baseline" / safe_name(case_id)

    def input_path(self, case_id: str, index: int) -> Path:
        return self.path / "inputs" / safe_name(case_id) / f"source-{index}.png"

    def results_file(self, kind: Kind, shard: ShardInfo) -> Path:
        """The file this process appends ``kind`` records to."""
        folder = self.path / "shards" / shard.label if shard.sharded else self.path
        return folder / f"{kind}.jsonl"

    def result_files(self, kind: Kind) -> list[Path]:
        """Every file that may hold ``kind`` records: the unsharded one and each shard's."""
        files = [self.path / f"{kind}.jsonl"]
        shards = self.path / "shards"
        if shards.is_dir():
            files += sorted(p / f"{kind}.jsonl" for p in shards.iterdir() if p.is_dir())
        return [f for f in files if f.is_file()]

    def session_file(self, shard: ShardInfo, stamp: str) -> Path:
        return self.path / "sessions" / f"{shard.label}-{stamp}-{os.getpid()}.json"

    def sessions(self) -> list[dict[str, Any]]:
        folder = self.path / "sessions"
        if not folder.is_dir():
            return []
        out = []
        for path in sorted(folder.glob("*.json")):
            try:
                out.append(json.loads(path.read_text("utf-8")))
            except ValueError:
                logger.warning("ignoring unreadable session file %s", path)
        return out

    # ------------------------------------------------------------------ records

    def open_store(self, kind: Kind, shard: ShardInfo) -> tuple[ResultStore, dict[str, dict[str, Any]]]:
        """This process's store for ``kind`` (compacted) and the finished records of *all* files."""
        own = self.results_file(kind, shard)
        store = ResultStore(own)
        finished = store.load()
        for path in self.result_files(kind):
            if path.resolve() == own.resolve():
                continue
            for case_id, record in read_results(path).items():
                if record.get("status") == "ok":
                    finished.setdefault(case_id, record)
        return store, finished

    def records(self, kind: Kind) -> dict[str, dict[str, Any]]:
        """The latest record per prompt over all files, read-only; an ``ok`` record beats a failed one."""
        merged: dict[str, dict[str, Any]] = {}
        for path in self.result_files(kind):
            for case_id, record in read_results(path).items():
                previous = merged.get(case_id)
                if previous is None or (previous.get("status") != "ok" and record.get("status") == "ok"):
                    merged[case_id] = record
                elif previous.get("status") == "ok" and record.get("status") == "ok":
                    logger.warning(
                        "prompt %s has finished records in two result files; keeping the first", case_id
                    )
        return merged

    # ------------------------------------------------------------------ settings

    def check_settings(self, settings: Mapping[str, Any]) -> None:
        """Write ``bench.json`` on the first run; refuse a later run whose binding settings differ."""
        path = self.path / SETTINGS_FILE
        data = {"version": SETTINGS_VERSION, **settings}
        if path.is_file():
            try:
                previous = json.loads(path.read_text("utf-8"))
            except ValueError as exc:
                raise RunError(f"{path} is unreadable ({exc}); delete it or use another --out") from None
            if previous.get("version") != SETTINGS_VERSION:
                raise RunError(f"{path} was written by another gcr version; use another --out folder")
            for key, value in data.items():
                old = previous.get(key)
                if old is not None and value is not None and old != value:
                    raise RunError(
                        f"{self.path} holds results made with other settings "
                        f"({_difference(key, old, value)}); rerun with the same settings or use another --out"
                    )
            data = {**previous, **{k: v for k, v in data.items() if v is not None}}
        write_json_atomic(path, data, durable=True)

    def settings(self) -> dict[str, Any]:
        path = self.path / SETTINGS_FILE
        if not path.is_file():
            raise RunError(f"{self.path} holds no gcr bench results ({SETTINGS_FILE} is missing)")
        try:
            return json.loads(path.read_text("utf-8"))
        except ValueError as exc:
            raise RunError(f"{path} is unreadable ({exc})") from None


def _difference(key: str, old: Any, new: Any) -> str:
    if isinstance(old, dict) and isinstance(new, dict):
        for sub in sorted(set(old) | set(new)):
            if old.get(sub) != new.get(sub):
                return f"{key}.{sub} was {old.get(sub)!r}, now {new.get(sub)!r}"
    return f"{key} was {old!r}, now {new!r}"

