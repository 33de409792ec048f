"""64 critic requests in flight at once: every prompt's record lands once, nothing is done twice.

The scripted server holds each critique until all 64 have arrived (a barrier), so the test proves
the benchmark really keeps 64 requests open together through gcr's HTTP critic, with 64 runs and
their 64 checkpoint databases open in one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections import Counter
from pathlib import Path

from benchkit import PixelCriticServer, PixelGenerator, PixelScript, components, write_jsonl

from gcr.agent.runner import RunSpec
from gcr.bench.pipeline import BenchSettings, run_bench
from gcr.bench.prompt_files import load_prompt_set
from gcr.critic.loading import load_critic
from stubs.critic_server import RecordedRequest, StubReply

WIDTH = 64


def test_64_critiques_in_flight_at_once(tmp_path: Path) -> None:
    rows = [{"id": f"c{i:02d}", "prompt": f"crowd {i} [base 2.5]"} for i in range(WIDTH)]
    prompt_set = load_prompt_set(write_jsonl(tmp_path / "p.jsonl", rows))
    gate = threading.Barrier(WIDTH, timeout=60)

    with PixelCriticServer(PixelScript()) as server:
        scripted = server.responder

        def all_together(request: RecordedRequest) -> StubReply:
            # The first WIDTH critiques wait here for each other; a timed-out gate answers at once.
            with contextlib.suppress(threading.BrokenBarrierError):
                gate.wait()
            return scripted(request)  # type: ignore[misc]

        server.responder = all_together
        generator = PixelGenerator()
        critic = load_critic(server.url, max_retries=0, timeout=120)
        outcome = asyncio.run(
            run_bench(
                prompt_set,
                RunSpec(prompt="", context={"max_rounds": 1, "target_reward": 1.0}),
                str(tmp_path / "out"),
                BenchSettings(concurrency=WIDTH),
                load=lambda s, t: components(generator, critic),
            )
        )
        requests = len(server.chat_requests)

    assert not gate.broken, "the benchmark never had 64 critiques in flight together"
    assert outcome.failed == 0 and outcome.complete and outcome.ran == WIDTH
    assert requests == WIDTH and outcome.session["critic_peak_in_flight"] == WIDTH
    records = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in records) == [r["id"] for r in rows]  # each prompt exactly once
    assert all(r["status"] == "ok" for r in records)
    assert Counter(generator.calls).most_common(1)[0][1] == 1 and len(generator.calls) == WIDTH
