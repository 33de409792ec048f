"""Critic throughput: critiques per second against a stub server with a fixed latency, and parser speed.

Part 1 runs the real critic stack (prompt rendering, the image transport of
:mod:`gcr.image_input`, the OpenAI async client over HTTP, parsing) against the
test suite's scripted stub server, which answers every request with a full
critique after a fixed delay. For each image transport and concurrency level it
prints critiques per second, the ratio to the ideal ``concurrency / latency``
(near 1: the client keeps the server saturated), this process's CPU per image
sent, and the stub server's own CPU per request (it parses the JSON bodies on
the same cores, so on a small machine it can be the bottleneck itself).
Transports (``--modes``):

* ``client``: in-memory pixels, downscaled to the pixel budget here and PNG-encoded
  (what every caller did before the one image path; a hosted API still needs it);
* ``server-pixels``: in-memory pixels sent whole as a PNG (the server resizes);
* ``server-bytes``: images that already have PNG bytes (a generator's run-folder
  file, a dataset cell) sent as those bytes, nothing encoded or decoded here;
* ``file``: the same images as ``file://`` URLs (a local vLLM with
  ``--allowed-local-media-path``); nothing is read here at all.

Each critique sends a new image object, as the agent and RL do (the same object
sent again would reuse its encoding).

Part 2 parses every answer in ``tests/critic/corpus/*.md`` (pointwise and
pairwise) repeatedly and prints answers parsed per second.

Run: ``python benchmarks/critic_throughput.py [--latency 0.2] [--levels 1 8 32]
[--per-level 4] [--image-size 1024] [--modes client server-bytes] [--parse-rounds 50]``.
No assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

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
    """Child process: the stub server answering every request after ``latency`` seconds.

    Each message from the parent is answered with this process's CPU seconds so far
    (``None`` ends it).
    """
    with StubCriticServer() as stub:
        stub.responder = lambda request: StubReply.ok(GOOD_T2I_ANSWER, delay=latency)
        conn.send(stub.url)
        while conn.recv() is not None:
            conn.send(time.process_time())


MODES = ("client", "server-pixels", "server-bytes", "file")


def make_inputs(mode: str, pixels: list[Image.Image], count: int, folder: Path) -> list[Any]:
    """``count`` fresh image objects for ``mode`` (made before timing, like a generator's output)."""
    if mode in ("client", "server-pixels"):
        return [pixels[i % len(pixels)].copy() for i in range(count)]
    from gcr.image_input import ImageInput, encode_png

    files = []
    for i, image in enumerate(pixels):
        path = folder / f"image-{i}.png"
        if not path.exists():
            path.write_bytes(encode_png(image))
        files.append(path)
    if mode == "server-bytes":
        return [ImageInput.from_bytes(files[i % len(files)].read_bytes()) for i in range(count)]
    return [ImageInput.from_file(files[i % len(files)]) for i in range(count)]


async def run_level(
    url: str, mode: str, concurrency: int, inputs: list[Any], warm: Any, folder: Path
) -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds) to finish one critique per input."""
    # The client mode names no transport setting, so this script also measures gcr before it existed.
    transport: dict[str, Any] = {} if mode == "client" else {"image_resize": "server"}
    if mode == "file":
        transport["local_media_root"] = folder
    backend = OpenAICompatibleBackend(
        url, model="stub-critic", max_concurrency=concurrency, max_retries=0, **transport
    )
    async with Critic(backend) as critic:
        # Warm the connection pool and the templates so the timing covers steady state.
        await critic.acritique("warm-up", warm)
        cpu, start = time.process_time(), time.perf_counter()
        results = await asyncio.gather(
            *(critic.acritique(f"a test image number {i}", image) for i, image in enumerate(inputs))
        )
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert all(r.score("text_faithfulness") == 3.5 for r in results)
    return elapsed, cpu


def bench_http(
    latency: float, levels: list[int], per_level: int, image_size: int, kinds: list[str], modes: list[str]
) -> None:
    # The server runs in its own process, so its JSON decoding does not compete for our GIL.
    spawn = multiprocessing.get_context("spawn")
    parent, child = spawn.Pipe()
    server = spawn.Process(target=serve_stub, args=(latency, child), daemon=True)
    server.start()
    url = parent.recv()

    def stub_cpu() -> float:
        parent.send("cpu")
        return parent.recv()

    try:
        with tempfile.TemporaryDirectory() as tmp:
            for kind in kinds:
                pixels = [test_image(kind, image_size, seed) for seed in range(4)]
                folder = Path(tmp) / kind
                folder.mkdir()
                print(f"\n== critiques/s, stub server with {latency * 1000:.0f} ms latency, {kind} images "
                      f"{image_size}x{image_size} ==")  # fmt: skip
                print(f"{'transport':>13}  {'conc.':>5}  {'critiques':>9}  {'seconds':>7}  {'per s':>6}  "
                      f"{'ideal/s':>7}  {'ratio':>5}  {'client ms/img':>13}  "
                      f"{'stub ms/req':>11}")  # fmt: skip
                for mode in modes:
                    for c in levels:
                        count = max(c * per_level, 8)
                        inputs = make_inputs(mode, pixels, count, folder)
                        warm = make_inputs(mode, pixels, 1, folder)[0]
                        before = stub_cpu()
                        elapsed, cpu = asyncio.run(run_level(url, mode, c, inputs, warm, folder))
                        stub = stub_cpu() - before
                        rate, ideal = count / elapsed, c / latency
                        print(f"{mode:>13}  {c:>5}  {count:>9}  {elapsed:>7.2f}  {rate:>6.1f}  "
                              f"{ideal:>7.1f}  {rate / ideal:>5.2f}  {cpu / count * 1e3:>13.1f}  "
                              f"{stub / (count + 1) * 1e3:>11.1f}")  # fmt: skip
    finally:
        parent.send(None)
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
    parser.add_argument(
        "--modes", nargs="+", default=list(MODES), choices=MODES,
        help="Image transports to measure (see the module doc); client is the old path.",
    )  # fmt: skip
    parser.add_argument("--parse-rounds", type=int, default=50, help="Passes over the parser corpus.")
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, {platform.processor() or 'cpu'}")
    print(f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    bench_http(args.latency, args.levels, args.per_level, args.image_size, args.images, args.modes)
    bench_parser(args.parse_rounds)


if __name__ == "__main__":
    main()
