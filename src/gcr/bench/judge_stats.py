"""Figures of the independent judges in ``summary.json``: gains, agreement, suspected reward hacking.

For each judge, over the prompts where it scored both the round-0 best
(``initial``) and the final best (``final``):

* ``initial``/``final``/``gain``: the judge's mean scores (in [0, 1]) and the paired
  gain final − initial, with 95% Student-t intervals (:func:`gcr.bench.stats.mean_interval`),
  and ``critic_gain``: the loop critic's gain on the very same prompts, side by side;
* ``win_rate``: prompts where the judge scores final above initial (Wilson interval);
* ``agreement``: prompts where the critic and the judge agree on which of the two
  images is better (both up, both down, or both tied within 1e-9), with a Wilson
  interval, and the full 3×3 table of directions;
* ``suspected_reward_hacking``: prompts where the critic's reward rose and the
  judge's score fell: the loop found something the critic likes and the judge
  does not. Ids sorted by the judge's fall, largest first;
* ``baseline``: against the best-of-n baseline's pick, the judge's and the critic's
  gain of refinement (final − baseline) with intervals and the agreement on
  which is better;
* ``failed``: prompts where the judge failed on an image (left out, never scored 0).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from gcr.bench.stats import WIN_EPSILON, _compare, mean_interval, rate

GALLERY_SIZE = 6


def _direction(delta: float) -> str:
    if delta > WIN_EPSILON:
        return "up"
    if delta < -WIN_EPSILON:
        return "down"
    return "tie"


def _score(judgement: Mapping[str, Any] | None, image: str) -> float | None:
    verdict = (judgement or {}).get(image) or {}
    return verdict.get("score") if verdict.get("status") == "ok" else None


def _agreement(pairs: Sequence[tuple[float, float]]) -> dict[str, Any]:
    """``pairs`` of (critic delta, judge delta): how often the two point the same way."""
    table = Counter(f"critic_{_direction(c)}_judge_{_direction(j)}" for c, j in pairs)
    agree = sum(1 for c, j in pairs if _direction(c) == _direction(j))
    return {**rate(agree, len(pairs)), "table": dict(sorted(table.items()))}


def judge_figures(
    rows: Sequence[Mapping[str, Any]],
    baselines: Mapping[str, Mapping[str, Any]],
    judgements: Mapping[tuple[str, str], Mapping[str, Any]],
) -> dict[str, Any] | None:
    """The ``judges`` section of the summary (None when no judge has scored anything)."""
    identities: list[str] = []
    specs: dict[str, str] = {}
    for (_, identity), record in sorted(judgements.items()):
        if identity not in identities:
            identities.append(identity)
            specs[identity] = str(record.get("spec") or identity)
    if not identities:
        return None
    per_judge = [
        _one_judge(identity, specs[identity], rows, baselines, judgements) for identity in identities
    ]
    hacked = sorted({i for j in per_judge for i in j["suspected_reward_hacking"]["ids"]})
    return {
        "judges": per_judge,
        "suspected_reward_hacking": {"count": len(hacked), "ids": hacked},
    }


def _one_judge(
    identity: str,
    spec: str,
    rows: Sequence[Mapping[str, Any]],
    baselines: Mapping[str, Mapping[str, Any]],
    judgements: Mapping[tuple[str, str], Mapping[str, Any]],
) -> dict[str, Any]:
    paired: list[tuple[Mapping[str, Any], float, float]] = []
    failed: list[str] = []
    for r in rows:
        j = judgements.get((r["id"], identity))
        if j is None:
            continue
        initial, final = _score(j, "initial"), _score(j, "final")
        if initial is None or final is None:
            failed.append(r["id"])
            continue
        paired.append((r, initial, final))
    critic_deltas = [r["final_reward"] - r["initial_reward"] for r, _, _ in paired]
    judge_deltas = [f - i for _, i, f in paired]
    hacking = sorted(
        (
            (r["id"], d)
            for (r, _, _), c, d in zip(paired, critic_deltas, judge_deltas, strict=True)
            if c > WIN_EPSILON and d < -WIN_EPSILON
        ),
        key=lambda x: (x[1], x[0]),
    )
    out: dict[str, Any] = {
        "judge": identity,
        "spec": spec,
        "n": len(paired),
        "failed": {"count": len(failed), "ids": sorted(failed)},
        "initial": mean_interval([i for _, i, _ in paired]),
        "final": mean_interval([f for _, _, f in paired]),
        "gain": mean_interval(judge_deltas),
        "critic_gain": mean_interval(critic_deltas),
        "win_rate": _compare((f, i) for _, i, f in paired),
        "agreement": _agreement(list(zip(critic_deltas, judge_deltas, strict=True))),
        "suspected_reward_hacking": {
            "count": len(hacking),
            "ids": [i for i, _ in hacking],
            "judge_drops": {i: d for i, d in hacking},
        },
        "baseline": _baseline(identity, paired, baselines, judgements),
    }
    return out


def _baseline(
    identity: str,
    paired: Sequence[tuple[Mapping[str, Any], float, float]],
    baselines: Mapping[str, Mapping[str, Any]],
    judgements: Mapping[tuple[str, str], Mapping[str, Any]],
) -> dict[str, Any] | None:
    rows = []
    for r, _, final in paired:
        base = baselines.get(r["id"]) or {}
        judged = _score(judgements.get((r["id"], identity)), "baseline")
        if base.get("status") != "ok" or base.get("best_reward") is None or judged is None:
            continue
        rows.append((r["final_reward"] - base["best_reward"], final - judged))
    if not rows:
        return None
    return {
        "n": len(rows),
        "gain": mean_interval([j for _, j in rows]),
        "critic_gain": mean_interval([c for c, _ in rows]),
        "win_rate": _compare((j, 0.0) for _, j in rows),
        "agreement": _agreement(rows),
    }


def hacking_gallery(figures: Mapping[str, Any] | None, size: int = GALLERY_SIZE) -> list[tuple[str, str]]:
    """(prompt id, judge identity) pairs to show, the largest judge falls first, one card per prompt."""
    if not figures:
        return []
    drops = [
        (d, i, j["judge"])
        for j in figures["judges"]
        for i, d in j["suspected_reward_hacking"]["judge_drops"].items()
    ]
    seen: set[str] = set()
    out = []
    for _, case_id, judge in sorted(drops):
        if case_id not in seen:
            seen.add(case_id)
            out.append((case_id, judge))
    return out[:size]


def veto_figures(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """How often the cross-judge veto checked, vetoed or failed (None when no run had a veto)."""
    checks = [(r["id"], v) for r in rows for v in (r.get("vetoes") or [])]
    if not checks:
        return None
    statuses = Counter(v["status"] for _, v in checks)
    return {
        "judge": checks[0][1].get("judge"),
        "checks": len(checks),
        "vetoed": statuses.get("vetoed", 0),
        "accepted": statuses.get("accepted", 0),
        "failed": statuses.get("failed", 0),
        "prompts_vetoed": sorted({i for i, v in checks if v["status"] == "vetoed"}),
    }
