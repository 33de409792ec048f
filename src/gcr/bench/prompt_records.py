"""Result records of one prompt: what a finished refine run (or a failure) leaves in ``results.jsonl``.

Paths inside a record are relative to the benchmark folder, so the folder can
be moved or copied and its report still finds the images.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gcr.bench.prompt_set import BenchCase


def relative(path: str | Path | None, root: Path, run_dir: str | Path | None = None) -> str | None:
    """``path`` relative to ``root`` (POSIX separators) when it lies inside it, else as given.

    A relative ``path`` is one recorded in a run's state: relative to that run's ``run_dir``.
    """
    if path is None:
        return None
    if run_dir is not None and not Path(path).is_absolute():
        path = Path(run_dir) / path
    try:
        return Path(os.path.relpath(Path(path).resolve(), root)).as_posix()
    except ValueError:  # another drive on Windows
        return str(path)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def base_record(case: BenchCase) -> dict[str, Any]:
    return {
        "id": case.id,
        "prompt": case.prompt,
        "category": case.category,
        "task": case.task.value,
        **({"meta": case.meta} if case.meta else {}),
    }


def refine_record(case: BenchCase, values: Mapping[str, Any], root: Path, elapsed_s: float) -> dict[str, Any]:
    """The record of a finished refine run from the graph's final state ``values``."""
    rounds = list(values.get("rounds") or [])
    candidates = list(values.get("candidates") or [])
    best = values.get("best")
    summary = values.get("summary") or {}
    first = rounds[0] if rounds else None
    initial = None
    if first is not None:
        initial = next((c for c in candidates if c["round"] == 0 and c["index"] == first["best_index"]), None)
    return {
        **base_record(case),
        "status": "ok",
        "run_dir": relative(values.get("run_dir"), root),
        "initial_reward": None if first is None else first["best_reward"],
        "final_reward": None if best is None else best["reward"],
        "last_reward": rounds[-1]["best_reward"] if rounds else None,
        "initial_scores": {} if first is None else dict(first["best_scores"]),
        "final_scores": {} if best is None else dict(best["scores"]),
        "round_rewards": [r["best_reward"] for r in rounds],
        "vetoes": [{"round": r["round"], **r["veto"]} for r in rounds if r.get("veto")],
        "prompts": [r["prompt"] for r in rounds],
        "rounds": len(rounds),
        "generations": len(candidates),
        "skipped": sum(1 for c in candidates if c["status"] == "skipped"),
        "cached_generations": sum(1 for c in candidates if c.get("cached_generation")),
        "cached_critiques": sum(1 for c in candidates if c.get("cached_critique")),
        "stop_reason": values.get("stop_reason"),
        "stop_detail": values.get("stop_detail"),
        "best_round": None if best is None else best["round"],
        "best_prompt": None if best is None else best["prompt"],
        "best_seed": None if best is None else best["seed"],
        "initial_image": None if initial is None else relative(initial["image"], root, values.get("run_dir")),
        "best_image": None if best is None else relative(best["image"], root, values.get("run_dir")),
        "timings": dict(summary.get("timings") or {}),
        "elapsed_s": round(elapsed_s, 4),
        "finished_at": _now(),
    }


def failure_record(case: BenchCase, exc: BaseException, elapsed_s: float) -> dict[str, Any]:
    """The record of a prompt whose run failed; the next run tries it again from its checkpoint."""
    return {
        **base_record(case),
        "status": "failed",
        "error": {"type": type(exc).__name__, "message": str(exc)},
        "elapsed_s": round(elapsed_s, 4),
        "finished_at": _now(),
    }


class Stopwatch:
    """Seconds since creation (``time.perf_counter``)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.started
