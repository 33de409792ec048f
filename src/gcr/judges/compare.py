"""Judge one finished refine run: the round-0 best against the final best (``gcr refine --judge``).

The result (``judges.json`` in the run folder) holds, per judge, both verdicts,
the judge's gain next to the critic's, and whether the two disagree in the way
that suggests reward hacking (critic up, judge down). A failed verdict is kept
as a failure, and that judge then reports no gain.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gcr.images import load_image
from gcr.judges.base import Judge
from gcr.judges.runner import JudgePanel

EPSILON = 1e-9


def initial_and_final(values: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any]] | None:
    """The round-0 best and the run's best candidate records of a finished run's state."""
    rounds = list(values.get("rounds") or [])
    best = values.get("best")
    if not rounds or best is None:
        return None
    first = rounds[0]
    initial = next(
        (c for c in values.get("candidates") or [] if c["round"] == 0 and c["index"] == first["best_index"]),
        None,
    )
    return None if initial is None else (initial, best)


async def judge_run(
    values: Mapping[str, Any],
    judges: Sequence[Judge],
    *,
    specs: Sequence[str] | None = None,
    cache_dir: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Each judge's verdicts on the round-0 best and the final best of a finished run."""
    pair = initial_and_final(values)
    if pair is None:
        return []
    initial, final = pair
    prompt = str(values.get("prompt") or initial["prompt"])
    # The state's paths are relative to its run folder (older runs: absolute, which joining keeps).
    folder = Path(str(values.get("run_dir") or "."))
    sources_paths = [folder / p for p in values.get("source_images") or []]
    sources, first, last = await asyncio.to_thread(
        lambda: (
            [load_image(p) for p in sources_paths],
            load_image(folder / initial["image"]),
            load_image(folder / final["image"]),
        )
    )
    panel = JudgePanel(judges, cache_dir=cache_dir)
    specs = list(specs) if specs is not None else [j.identity for j in judges]
    out = []
    critic_gain = float(final["reward"]) - float(initial["reward"])
    for judge, spec in zip(judges, specs, strict=True):
        before, after = await asyncio.gather(
            panel.verdict(judge, prompt, first, sources), panel.verdict(judge, prompt, last, sources)
        )
        gain = None if before.score is None or after.score is None else after.score - before.score
        out.append(
            {
                "judge": judge.identity,
                "spec": spec,
                "initial": before.to_dict(),
                "final": after.to_dict(),
                "gain": gain,
                "critic_gain": critic_gain,
                "suspected_reward_hacking": gain is not None and critic_gain > EPSILON and gain < -EPSILON,
            }
        )
    return out
