"""Throughput of ``gcr eval`` against a critic server with a fixed latency.

Writes a synthetic GenAI-Bench-layout Parquet file (real PNG images of a
chosen size), serves scripted critiques from the test suite's stub server with
a fixed per-request latency (in a separate process, so the server's own work
does not compete with the client for the interpreter lock), and runs the evaluation (real critic: prompt
rendering, image encoding, HTTP, parsing; real runner: concurrency, per-pair
flush) at several concurrency levels. For each it prints pairs per second and
the ratio to the ideal, ``ceil(pairs / concurrency) * latency`` seconds for
the whole run (pointwise mode sends two requests per pair, concurrently, so
its ideal is the same). A ratio near 1 means the runner keeps the server busy;
a falling ratio at high concurrency shows client-side cost (PNG encoding of
the images, JSON, parsing) on this machine's cores. ``--critic inprocess``
replaces the HTTP stack with a scripted critic that only sleeps for the
latency, which isolates the runner's own overhead (dataset reading, image
decoding, scheduling, per-pair flush).

It also prints this process's CPU per image sent (everything the client does,
divided by the images) and the stub server's own CPU per request.
``--image-resize server`` sends the dataset's stored bytes as they are (for a
server that applies the pixel budget itself); ``client`` downscales images over
the budget here first.

Run: ``python benchmarks/eval_throughput.py [--pairs 64] [--latency 0.2] [--concurrency 1 8 32]
[--image-size 512] [--mode pairwise|pointwise] [--critic http|inprocess] [--image-resize client|server]``
"""

from __future__ import annotations

import argparse
import asyncio
import io
import math
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the scripted stub server lives with the tests

from PIL import Image  # noqa: E402

from gcr.bench.eval import EvalSettings, open_dataset, run_eval, summarize  # noqa: E402
from gcr.critic import load_critic  # noqa: E402
from gcr.critic.backends.base import SamplingParams  # noqa: E402
from gcr.critic.schema import (  # noqa: E402
    TASK_DIMENSIONS,
    Critique,
    DimensionJudgement,
    PairwiseCritique,
    PairwiseJudgement,
)
from gcr.task import Task  # noqa: E402
from stubs.critic_server import StubCriticServer  # noqa: E402
from stubs.eval_critic_server import EvalScript, ScriptedPair  # noqa: E402


def _png(color: tuple[int, int, int], size: int, seed: int) -> bytes:
    # A gradient rather than a flat colour so PNG encoding costs what a real image would.
    img = Image.linear_gradient("L").resize((size, size)).convert("RGB")
    tint = Image.new("RGB", (size, size), color)
    buf = io.BytesIO()
    Image.blend(img, tint, 0.7).rotate(seed % 360).save(buf, format="PNG")
    return buf.getvalue()


def write_dataset(folder: Path, pairs: int, size: int) -> tuple[Path, dict[str, ScriptedPair]]:
    import datasets

    rows, table = [], {}
    for i in range(pairs):
        key = f"bench-pair-{i:05d}"
        rows.append({
            "prompt": f"{key}: a lighthouse on a cliff at dusk",
            "left_image": {"bytes": _png((220, 30, 30), size, i), "path": None},
            "right_image": {"bytes": _png((30, 30, 220), size, i), "path": None},
            "vote_type": "leftvote" if i % 2 else "rightvote",
        })
        scores_a = {"text_faithfulness": 3.5, "physical_quality": 3.0, "text_rendering": None}
        scores_b = {"text_faithfulness": 3.0, "physical_quality": 3.0, "text_rendering": None}
        table[key] = ScriptedPair(Task.T2I, scores_a, scores_b)
    features = datasets.Features({
        "prompt": datasets.Value("string"), "left_image": datasets.Image(), "right_image": datasets.Image(),
        "vote_type": datasets.Value("string"),
    })
    path = folder / "bench.parquet"
    datasets.Dataset.from_list(rows, features=features).to_parquet(str(path))
    return path, table


class SleepingCritic:
    """Answers from the script after sleeping for the latency; no HTTP, no parsing."""

    model_id = "sleeping-critic"

    def __init__(self, table: dict[str, ScriptedPair], latency: float) -> None:
        self.table, self.latency = table, latency

    def _entry(self, prompt: str) -> ScriptedPair:
        return self.table[prompt.split(":", 1)[0]]

    async def acompare(self, prompt, image_a, image_b, *, sources=(), task=None) -> PairwiseCritique:
        entry = self._entry(prompt)
        await asyncio.sleep(self.latency)
        judgements = [
            PairwiseJudgement(dimension=d, score_a=entry.scores_a[d.value], score_b=entry.scores_b[d.value])
            for d in TASK_DIMENSIONS[entry.task]
        ]
        return PairwiseCritique(task=entry.task, judgements=judgements)

    async def acritique(self, prompt, image, *, sources=(), task=None) -> Critique:
        entry = self._entry(prompt)
        await asyncio.sleep(self.latency)
        dims = TASK_DIMENSIONS[entry.task]
        judgements = [DimensionJudgement(dimension=d, score=entry.scores_a[d.value]) for d in dims]
        return Critique(task=entry.task, judgements=judgements)

    async def aclose(self) -> None:
        return None


