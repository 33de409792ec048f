"""The equal-compute baseline: as many plain generations as refinement used, the best one kept.

``--baseline best-of-n`` answers "does refinement beat simply sampling more?".
For each prompt whose refine run made N images (all rounds, all candidates,
skipped ones included), the baseline generates N images of the *user's*
prompt with seeds ``seed, seed + 1, ..., seed + N - 1``, has the critic score
each, and keeps the best. It runs through the same refine graph, with one round
of N candidates and no refinement, so generation, critique, caching and
checkpointing are the very same code. The first ``candidates`` of those
images are round 0 of the refine run (same prompt, same seeds), found in the
artifact cache rather than generated again; they still count towards N,
because the refine run paid for them too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gcr.agent.runner import RunSpec
from gcr.bench.prompt_records import Stopwatch, base_record, relative
from gcr.bench.prompt_set import BenchCase
from gcr.errors import ConfigError

BASELINES: tuple[str, ...] = ("none", "best-of-n")


def check_baseline(name: str) -> str:
    if name not in BASELINES:
        raise ConfigError(f"unknown baseline {name!r}: use {' or '.join(BASELINES)}")
    return name


def baseline_spec(spec: RunSpec, generations: int) -> RunSpec:
    """The run that generates ``generations`` images of ``spec``'s prompt in one round, without refining."""
    if generations < 1:
        raise ConfigError(f"a best-of-n baseline needs at least one generation (got {generations})")
    context = dataclasses.replace(
        spec.context,
        candidates=generations,
        max_rounds=1,
        seed_policy="fixed",
        target_reward=None,
        dimension_target=None,
        max_generations=None,
        max_wall_s=None,
        interactive=False,
        run_dir="",
    )
    return dataclasses.replace(spec, context=context, thread_id="baseline")


def baseline_record(
    case: BenchCase, values: Mapping[str, Any], root: Path, watch: Stopwatch
) -> dict[str, Any]:
    """The record of a finished baseline run."""
    candidates = list(values.get("candidates") or [])
    best = values.get("best")
    summary = values.get("summary") or {}
    return {
        **base_record(case),
        "status": "ok",
        "run_dir": relative(values.get("run_dir"), root),
        "generations": len(candidates),
        "rewards": [c["reward"] for c in candidates],
        "skipped": sum(1 for c in candidates if c["status"] == "skipped"),
        "cached_generations": sum(1 for c in candidates if c.get("cached_generation")),
        "best_reward": None if best is None else best["reward"],
        "best_scores": {} if best is None else dict(best["scores"]),
        "best_seed": None if best is None else best["seed"],
        "best_image": None if best is None else relative(best["image"], root, values.get("run_dir")),
        "timings": dict(summary.get("timings") or {}),
        "elapsed_s": round(watch(), 4),
    }
