"""Re-score a benchmark's images with independent judges (``gcr bench --judge SPEC``).

For every finished prompt, each judge scores, against the user's original
prompt (and the source images of an edit):

* ``initial``: the best image of round 0 (what the user's own prompt gave),
* ``final``: the best image of the run (what gcr keeps),
* ``baseline``: the best-of-n baseline's pick, when the benchmark has one.

One JSON line per (prompt, judge) goes to ``judgements.jsonl`` (one file per
shard, like the results), appended and flushed as soon as that prompt's
verdicts are in (a line cut off by a killed process follows the rule of
:mod:`gcr.io.jsonl`). Verdicts go through :class:`~gcr.judges.runner.JudgePanel`:
bounded, retried by the judges' own clients, and cached by content with the
judge's identity in the key. A rerun skips (prompt, judge) pairs whose record
is complete and retries failed ones; a judge added later scores only what it
has not seen. A judge failure is recorded as such (``status: failed`` with the
error), never as a score.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from gcr.bench.folder import BenchFolder
from gcr.bench.shard import ShardInfo
from gcr.errors import GCRError, RunError
from gcr.images import load_image
from gcr.io import JsonlLog
from gcr.judges.base import Judge
from gcr.judges.runner import JudgePanel, JudgeVerdict

logger = logging.getLogger(__name__)

JUDGEMENTS_FILE = "judgements.jsonl"
#: Which images of a prompt are judged, and the record field that holds each one's path.
IMAGES: tuple[tuple[str, str, str], ...] = (
    ("initial", "results", "initial_image"),
    ("final", "results", "best_image"),
    ("baseline", "baseline", "best_image"),
)

JudgementHandler = Callable[[dict[str, Any]], None]


def judgements_file(folder: BenchFolder, shard: ShardInfo) -> Path:
    base = folder.path / "shards" / shard.label if shard.sharded else folder.path
    return base / JUDGEMENTS_FILE


def judgement_files(folder: BenchFolder) -> list[Path]:
    files = [folder.path / JUDGEMENTS_FILE]
    shards = folder.path / "shards"
    if shards.is_dir():
        files += sorted(p / JUDGEMENTS_FILE for p in shards.iterdir() if p.is_dir())
    return [f for f in files if f.is_file()]


def read_judgements(folder: BenchFolder) -> dict[tuple[str, str], dict[str, Any]]:
    """The latest record per (prompt id, judge identity) over every judgements file; ``ok`` beats failed."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for path in judgement_files(folder):
        for lineno, record in JsonlLog(path).numbered():
            if not isinstance(record.get("id"), str) or "judge" not in record:
                raise RunError(f"{path}:{lineno} is not a judgement record (no 'id' or 'judge')")
            key = (record["id"], str(record["judge"]))
            previous = out.get(key)
            if previous is None or previous.get("status") != "ok" or record.get("status") == "ok":
                out[key] = record
    return out


@dataclass
class JudgingOutcome:
    judges: list[str] = field(default_factory=list)
    scored: int = 0
    reused: int = 0
    failed: int = 0


def _wanted(record: Mapping[str, Any], baseline: Mapping[str, Any] | None) -> dict[str, str]:
    """The images of one prompt to judge: name → path relative to the benchmark folder."""
    sources = {"results": record, "baseline": baseline if (baseline or {}).get("status") == "ok" else None}
    out: dict[str, str] = {}
    for name, kind, key in IMAGES:
        rec = sources[kind]
        if rec is not None and rec.get(key):
            out[name] = str(rec[key])
    return out


def _complete(previous: Mapping[str, Any] | None, wanted: Mapping[str, str]) -> bool:
    if previous is None or previous.get("status") != "ok":
        return False
    images = previous.get("images") or {}
    return all(
        images.get(n) == p and (previous.get(n) or {}).get("status") == "ok" for n, p in wanted.items()
    )


def _sources(folder: BenchFolder, case_id: str) -> list[Path]:
    paths = []
    while (p := folder.input_path(case_id, len(paths))).is_file():
        paths.append(p)
    return paths


async def judge_bench(
    folder: BenchFolder,
    judges: Sequence[Judge],
    *,
    specs: Sequence[str] | None = None,
    case_ids: Iterable[str] | None = None,
    shard: ShardInfo | None = None,
    cache_dir: str | Path | None = None,
    concurrency: int = 4,
    on_record: JudgementHandler | None = None,
) -> JudgingOutcome:
    """Have every judge score the initial, final and baseline image of each finished prompt."""
    shard = shard or ShardInfo()
    specs = list(specs) if specs is not None else [j.identity for j in judges]
    records = {k: r for k, r in folder.records("results").items() if r.get("status") == "ok"}
    baselines = folder.records("baseline")
    ids = sorted(records) if case_ids is None else [i for i in case_ids if i in records]
    previous = read_judgements(folder)
    outcome = JudgingOutcome(judges=[j.identity for j in judges])
    panel = JudgePanel(judges, cache_dir=cache_dir, concurrency=concurrency)
    log = JsonlLog(judgements_file(folder, shard))
    todo: list[tuple[str, Judge, str, dict[str, str]]] = []
    for case_id in ids:
        wanted = _wanted(records[case_id], baselines.get(case_id))
        for judge, spec in zip(judges, specs, strict=True):
            if _complete(previous.get((case_id, judge.identity)), wanted):
                outcome.reused += 1
            else:
                todo.append((case_id, judge, spec, wanted))
    with log:

        # Prompts in progress at once: enough to keep every judge slot busy, few enough that a large
        # benchmark's images are not all decoded into memory up front.
        cases = asyncio.Semaphore(2 * concurrency)

        async def one(case_id: str, judge: Judge, spec: str, wanted: dict[str, str]) -> None:
            async with cases:
                record = await _judge_case(folder, panel, judge, spec, records[case_id], wanted)
            log.append(record)
            if record["status"] == "ok":
                outcome.scored += 1
            else:
                outcome.failed += 1
            if on_record is not None:
                on_record(record)

        await asyncio.gather(*(one(*item) for item in todo))
    return outcome


async def _judge_case(
    folder: BenchFolder,
    panel: JudgePanel,
    judge: Judge,
    spec: str,
    record: Mapping[str, Any],
    wanted: Mapping[str, str],
) -> dict[str, Any]:
    case_id = str(record["id"])
    try:
        images, sources = await asyncio.to_thread(_load, folder, case_id, wanted)
    except GCRError as exc:  # a missing image is this prompt's failure, recorded, not the benchmark's
        error = {"type": type(exc).__name__, "message": str(exc)}
        verdicts = {n: JudgeVerdict(judge=judge.identity, error=error) for n in wanted}
    else:
        found = await asyncio.gather(
            *(panel.verdict(judge, str(record["prompt"]), images[n], sources) for n in wanted)
        )
        verdicts = dict(zip(wanted, found, strict=True))
    ok = all(v.ok for v in verdicts.values())
    return {
        "id": case_id,
        "judge": judge.identity,
        "spec": spec,
        "status": "ok" if ok else "failed",
        "images": dict(wanted),
        **{name: v.to_dict() for name, v in verdicts.items()},
    }


def _load(
    folder: BenchFolder, case_id: str, wanted: Mapping[str, str]
) -> tuple[dict[str, Image.Image], list[Image.Image]]:
    images = {name: load_image(folder.resolve(rel)) for name, rel in wanted.items()}
    sources = [load_image(p) for p in _sources(folder, case_id)]
    return images, sources
