"""The figures of a benchmark, computed from its result records and session timings (``summary.json``).

Definitions (all rewards are normalized rewards in [0, 1], see docs/critique-format.md):

* ``initial``: the best reward of round 0 (the user's own prompt); ``final``: the
  best reward of the whole run (the image gcr keeps); ``last``: the best reward of
  the last round (what refinement ended on; lower than ``initial`` when it backfired).
* Means come with a 95% Student-t interval over prompts (``n - 1`` degrees of
  freedom; none for fewer than two prompts). Deltas are paired per prompt.
* Win rate of final over initial = prompts whose final reward is higher than their
  initial one (by more than 1e-9) / prompts, with a Wilson interval
  (:func:`gcr.bench.eval.metrics.wilson_interval`); ties are counted apart. Since gcr
  keeps the best image, final is never below initial: there are no losses.
* Against the best-of-n baseline, on the prompts that have both records: refine's
  final reward versus the baseline's best, wins / ties / losses and the win rate.
* Throughput: images generated (generator calls) per minute of wall time, wall
  time being the union of the sessions' working spans (model loading excluded),
  so shards running side by side count once and resumed sessions add up.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from gcr.bench.eval.metrics import wilson_interval
from gcr.bench.stages import merge_intervals, total_length
from gcr.errors import DependencyError

WIN_EPSILON = 1e-9
GALLERY_SIZE = 4


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> dict[str, Any]:
    """Mean, sample standard deviation and the Student-t interval of the mean of ``values``."""
    n = len(values)
    if n == 0:
        return {"n": 0, "mean": None, "std": None, "ci_low": None, "ci_high": None}
    mean = statistics.fmean(values)
    if n == 1:
        return {"n": 1, "mean": mean, "std": None, "ci_low": None, "ci_high": None}
    try:
        from scipy import stats
    except ImportError:
        raise DependencyError("scipy", "report", "Confidence intervals of the benchmark summary") from None
    std = statistics.stdev(values)
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    return {"n": n, "mean": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half}


def rate(wins: int, n: int) -> dict[str, Any]:
    interval = wilson_interval(wins, n)
    return {
        "wins": wins,
        "n": n,
        "rate": wins / n if n else None,
        "ci_low": None if interval is None else interval[0],
        "ci_high": None if interval is None else interval[1],
    }


def _compare(pairs: Iterable[tuple[float, float]]) -> dict[str, Any]:
    """Wins, ties and losses of the first value over the second, and the win rate with its interval."""
    pairs = list(pairs)
    wins = sum(1 for a, b in pairs if a > b + WIN_EPSILON)
    losses = sum(1 for a, b in pairs if b > a + WIN_EPSILON)
    return {**rate(wins, len(pairs)), "ties": len(pairs) - wins - losses, "losses": losses}


def _ok(records: Mapping[str, Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [r for r in records.values() if r.get("status") == "ok" and r.get("final_reward") is not None]


def reward_figures(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    initial = [r["initial_reward"] for r in rows]
    final = [r["final_reward"] for r in rows]
    last = [r["last_reward"] for r in rows]
    return {
        "initial": mean_interval(initial),
        "final": mean_interval(final),
        "last": mean_interval(last),
        "delta": mean_interval([f - i for f, i in zip(final, initial, strict=True)]),
        "win_rate": _compare(zip(final, initial, strict=True)),
    }


def dimension_figures(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per dimension: mean score of the round-0 best and of the final image, and the paired delta."""
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r["final_scores"] if k not in keys]
    out: dict[str, Any] = {}
    for key in keys:
        pairs = [(r["initial_scores"].get(key), r["final_scores"].get(key)) for r in rows]
        pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
        out[key] = {
            "n": len(pairs),
            "initial_mean": statistics.fmean(a for a, _ in pairs) if pairs else None,
            "final_mean": statistics.fmean(b for _, b in pairs) if pairs else None,
            "delta": mean_interval([b - a for a, b in pairs]),
        }
    return out


