"""Critic throughput: critiques per second against a stub server with a fixed latency, and parser speed.

Part 1 runs the real critic stack (prompt rendering, image downscaling and PNG
data-URL encoding, the OpenAI async client over HTTP, parsing) against the test
suite's scripted stub server, which answers every request with a full critique
after a fixed delay. For each concurrency level it prints critiques per second
and the ratio to the ideal ``concurrency / latency``; a ratio near 1 means the
client keeps the server saturated, a lower one shows client-side cost on this
machine (mostly PNG encoding of the images on the event loop thread).

Part 2 parses every answer in ``tests/critic/corpus/*.md`` (pointwise and
pairwise) repeatedly and prints answers parsed per second.

Run: ``python benchmarks/critic_throughput.py [--latency 0.2] [--levels 1 8 32]
[--per-level 4] [--image-size 1024] [--parse-rounds 50]``. No assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import platform
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the scripted stub server lives with the tests

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from gcr.critic import Critic  # noqa: E402
from gcr.critic.backends.openai_http import OpenAICompatibleBackend  # noqa: E402
from gcr.critic.parser import parse_critique, parse_pairwise  # noqa: E402
from gcr.errors import CritiqueParseError  # noqa: E402
from stubs.critic_server import GOOD_T2I_ANSWER, StubCriticServer, StubReply  # noqa: E402

CORPUS = ROOT / "tests" / "critic" / "corpus"


def test_image(kind: str, size: int, seed: int) -> Image.Image:
    """``photo``: gradients plus sensor-like noise, which PNG compresses about as badly as real
    photos (the costly case); ``flat``: smooth gradients only, which compress to almost nothing."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    pixels = np.stack([x * 255, y * 255, (1 - x) * 255], axis=-1)
    if kind == "photo":
        pixels = pixels + rng.normal(0, 12, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def serve_stub(latency: float, conn: Connection) -> None:
    """Child process: the stub server answering every request after ``latency`` seconds."""
    with StubCriticServer() as stub:
        stub.responder = lambda request: StubReply.ok(GOOD_T2I_ANSWER, delay=latency)
        conn.send(stub.url)
        conn.recv()  # block until the parent is done


async def run_level(url: str, concurrency: int, count: int, images: list[Image.Image]) -> float:
    """Seconds to finish ``count`` critiques with at most ``concurrency`` in flight."""
    backend = OpenAICompatibleBackend(url, model="stub-critic", max_concurrency=concurrency, max_retries=0)
    async with Critic(backend) as critic:
        # Warm the connection pool and the templates so the timing covers steady state.
        await critic.acritique("warm-up", images[0])
        start = time.perf_counter()
        results = await asyncio.gather(
            *(critic.acritique(f"a test image number {i}", images[i % len(images)]) for i in range(count))
        )
        elapsed = time.perf_counter() - start
    assert all(r.score("text_faithfulness") == 3.5 for r in results)
    return elapsed


def bench_http(latency: float, levels: list[int], per_level: int, image_size: int, kinds: list[str]) -> None:
    # The server runs in its own process, so its JSON decoding does not compete for our GIL.
    spawn = multiprocessing.get_context("spawn")
    parent, child = spawn.Pipe()
    server = spawn.Process(target=serve_stub, args=(latency, child), daemon=True)
    server.start()
    url = parent.recv()
    try:
        for kind in kinds:
            images = [test_image(kind, image_size, seed) for seed in range(4)]
            print(f"\n== critiques/s, stub server with {latency * 1000:.0f} ms latency, {kind} images "
                  f"{image_size}x{image_size} (downscaled to the default pixel budget) ==")  # fmt: skip
            print(f"{'concurrency':>11}  {'critiques':>9}  {'seconds':>8}  {'per s':>8}  "
                  f"{'ideal/s':>8}  {'ratio':>6}")  # fmt: skip
            for c in levels:
                count = max(c * per_level, 8)
                elapsed = asyncio.run(run_level(url, c, count, images))
                rate, ideal = count / elapsed, c / latency
                print(f"{c:>11}  {count:>9}  {elapsed:>8.2f}  {rate:>8.1f}  {ideal:>8.1f}  "
                      f"{rate / ideal:>6.2f}")  # fmt: skip
    finally:
        parent.send("stop")
        server.join(timeout=10)


def bench_parser(rounds: int) -> None:
    items = []
    for md in sorted(CORPUS.glob("*.md")):
        meta_path = md.with_suffix(".json")
        if not meta_path.exists():
            continue
        meta = json.loads(meta_path.read_text())
        parse = parse_pairwise if meta.get("mode") == "pairwise" else parse_critique
        items.append((parse, md.read_text(encoding="utf-8"), meta.get("task", "t2i")))
    if not items:
        print(f"\n(no corpus found in {CORPUS}; parser throughput skipped)")
        return
    failures = 0
    chars = sum(len(text) for _, text, _ in items)
    start = time.perf_counter()
    for _ in range(rounds):
        for parse, text, task in items:
            try:
                parse(text, task)
            except CritiqueParseError:
                failures += 1
    elapsed = time.perf_counter() - start
    n = rounds * len(items)
    print(f"\n== parser throughput over {len(items)} corpus answers x {rounds} rounds ==")
    print(f"{n / elapsed:,.0f} answers/s, {chars * rounds / elapsed / 1e6:.2f} MB/s of answer text, "
          f"{elapsed / n * 1e3:.3f} ms per answer (mean {chars / len(items):,.0f} chars); "
          f"{failures // rounds} of {len(items)} answers are parse errors by design")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2, help="Stub server delay per request (s).")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 8, 32], help="Concurrency levels.")
    parser.add_argument("--per-level", type=int, default=4, help="Critiques per level = this x concurrency.")
    parser.add_argument("--image-size", type=int, default=1024, help="Side of the square test images.")
    parser.add_argument(
        "--images", nargs="+", default=["flat", "photo"], choices=["flat", "photo"],
        help="Test image kinds: flat compresses to nothing (transport cost only), photo like a real photo.",
    )  # fmt: skip
    parser.add_argument("--parse-rounds", type=int, default=50, help="Passes over the parser corpus.")
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, {platform.processor() or 'cpu'}")
    bench_http(args.latency, args.levels, args.per_level, args.image_size, args.images)
    bench_parser(args.parse_rounds)


if __name__ == "__main__":
    main()