def _serve(table: dict[str, ScriptedPair], latency: float, conn: object) -> None:
    """Child process: run the stub server and answer "reset", "stats" and "stop" on the pipe."""
    with StubCriticServer(models=("bench-critic",)) as server:
        script = EvalScript(table)
        script.healthy = True
        script.delay = latency
        server.responder = script
        conn.send(server.url)  # type: ignore[attr-defined]
        while True:
            command = conn.recv()  # type: ignore[attr-defined]
            if command == "reset":
                server.max_in_flight = 0
                conn.send(None)  # type: ignore[attr-defined]
            elif command == "stats":
                conn.send(server.max_in_flight)  # type: ignore[attr-defined]
            elif command == "cpu":
                conn.send(time.process_time())  # type: ignore[attr-defined]
            else:
                return


async def _measure(path: Path, critic: object, out: Path, mode: str, concurrency: int) -> tuple[float, dict]:
    ds = open_dataset(path)
    settings = EvalSettings(mode=mode, concurrency=concurrency)  # type: ignore[arg-type]
    try:
        start = time.perf_counter()
        outcome = await run_eval(ds, critic, out, settings, critic_id=critic.model_id)  # type: ignore[arg-type]
        elapsed = time.perf_counter() - start
    finally:
        await critic.aclose()  # type: ignore[attr-defined]
    return elapsed, summarize(outcome, ds, settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per critic answer")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--image-size", type=int, default=512)
    parser.add_argument("--mode", choices=["pairwise", "pointwise"], default="pairwise")
    parser.add_argument("--critic", choices=["http", "inprocess"], default="http")
    parser.add_argument(
        "--image-resize", choices=["client", "server"], default="client",
        help="where the pixel budget is applied (client: downscale here; server: send the stored bytes)",
    )  # fmt: skip
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path, table = write_dataset(Path(tmp), args.pairs, args.image_size)
        parent, child = mp.Pipe()
        ctx = mp.get_context("spawn")
        server = ctx.Process(target=_serve, args=(table, args.latency, child), daemon=True)
        server.start()
        url = parent.recv()
        print(
            f"{args.pairs} pairs, {args.image_size}px images, latency {args.latency}s, mode {args.mode}, "
            f"critic {args.critic}"
        )
        header = ("concurrency", "seconds", "pairs/s", "ideal/s", "ratio", "in flight", "client ms/img",
                  "stub ms/req")  # fmt: skip
        widths = (11, 8, 8, 8, 6, 9, 13, 11)
        print(" ".join(f"{h:>{w}}" for h, w in zip(header, widths, strict=True)))
        for c in args.concurrency:
            parent.send("reset")
            parent.recv()
            if args.critic == "http":
                # The default is left unnamed, so this script also measures gcr versions before the setting.
                transport = {} if args.image_resize == "client" else {"image_resize": args.image_resize}
                critic: object = load_critic(
                    url, sampling=SamplingParams(max_tokens=2048), max_concurrency=2 * c, max_retries=0,
                    **transport,
                )  # fmt: skip
            else:
                critic = SleepingCritic(table, args.latency)
            parent.send("cpu")
            stub_cpu = parent.recv()
            cpu = time.process_time()
            elapsed, summary = asyncio.run(_measure(path, critic, Path(tmp) / f"out-{c}", args.mode, c))
            cpu = time.process_time() - cpu
            parent.send("cpu")
            stub_cpu = parent.recv() - stub_cpu
            requests = args.pairs * (2 if args.mode == "pointwise" else 1)
            images = 2 * args.pairs  # each pair's two candidates (t2i)
            parent.send("stats")
            in_flight = parent.recv() if args.critic == "http" else "-"
            if summary["counts"]["evaluated"] != args.pairs:
                raise SystemExit(f"only {summary['counts']['evaluated']} of {args.pairs} pairs were judged")
            ideal = math.ceil(args.pairs / c) * args.latency
            print(
                f"{c:>11} {elapsed:>8.2f} {args.pairs / elapsed:>8.1f} {args.pairs / ideal:>8.1f} "
                f"{ideal / elapsed:>6.2f} {in_flight:>9} {cpu / images * 1e3:>13.1f} "
                f"{stub_cpu / requests * 1e3:>11.1f}"
            )
        parent.send("stop")
        server.join(timeout=10)


if __name__ == "__main__":
    main()
