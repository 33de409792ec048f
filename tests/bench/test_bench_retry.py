"""A rerun after a broken critic or generator redoes the failed work, and only that.

The critic is gcr's real HTTP critic against the scripted stub server, switched from broken to
healthy between the two runs; its request log says whether the rerun really asked again.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from benchkit import PixelCritic, PixelCriticServer, PixelGenerator, PixelScript, components, write_jsonl

from gcr.agent.runner import RunSpec
from gcr.bench.pipeline import BenchSettings, run_bench
from gcr.bench.prompt_files import load_prompt_set
from gcr.critic.loading import load_critic
from gcr.errors import GeneratorError
from gcr.generators.base import GenerationRequest, GenerationResult
from stubs.critic_server import StubReply

ROWS = [{"id": f"q{i}", "prompt": f"scene {i} [base 2.5]"} for i in range(3)]


def template() -> RunSpec:
    return RunSpec(prompt="", context={"max_rounds": 2, "target_reward": 1.0, "candidates": 2, "patience": 5})


def bench(prompt_set, out: Path, generator, critic) -> object:
    return asyncio.run(
        run_bench(
            prompt_set,
            template(),
            str(out),
            BenchSettings(concurrency=2),
            load=lambda s, t: components(generator, critic),
        )
    )


def records(out: Path) -> dict[str, dict]:
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line.strip()]
    return {r["id"]: r for r in rows}


def test_a_rerun_after_a_garbling_critic_asks_the_healthy_critic_again(tmp_path: Path) -> None:
    prompt_set = load_prompt_set(write_jsonl(tmp_path / "p.jsonl", ROWS))
    out = tmp_path / "out"
    with PixelCriticServer(PixelScript()) as server:
        healthy = server.responder
        server.responder = lambda request: StubReply.ok("I would rather not judge this picture.")
        first_gen = PixelGenerator()
        first = bench(prompt_set, out, first_gen, load_critic(server.url, max_retries=0))
        assert first.failed == 3 and not first.complete
        assert all(r["status"] == "failed" for r in records(out).values())
        assert len(first_gen.calls) == 6  # round 0 of every prompt, two candidates each

        server.responder = healthy
        server.reset()
        gen = PixelGenerator()
        again = bench(prompt_set, out, gen, load_critic(server.url, max_retries=0))
        asked = len(server.chat_requests)
    assert again.failed == 0 and again.complete
    # Round 0's six images were critiqued again (the broken answers were not replayed from the
    # checkpoints), and round 1 was generated and critiqued: 6 + 6 requests.
    assert asked == 12
    # What succeeded was kept: round 0's images were not generated again.
    assert len(gen.calls) == 6 and all("golden light" in p for p, _ in gen.calls)
    final = records(out)
    assert all(final[r["id"]]["status"] == "ok" and final[r["id"]]["rounds"] == 2 for r in ROWS)


class FlakyGenerator(PixelGenerator):
    """A PixelGenerator that fails while ``broken`` is set."""

    broken = True

    def generate(self, request: GenerationRequest) -> GenerationResult:
        if self.broken:
            raise GeneratorError("the scripted generator is down")
        return super().generate(request)


def test_a_rerun_after_a_failing_generator_generates_again(tmp_path: Path) -> None:
    prompt_set = load_prompt_set(write_jsonl(tmp_path / "p.jsonl", ROWS))
    out = tmp_path / "out"
    with PixelCriticServer(PixelScript()) as server:
        gen = FlakyGenerator()
        first = bench(prompt_set, out, gen, load_critic(server.url, max_retries=0))
        assert first.failed == 3 and not server.chat_requests
        gen.broken = False
        again = bench(prompt_set, out, gen, load_critic(server.url, max_retries=0))
        asked = len(server.chat_requests)
    assert again.failed == 0 and again.complete
    assert len(gen.calls) == 12 and asked == 12  # two rounds of two candidates, three prompts


class PickyGenerator(PixelGenerator):
    """A PixelGenerator that fails on prompts containing ``refuse`` (while it is set)."""

    refuse: str | None = None

    def generate(self, request: GenerationRequest) -> GenerationResult:
        if self.refuse is not None and self.refuse in request.prompt:
            raise GeneratorError(f"the scripted generator refuses {self.refuse!r}")
        return super().generate(request)


def test_a_damaged_checkpoint_fails_its_prompt_and_the_bench_goes_on(tmp_path: Path) -> None:
    rows = [{"id": f"q{i}", "prompt": f"scene {i} [base 2.5]"} for i in range(4)]
    prompt_set = load_prompt_set(write_jsonl(tmp_path / "p.jsonl", rows))
    out = tmp_path / "out"

    def go(generator: PixelGenerator, limit: int) -> object:
        return asyncio.run(
            run_bench(
                prompt_set,
                template(),
                str(out),
                BenchSettings(concurrency=2, limit=limit),
                load=lambda s, t: components(generator, PixelCritic()),
            )
        )

    gen = PickyGenerator()
    gen.refuse = "scene 1"
    first = go(gen, limit=3)
    assert first.failed == 1 and records(out)["q1"]["status"] == "failed", records(out)
    store = out / "runs" / "q1" / "checkpoints.sqlite"
    store.write_bytes(b"garbage, not a database " * 100)

    again = go(PixelGenerator(), limit=4)  # q1 to retry, q3 new
    final = records(out)
    assert again.failed == 1 and final["q3"]["status"] == "ok"
    assert final["q1"]["status"] == "failed" and final["q1"]["error"]["type"] == "RunError"
    assert "cannot be resumed: the checkpoint file is damaged" in final["q1"]["error"]["message"]
