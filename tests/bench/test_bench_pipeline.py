"""The pipelined runner: records, overlap of generator and critic, failures, resume, binding settings."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from benchkit import PHRASES, PixelCritic, PixelGenerator, components, write_jsonl

from gcr.agent.runner import RunSpec
from gcr.bench.pipeline import BenchSettings, run_bench
from gcr.bench.prompt_files import load_prompt_set
from gcr.bench.stages import intersect, merge_intervals, total_length
from gcr.errors import CriticUnavailableError, RunError


def template(**context: object) -> RunSpec:
    defaults = {"max_rounds": 3, "target_reward": 1.0, "candidates": 1, "patience": 5}
    return RunSpec(prompt="", context={**defaults, **context})


def run(
    prompt_set,
    out: Path,
    gen: PixelGenerator,
    critic: object,
    spec: RunSpec | None = None,
    cache_dir: Path | None = None,
    **settings: object,
):
    return asyncio.run(
        run_bench(
            prompt_set,
            spec or template(),
            str(out),
            BenchSettings(**settings),  # type: ignore[arg-type]
            load=lambda s, t: components(gen, critic, cache_dir),
        )
    )


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def prompts(tmp_path: Path):
    rows = [
        {"id": f"q{i}", "prompt": f"scene {i} [base {b}]", "category": "even" if i % 2 == 0 else "odd"}
        for i, b in enumerate((2.5, 4, 1.75, 2.0, 3.25, 2.5))
    ]
    return load_prompt_set(write_jsonl(tmp_path / "p.jsonl", rows))


def test_records_follow_the_script(tmp_path: Path, prompts) -> None:
    gen, critic = PixelGenerator(), PixelCritic()
    outcome = run(prompts, tmp_path / "out", gen, critic, concurrency=3)
    assert outcome.ran == 6 and outcome.failed == 0 and outcome.complete
    records = {r["id"]: r for r in lines(tmp_path / "out" / "results.jsonl")}
    assert len(records) == 6
    q0 = records["q0"]  # 2.5 -> +golden light 3.25 -> +sharp focus 4.0: target reached in round 2
    assert q0["round_rewards"] == pytest.approx([0.5, 0.75, 1.0])
    assert (q0["initial_reward"], q0["final_reward"], q0["rounds"], q0["stop_reason"]) == (
        0.5,
        1.0,
        3,
        "target_reward",
    )
    assert q0["prompts"][-1] == f"scene 0 [base 2.5], {PHRASES[0]}, {PHRASES[1]}"
    assert q0["initial_scores"]["text_faithfulness"] == 2.5 and q0["final_scores"]["physical_quality"] == 4.0
    assert (tmp_path / "out" / q0["best_image"]).is_file() and q0[
        "best_image"
    ] == "runs/q0/rounds/r02/c00.png"
    assert records["q1"]["rounds"] == 1 and records["q1"]["stop_reason"] == "target_reward"
    assert records["q2"]["stop_reason"] == "max_rounds" and records["q2"]["final_reward"] == pytest.approx(
        0.75
    )
    # Every run folder is a regular gcr refine run folder.
    assert (tmp_path / "out" / "runs" / "q2" / "checkpoints.sqlite").is_file()
    assert json.loads((tmp_path / "out" / "runs" / "q2" / "summary.json").read_text())["rounds"] == 3
    assert len(gen.calls) == sum(r["generations"] for r in records.values()) == critic.calls
    session = outcome.session
    assert session["generator_calls"] == len(gen.calls) and session["results"] == 6


def test_generator_and_critic_overlap(tmp_path: Path, prompts) -> None:
    """With critiques in flight the generator keeps working; run serially, the two never overlap."""
    spec = template(max_rounds=2, target_reward=1.0)

    def measure(out: Path, **settings: object) -> tuple[PixelGenerator, PixelCritic, dict]:
        gen, critic = PixelGenerator(hold=0.05), PixelCritic(latency=0.25)
        outcome = run(prompts, out, gen, critic, spec, **settings)
        return gen, critic, outcome.session

    gen, critic, session = measure(tmp_path / "pipelined", concurrency=4)
    assert gen.peak_active == 1  # one generator call at a time, whatever the prompts in flight
    critic_busy = merge_intervals(critic.intervals)
    # Generator calls that started while some critique was in flight (measured by the fakes themselves).
    during = sum(1 for start, _ in gen.intervals if any(s < start < e for s, e in critic.intervals))
    assert during >= len(gen.intervals) // 2
    assert total_length(intersect(merge_intervals(gen.intervals), critic_busy)) > 0.3 * total_length(
        merge_intervals(gen.intervals)
    )
    assert session["critic_peak_in_flight"] >= 2
    assert session["overlap_s"] > 0.3 * session["generator_busy_s"]

    gen, critic, session = measure(tmp_path / "serial", concurrency=1, in_flight=1)
    during = sum(1 for start, _ in gen.intervals if any(s < start < e for s, e in critic.intervals))
    assert during == 0 and session["critic_peak_in_flight"] == 1
    assert session["overlap_s"] == pytest.approx(0.0, abs=1e-3)


def test_critic_concurrency_is_bounded(tmp_path: Path, prompts) -> None:
    gen, critic = PixelGenerator(), PixelCritic(latency=0.05)
    spec = template(candidates=3, max_rounds=1)
    outcome = run(prompts, tmp_path / "out", gen, critic, spec, concurrency=2, in_flight=6)
    from gcr.bench.stages import peak_concurrency

    assert peak_concurrency(critic.intervals) == 2 == outcome.session["critic_peak_in_flight"]


def test_failed_prompts_are_recorded_and_retried(tmp_path: Path) -> None:
    rows = [
        {"id": "ok", "prompt": "fine [base 3]"},
        {"id": "gen", "prompt": "boom [fail-gen]"},
        {"id": "critic", "prompt": "eh [unreadable]"},
    ]
    prompt_set = load_prompt_set(write_jsonl(tmp_path / "p.jsonl", rows))
    outcome = run(prompt_set, tmp_path / "out", PixelGenerator(), PixelCritic())
    assert (outcome.ran, outcome.failed, outcome.complete) == (1, 2, False)
    records = {r["id"]: r for r in lines(tmp_path / "out" / "results.jsonl")}
    assert records["gen"]["status"] == "failed" and records["gen"]["error"]["type"] == "GeneratorError"
    assert records["critic"]["error"]["type"] == "CriticResponseError"
    assert "no candidate of round 0 could be scored" in records["critic"]["error"]["message"]

    gen = PixelGenerator()
    again = run(prompt_set, tmp_path / "out", gen, PixelCritic())
    assert again.reused == 1 and again.failed == 2 and not any(p.startswith("fine") for p, _ in gen.calls)
    # The failed records of the first run were compacted away: one record per prompt.
    ids = [r["id"] for r in lines(tmp_path / "out" / "results.jsonl")]
    assert sorted(ids) == ["critic", "gen", "ok"]


def test_resume_after_the_critic_goes_away(tmp_path: Path, prompts) -> None:
    """Finished prompts are skipped; the interrupted one continues from its checkpoint."""
    out = tmp_path / "out"
    first_gen = PixelGenerator()
    spec = template(max_rounds=2)
    with pytest.raises(CriticUnavailableError):
        # One prompt at a time: q0 takes critic calls 1-2, q1 (target in round 0) call 3, q2 call 4,
        # and q2's round-1 critique (call 5) fails after its image was generated.
        run(prompts, out, first_gen, PixelCritic(fail_after=4), spec, concurrency=1, in_flight=1)
    finished = [r["id"] for r in lines(out / "results.jsonl")]
    assert finished == ["q0", "q1"]
    assert [p for p, _ in first_gen.calls][-1].startswith("scene 2")

    gen = PixelGenerator()
    outcome = run(prompts, out, gen, PixelCritic(), spec, concurrency=1, in_flight=1)
    assert outcome.reused == 2 and outcome.ran == 4 and outcome.complete
    records = lines(out / "results.jsonl")
    assert sorted(r["id"] for r in records) == [f"q{i}" for i in range(6)]  # no duplicates
    regenerated = {p.split(" [")[0] for p, _ in gen.calls}
    assert regenerated == {"scene 3", "scene 4", "scene 5"}  # q0, q1 and q2's two rounds were not redone
    q2 = next(r for r in records if r["id"] == "q2")
    assert q2["rounds"] == 2 and q2["generations"] == 2


def test_a_folder_is_bound_to_its_settings(tmp_path: Path, prompts) -> None:
    out = tmp_path / "out"
    run(prompts, out, PixelGenerator(), PixelCritic(), template(max_rounds=1), limit=1)
    with pytest.raises(RunError, match=r"refine\.max_rounds was 1, now 2"):
        run(prompts, out, PixelGenerator(), PixelCritic(), template(max_rounds=2), limit=1)
    other = load_prompt_set(write_jsonl(tmp_path / "o.jsonl", [{"prompt": "something else"}]))
    with pytest.raises(RunError, match=r"prompt_set\.cases was 6, now 1"):
        run(other, out, PixelGenerator(), PixelCritic(), template(max_rounds=1))
    # A larger --limit continues the same benchmark.
    outcome = run(prompts, out, PixelGenerator(), PixelCritic(), template(max_rounds=1), limit=3)
    assert (outcome.reused, outcome.ran) == (1, 2)


def test_edit_cases_run_with_materialized_sources(tmp_path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (32, 32), (10, 200, 10)).save(tmp_path / "src.png")
    rows = [{"id": "e1", "instruction": "make it blue [base 3.25]", "image": "src.png"}]
    prompt_set = load_prompt_set(write_jsonl(tmp_path / "e.jsonl", rows))
    outcome = run(prompt_set, tmp_path / "out", PixelGenerator(task="edit"), PixelCritic(), template())
    record = outcome.results["e1"]
    assert record["task"] == "edit" and record["final_reward"] == pytest.approx(1.0)
    assert set(record["final_scores"]) == {
        "text_faithfulness",
        "image_faithfulness",
        "physical_quality",
        "text_rendering",
    }
    source = tmp_path / "out" / "inputs" / "e1" / "source-0.png"
    assert Image.open(source).getpixel((0, 0)) == (10, 200, 10)


def test_generator_must_match_the_prompt_set_task(tmp_path: Path, prompts) -> None:
    from gcr.errors import InputError

    with pytest.raises(InputError, match="holds t2i cases but the generator pixel is for edit"):
        run(prompts, tmp_path / "out", PixelGenerator(task="edit"), PixelCritic())
    assert not (tmp_path / "out" / "results.jsonl").exists() and not (tmp_path / "out" / "runs").exists()


def test_http_critic_backend_takes_the_bench_concurrency(tmp_path: Path, prompts) -> None:
    from benchkit import PixelCriticServer, PixelScript

    from gcr.critic.loading import load_critic

    with PixelCriticServer(PixelScript(), latency=0.1) as server:
        critic = load_critic(server.url)  # the backend's own default limit is 16
        critic.backend.max_concurrency = 2  # as if loaded with a low limit
        spec = template(candidates=3, max_rounds=1)
        run(prompts, tmp_path / "out", PixelGenerator(), critic, spec, concurrency=6, in_flight=6)
        assert critic.backend.max_concurrency == 6 and server.max_in_flight == 6
