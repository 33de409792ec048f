"""Judge throughput and the cost of gcr's judge path (bounding, caching) around it.

Part 1: a VIEScore rubric judge (two requests per image) against the test suite's
scripted stub server answering after a fixed latency, through
:class:`gcr.judges.JudgePanel` at several concurrency levels. Prints images judged
per second and the ratio to the ideal: each image's two questions go out together, so
the ideal is ``concurrency / latency`` images per second (the panel's slots bound images,
not requests). A low ratio at high concurrency is client- and server-side CPU (PNG
encoding, JSON) on this machine, the same cost the critic pays (compare
benchmarks/critic_throughput.py on the same machine).

Part 2: the same images again, now from the content-keyed cache: verdicts per second
with no request made (the cost a resumed benchmark pays per finished judgement).

Part 3: a tiny random CLIP (gcr.dev.tiny_clip) as a local judge: verdicts per second on
this CPU, to show the judge path's own overhead next to a model call that is nearly free.

Run: ``python benchmarks/judge_overhead.py [--latency 0.2] [--levels 1 4 16] [--images 32]
[--image-size 512]``. No assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import platform
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the scripted stub server lives with the tests

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from gcr.judges import JudgePanel, load_judge  # noqa: E402
from stubs.critic_server import StubCriticServer, StubReply  # noqa: E402
from stubs.judge_server import asked_criteria  # noqa: E402


def image(size: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8), "RGB")


def serve_stub(latency: float, conn: Connection) -> None:
    """Child process: every rubric question answered with 7s after ``latency`` seconds."""

    def respond(request):
        scores = {c: 7 for c in asked_criteria(request)}
        return StubReply.ok(json.dumps({"reasoning": "benchmark", "scores": scores}), delay=latency)

    with StubCriticServer(models=("judge",)) as stub:
        stub.responder = respond
        conn.send(stub.url)
        conn.recv()


async def judge_all(panel: JudgePanel, images: list[Image.Image]) -> float:
    start = time.perf_counter()
    try:
        results = await asyncio.gather(*(panel.verdicts(f"prompt {i}", img) for i, img in enumerate(images)))
    finally:
        await panel.aclose()
    elapsed = time.perf_counter() - start
    assert all(v.ok for r in results for v in r.values())
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=512)
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, {multiprocessing.cpu_count()} CPUs")
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve_stub, args=(args.latency, child), daemon=True)
    server.start()
    url = parent.recv()
    images = [image(args.image_size, i) for i in range(args.images)]
    print(
        f"\nPart 1: viescore judge over HTTP, {args.images} images of {args.image_size}px, "
        f"server latency {args.latency:.3f}s per request (2 requests per image)"
    )
    with tempfile.TemporaryDirectory() as cache:
        for level in args.levels:
            judge = load_judge(f"viescore:{url},concurrency={2 * level}")
            panel = JudgePanel([judge], concurrency=level, cache_dir=Path(cache) / f"c{level}")
            elapsed = asyncio.run(judge_all(panel, images))
            rate = args.images / elapsed
            ideal = level / args.latency
            ratio = rate / ideal
            print(f"  concurrency {level:3d}: {rate:7.2f} images/s, ideal {ideal:7.2f}, ratio {ratio:.2f}")
        print("\nPart 2: the same images again, answered from the cache (no request)")
        level = args.levels[-1]
        judge = load_judge(f"viescore:{url}")
        panel = JudgePanel([judge], concurrency=level, cache_dir=Path(cache) / f"c{level}")
        elapsed = asyncio.run(judge_all(panel, images))
        print(
            f"  {args.images / elapsed:9.1f} cached verdicts/s ({elapsed / args.images * 1000:.2f} ms each, "
            "pixel digest included)"
        )
        print("\nPart 3: tiny random CLIP judge in-process")
        from gcr.dev.tiny_clip import build_tiny_clip

        clip = load_judge(f"clip:{build_tiny_clip(Path(cache) / 'clip')}")
        panel = JudgePanel([clip], concurrency=4)
        elapsed = asyncio.run(judge_all(panel, images))
        print(f"  {args.images / elapsed:9.1f} verdicts/s ({elapsed / args.images * 1000:.2f} ms each)")
    parent.send("stop")
    server.join(timeout=5)


if __name__ == "__main__":
    main()
