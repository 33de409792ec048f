"""The best-of-n baseline: the same number of generations as refinement used, fresh seeds, best kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchkit import PixelCritic, PixelGenerator, PixelScript, write_jsonl
from test_bench_pipeline import run, template

from gcr.agent.runner import RunSpec
from gcr.bench.baseline import baseline_spec
from gcr.bench.prompt_files import load_prompt_set
from gcr.errors import ConfigError


def test_baseline_spec_is_one_round_of_n_candidates() -> None:
    spec = RunSpec(
        prompt="a cat",
        context={
            "candidates": 2,
            "max_rounds": 4,
            "seed": 7,
            "seed_policy": "per-round",
            "target_reward": 0.9,
            "max_generations": 8,
        },
    )
    base = baseline_spec(spec, 6)
    context = base.context
    assert (context.candidates, context.max_rounds, context.target_reward, context.max_generations) == (
        6,
        1,
        None,
        None,
    )
    assert [context.seed_for(0, i) for i in range(6)] == [7, 8, 9, 10, 11, 12]
    assert base.prompt == "a cat" and base.thread_id == "baseline" and spec.context.candidates == 2
    with pytest.raises(ConfigError, match="at least one generation"):
        baseline_spec(spec, 0)


def test_same_budget_fresh_seeds_best_kept(tmp_path: Path) -> None:
    script = PixelScript(jitter=0.25)  # seed % 3 == 2 scores 0.25 higher, seed % 3 == 0 scores 0.25 lower
    rows = [
        {"id": "a", "prompt": "alpha [base 2]"},
        {"id": "b", "prompt": "beta [base 3.5]"},
        {"id": "c", "prompt": "gamma [base 1.5]"},
    ]
    prompt_set = load_prompt_set(write_jsonl(tmp_path / "p.jsonl", rows))
    gen = PixelGenerator()
    spec = template(candidates=2, max_rounds=3, target_reward=1.0, seed=3)
    outcome = run(
        prompt_set,
        tmp_path / "out",
        gen,
        PixelCritic(script),
        spec,
        cache_dir=tmp_path / "cache",
        baseline="best-of-n",
        concurrency=2,
    )
    assert outcome.complete and len(outcome.baselines) == 3
    baseline_calls = [(p, s) for p, s in gen.calls if p in {r["prompt"] for r in rows}]
    for row in rows:
        refine, base = outcome.results[row["id"]], outcome.baselines[row["id"]]
        n = refine["generations"]
        assert base["generations"] == n == 2 * refine["rounds"]
        trajectory = [
            json.loads(line)
            for line in (tmp_path / "out" / base["run_dir"] / "trajectory.jsonl").read_text().splitlines()
        ]
        assert len(trajectory) == 1 and trajectory[0]["seeds"] == list(range(3, 3 + n))
        assert trajectory[0]["prompt"] == row["prompt"]
        expected = [script.reward(row["prompt"], 0, seed) for seed in range(3, 3 + n)]
        assert base["rewards"] == pytest.approx(expected)
        assert base["best_reward"] == pytest.approx(max(expected))
        # Round 0 of the refine run is the baseline's first two images: found in the cache, still counted.
        assert base["cached_generations"] == 2
        seeds = sorted(s for p, s in baseline_calls if p == row["prompt"])
        assert seeds == list(range(3, 3 + n))  # each plain image generated exactly once overall
    total_refine = sum(r["generations"] for r in outcome.results.values())
    assert len(gen.calls) == total_refine + sum(b["generations"] - 2 for b in outcome.baselines.values())

    # A rerun finds everything done.
    gen2 = PixelGenerator()
    again = run(prompt_set, tmp_path / "out", gen2, PixelCritic(script), spec, baseline="best-of-n")
    assert again.ran == 0 and gen2.calls == []


def test_baseline_added_to_a_finished_benchmark(tmp_path: Path) -> None:
    prompt_set = load_prompt_set(write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "prompt": "alpha [base 2]"}]))
    spec = template(max_rounds=3)
    first = run(prompt_set, tmp_path / "out", PixelGenerator(), PixelCritic(), spec)
    assert first.complete and first.results["a"]["generations"] == 3
    gen = PixelGenerator()
    later = run(prompt_set, tmp_path / "out", gen, PixelCritic(), spec, baseline="best-of-n")
    assert later.ran == 0 and later.complete and later.baselines["a"]["generations"] == 3
    assert sorted(gen.calls) == [("alpha [base 2]", 0), ("alpha [base 2]", 1), ("alpha [base 2]", 2)]