def round_figures(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    rounds = [int(r["rounds"]) for r in rows]
    longest = max(rounds, default=0)
    # Mean best-so-far reward after each round; a run that stopped keeps its final reward.
    curve = []
    for k in range(longest):
        values = []
        for r in rows:
            seen = r["round_rewards"][: k + 1]
            values.append(max(seen))
        curve.append(statistics.fmean(values))
    return {
        "mean_rounds": statistics.fmean(rounds) if rounds else None,
        "histogram": {str(k): v for k, v in sorted(Counter(rounds).items())},
        "stop_reasons": dict(Counter(str(r["stop_reason"]) for r in rows).most_common()),
        "best_so_far_by_round": curve,
        "generations": sum(int(r["generations"]) for r in rows),
        "mean_generations": statistics.fmean(int(r["generations"]) for r in rows) if rows else None,
    }


def _has_baseline(baselines: Mapping[str, Mapping[str, Any]], case_id: str) -> bool:
    record = baselines.get(case_id) or {}
    return record.get("status") == "ok" and record.get("best_reward") is not None


def baseline_figures(
    rows: Sequence[Mapping[str, Any]], baselines: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any] | None:
    paired = [(r, baselines[r["id"]]) for r in rows if _has_baseline(baselines, r["id"])]
    if not paired:
        return None
    refine = [r["final_reward"] for r, _ in paired]
    base = [b["best_reward"] for _, b in paired]
    return {
        "n": len(paired),
        "baseline": mean_interval(base),
        "refine": mean_interval(refine),
        "delta": mean_interval([a - b for a, b in zip(refine, base, strict=True)]),
        "win_rate": _compare(zip(refine, base, strict=True)),
        "refine_generations": sum(int(r["generations"]) for r, _ in paired),
        "baseline_generations": sum(int(b["generations"]) for _, b in paired),
    }


def category_figures(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        if r.get("category"):
            groups.setdefault(str(r["category"]), []).append(r)
    return {
        name: {
            "n": len(group),
            "initial_mean": statistics.fmean(r["initial_reward"] for r in group),
            "final_mean": statistics.fmean(r["final_reward"] for r in group),
            "delta_mean": statistics.fmean(r["final_reward"] - r["initial_reward"] for r in group),
            "win_rate": _compare((r["final_reward"], r["initial_reward"]) for r in group)["rate"],
        }
        for name, group in sorted(groups.items())
    }


def stage_seconds(records: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Summed per-call seconds of each stage (critiques in flight together each count in full)."""
    totals = {"generate_s": 0.0, "critique_s": 0.0, "refine_s": 0.0}
    for r in records:
        for key in totals:
            totals[key] += float((r.get("timings") or {}).get(key) or 0.0)
    return totals


def throughput_figures(sessions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    spans = [(float(s["started_at"]), float(s["ended_at"])) for s in sessions if "ended_at" in s]
    wall = total_length(merge_intervals(spans))
    calls = sum(int(s.get("generator_calls") or 0) for s in sessions)
    critiques = sum(int(s.get("critic_calls") or 0) for s in sessions)
    gen_busy = sum(float(s.get("generator_busy_s") or 0.0) for s in sessions)
    critic_busy = sum(float(s.get("critic_busy_s") or 0.0) for s in sessions)
    overlap = sum(float(s.get("overlap_s") or 0.0) for s in sessions)
    return {
        "sessions": len(sessions),
        "wall_s": wall,
        "load_s": sum(float(s.get("load_s") or 0.0) for s in sessions),
        "generator_calls": calls,
        "critic_calls": critiques,
        "images_per_min": calls / wall * 60 if wall > 0 else None,
        "critiques_per_min": critiques / wall * 60 if wall > 0 else None,
        "generator_busy_s": gen_busy,
        "critic_busy_s": critic_busy,
        "overlap_s": overlap,
        "critic_peak_in_flight": max((int(s.get("critic_peak_in_flight") or 0) for s in sessions), default=0),
    }


def gallery(
    rows: Sequence[Mapping[str, Any]], baselines: Mapping[str, Mapping[str, Any]], size: int = GALLERY_SIZE
) -> dict[str, list[str]]:
    """Prompt ids of the biggest gains (final - initial), the biggest losses (last - initial < 0),
    and against the baseline the biggest wins and losses (final - baseline best)."""
    gains = sorted(
        (r for r in rows if r["final_reward"] - r["initial_reward"] > WIN_EPSILON),
        key=lambda r: (-(r["final_reward"] - r["initial_reward"]), r["id"]),
    )
    losses = sorted(
        (r for r in rows if r["last_reward"] - r["initial_reward"] < -WIN_EPSILON),
        key=lambda r: (r["last_reward"] - r["initial_reward"], r["id"]),
    )
    out = {"gains": [r["id"] for r in gains[:size]], "losses": [r["id"] for r in losses[:size]]}
    paired = [
        (r["final_reward"] - baselines[r["id"]]["best_reward"], r["id"])
        for r in rows
        if _has_baseline(baselines, r["id"])
    ]
    if paired:
        ahead = sorted(paired, key=lambda x: (-x[0], x[1]))
        out["beats_baseline"] = [i for d, i in ahead if d > WIN_EPSILON][:size]
        out["behind_baseline"] = [i for d, i in sorted(paired) if d < -WIN_EPSILON][:size]
    return out


def summarize_records(
    records: Mapping[str, Mapping[str, Any]],
    baselines: Mapping[str, Mapping[str, Any]],
    sessions: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """Every figure of the summary from the records (by prompt id) and the session timings."""
    rows = sorted(_ok(records), key=lambda r: r["id"])
    failed = [r for r in records.values() if r.get("status") != "ok"]
    base_ok = [b for b in baselines.values() if b.get("status") == "ok"]
    return {
        "counts": {
            "finished": len(rows),
            "failed": len(failed),
            "baseline_finished": len(base_ok),
            "baseline_failed": sum(1 for b in baselines.values() if b.get("status") != "ok"),
        },
        "reward": reward_figures(rows),
        "dimensions": dimension_figures(rows),
        "rounds": round_figures(rows),
        "baseline": baseline_figures(rows, baselines),
        "categories": category_figures(rows),
        "throughput": throughput_figures(sessions),
        "time_by_stage": {"refine_runs": stage_seconds(rows), "baseline_runs": stage_seconds(base_ok)},
        "gallery": gallery(rows, baselines),
        "failures": [
            {"id": r["id"], **(r.get("error") or {})} for r in sorted(failed, key=lambda r: r["id"])
        ],
    }
