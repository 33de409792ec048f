"""The refine graph end to end with a fast fake generator and the prompt-aware scripted critic.

The critic here is the in-process fake; how the graph handles what gcr's real Critic does (re-asks,
unreadable or cut-off answers, server failures) is tested over HTTP in test_graph_critic.py.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from PIL import Image
from refine_harness import FakeGenerator, Harness

from gcr.agent import RefineContext
from gcr.agent.stopping import StopReason
from gcr.errors import GeneratorOOMError, ImageError, InputError
from gcr.task import Task
from stubs.prompt_aware_critic import PromptAwareScript


def run(harness: Harness, prompt: str = "a cat", builder_kwargs=None, **settings):
    graph = harness.builder(**(builder_kwargs or {})).compile()
    return asyncio.run(graph.ainvoke({"prompt": prompt}, context=harness.context(**settings)))


def rewards(out) -> list[float]:
    return [r["best_reward"] for r in out["rounds"]]


def test_loop_follows_the_critic_improves_and_stops_when_nothing_new(harness):
    out = run(harness, max_rounds=10, candidates=2)
    assert [r["prompt"] for r in out["rounds"]] == [
        "a cat",
        "a cat, golden light",
        "a cat, golden light, sharp focus",
    ]
    assert rewards(out) == sorted(rewards(out)) and rewards(out)[-1] > rewards(out)[0] + 0.4
    assert out["stop_reason"] == StopReason.NOTHING_NEW
    assert "round 2 again" in out["stop_detail"]
    assert out["best"]["round"] == 2
    assert harness.inner.calls == 6  # 3 rounds x 2 candidates
    assert [r["prompt_origin"] for r in out["rounds"]] == ["user", "critic", "critic"]


def test_stops_at_target_reward(harness):
    out = run(harness, max_rounds=10, target_reward=0.5)
    assert out["stop_reason"] == StopReason.TARGET_REWARD
    assert len(out["rounds"]) == 2 and out["best"]["reward"] >= 0.5


def test_stops_when_every_dimension_reaches_its_target(harness):
    out = run(harness, max_rounds=10, dimension_target=3.0)
    assert out["stop_reason"] == StopReason.DIMENSION_TARGET
    assert len(out["rounds"]) == 3
    scores = out["rounds"][-1]["best_scores"]
    assert scores["text_faithfulness"] >= 3.0 and scores["physical_quality"] >= 3.0


def test_stops_on_plateau(tmp_path):
    script = PromptAwareScript(
        wanted=[("golden light", 0.75), ("soft shadows", 0.01), ("film grain", 0.01), ("wide angle", 0.01)]
    )
    out = run(Harness(tmp_path, script), max_rounds=10, min_delta=0.02, patience=2)
    assert out["stop_reason"] == StopReason.PLATEAU
    assert len(out["rounds"]) == 4  # the gain of round 1, then two flat rounds


def test_stops_at_max_rounds(harness):
    out = run(harness, max_rounds=2)
    assert out["stop_reason"] == StopReason.MAX_ROUNDS
    assert len(out["rounds"]) == 2


def test_stops_when_the_generation_budget_is_spent(harness):
    out = run(harness, max_rounds=10, candidates=2, max_generations=5)
    assert out["stop_reason"] == StopReason.GENERATION_BUDGET
    assert harness.inner.calls == 4


def test_stops_when_the_wall_time_budget_is_spent(harness):
    harness.inner.delay = 0.05
    out = run(harness, max_rounds=10, max_wall_s=0.08)
    assert out["stop_reason"] == StopReason.WALL_TIME
    assert len(out["rounds"]) == 1


def test_best_image_of_the_run_is_kept_when_a_later_round_is_worse(tmp_path):
    script = PromptAwareScript(
        wanted=[("golden light", 0.75), ("neon glow", 0.0)], penalties={"neon glow": 1.0}
    )
    harness = Harness(tmp_path, script)
    out = run(harness, max_rounds=10)
    assert rewards(out)[2] < rewards(out)[1]
    assert out["best"]["round"] == 1
    assert out["best"]["prompt"] == "a cat, golden light"
    # Records hold paths relative to the run folder (so it can move); the summary's are absolute.
    assert out["best"]["image"] == "rounds/r01/c00.png"
    summary = json.loads((Path(out["run_dir"]) / "summary.json").read_text())
    assert summary["best"]["image"] == str(Path(out["run_dir"]) / out["best"]["image"])
    assert summary["final_reward"] == out["best"]["reward"]
    assert out["rounds"][2]["new_best"] is False


def test_ties_keep_the_earlier_round(tmp_path):
    script = PromptAwareScript(wanted=[("golden light", 0.0), ("sharp focus", 0.0)], jitter=0.0)
    out = run(Harness(tmp_path, script), max_rounds=10, patience=1)
    assert out["stop_reason"] == StopReason.PLATEAU
    assert len(set(rewards(out))) == 1
    assert out["best"]["round"] == 0


def test_candidates_fan_out_and_the_round_best_is_kept(harness):
    out = run(harness, max_rounds=1, candidates=3)
    record = out["rounds"][0]
    assert record["seeds"] == [0, 1, 2]
    assert len(record["rewards"]) == 3 and len(set(record["rewards"])) == 3
    assert record["best_index"] == 2  # the script's per-seed jitter favours seed 2
    assert out["best"]["seed"] == 2
    run_dir = Path(out["run_dir"])
    for i in range(3):
        assert (run_dir / "rounds" / "r00" / f"c{i:02d}.png").is_file()
        assert json.loads((run_dir / "rounds" / "r00" / f"c{i:02d}.critique.json").read_text())["judgements"]
        assert "# Detailed Judgement" in (run_dir / "rounds" / "r00" / f"c{i:02d}.critique.txt").read_text()


def test_seed_policy(harness):
    fixed = run(harness, max_rounds=2, candidates=2, seed=10)
    assert [r["seeds"] for r in fixed["rounds"]] == [[10, 11], [10, 11]]
    fresh = run(harness, max_rounds=2, candidates=2, seed=10, seed_policy="per-round")
    assert [r["seeds"] for r in fresh["rounds"]] == [[10, 11], [12, 13]]


def harness_candidates(out):
    lines = (Path(out["run_dir"]) / "trajectory.jsonl").read_text().splitlines()
    return [c for line in lines for c in json.loads(line)["candidates"]]


def test_guard_rejection_keeps_the_prompt_and_stops(tmp_path):
    script = PromptAwareScript(refinements={"a red cat on a table": "a mountain landscape at dawn"})
    out = run(Harness(tmp_path, script), prompt="a red cat on a table", max_rounds=5)
    refinement = out["rounds"][0]["refinement"]
    assert refinement["accepted"] is False
    assert refinement["proposed"] == "a mountain landscape at dawn"
    assert refinement["next_prompt"] == "a red cat on a table"
    assert "keeps 0 of 3 words" in refinement["reason"]
    assert out["stop_reason"] == StopReason.NOTHING_NEW
    assert "turned down" in out["stop_detail"]


def test_a_repeated_run_reuses_cached_images_and_critiques(harness):
    first = run(harness, max_rounds=3, candidates=2)
    calls, critiques = harness.inner.calls, harness.critic.calls
    second = run(harness, max_rounds=3, candidates=2)
    assert harness.inner.calls == calls and harness.critic.calls == critiques
    assert rewards(first) == rewards(second)
    cached = harness_candidates(second)
    assert all(c["cached_generation"] and c["cached_critique"] for c in cached)
    best_first, best_second = (Path(out["summary"]["best"]["image"]) for out in (first, second))
    assert best_second.read_bytes() == best_first.read_bytes()


def test_without_a_cache_everything_is_generated(harness):
    run(harness, max_rounds=2, builder_kwargs={"cache": None})
    run(harness, max_rounds=2, builder_kwargs={"cache": None})
    assert harness.inner.calls == 4


def test_editing_uses_the_source_image(tmp_path):
    harness = Harness(tmp_path, task=Task.EDIT)
    source = tmp_path / "src.jpg"
    Image.new("RGB", (16, 16), (0, 128, 255)).save(source)
    graph = harness.builder().compile()
    out = asyncio.run(
        graph.ainvoke(
            {"prompt": "make the sky purple", "source_images": [str(source)]},
            context=harness.context(max_rounds=2),
        )
    )
    copy = Path(out["run_dir"]) / "inputs" / "source-0.png"
    assert copy.is_file()
    assert out["summary"]["source_images"] == [str(copy)]
    assert "image_faithfulness" in out["rounds"][0]["best_scores"]


def test_bad_input_is_refused_clearly(tmp_path):
    harness = Harness(tmp_path)
    with pytest.raises(InputError, match="the prompt is empty"):
        run(harness, prompt="   ")
    graph = harness.builder().compile()
    source = tmp_path / "src.png"
    Image.new("RGB", (8, 8)).save(source)
    with pytest.raises(InputError, match="text-to-image model and takes no source image"):
        asyncio.run(graph.ainvoke({"prompt": "x", "source_images": [str(source)]}, context=harness.context()))
    editor = Harness(tmp_path / "e", task=Task.EDIT).builder().compile()
    with pytest.raises(InputError, match="give the source image"):
        asyncio.run(editor.ainvoke({"prompt": "make it blue"}, context=harness.context()))
    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    with pytest.raises(ImageError, match="not an image"):
        asyncio.run(
            editor.ainvoke(
                {"prompt": "make it blue", "source_images": [str(broken)]}, context=harness.context()
            )
        )


def test_generator_out_of_memory_is_a_clear_error(tmp_path):
    harness = Harness(tmp_path)
    harness.inner.error = RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
    with pytest.raises(GeneratorOOMError, match="smaller --size, fewer --candidates, or CPU offload"):
        run(harness, width=1024, height=1024)


def test_settings_are_validated():
    from gcr.errors import ConfigError

    with pytest.raises(ConfigError, match="candidates must be at least 1"):
        RefineContext(candidates=0)
    with pytest.raises(ConfigError, match="smaller than one round"):
        RefineContext(candidates=4, max_generations=3)
    with pytest.raises(ConfigError, match="unknown setting 'rounds'"):
        RefineContext.from_dict({"rounds": 3})


def test_fake_generator_is_deterministic():
    gen = FakeGenerator()
    from gcr.generators.base import GenerationRequest

    a = gen.generate(GenerationRequest(prompt="x", seed=1)).images[0]
    b = gen.generate(GenerationRequest(prompt="x", seed=1)).images[0]
    c = gen.generate(GenerationRequest(prompt="x", seed=2)).images[0]
    assert a.tobytes() == b.tobytes() != c.tobytes()
