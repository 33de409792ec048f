"""The refine graph's own cost per round: everything except generator and critic time.

Part 1 runs the real graph around an instant generator (a precomputed image) and
an instant critic (a precomputed critique) for R1 and R2 rounds and takes
``(T(R2) - T(R1)) / (R2 - R1)``, which cancels the fixed start and finish costs
(run folder, summary, report). What remains per round is LangGraph's scheduling,
state reducers, the Send fan-out, checkpointing, cache lookups and writes, PNG
encoding of each image into the run folder, the critique files and the
trajectory rewrite. It is measured per checkpointer (none, in-memory, SQLite
as the CLI uses it: run-folder images written by a writer thread and each
checkpoint saved once the images it names are on disk: ``sqlite-async`` with
checkpoints saved in the background while the next step runs, the default of
``run_refine``, and ``sqlite`` with ``durability="sync"``), candidates per round and image size.
Without the SQLite runner setup (none, in-memory) images are encoded inline, as
for a host application that compiles the graph itself.

Part 2 adds simulated stage times, generator ``gen_s`` per image (generations run
one at a time, as on one GPU) and critic ``critic_s`` per critique (critiques run
concurrently), both scaled down by ``--scale`` to keep the run short. The ideal
round takes ``candidates * gen_s + critic_s``; the measured excess over it is the
overhead, shown as a share of the round at the scaled and the real stage times.

Run: ``python benchmarks/agent_overhead.py [--rounds 2 12] [--repeats 3] [--gen-s 5]
[--critic-s 2] [--scale 0.02]``. No assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from langgraph.checkpoint.memory import InMemorySaver
from PIL import Image

from gcr.agent import ArtifactCache, RefineContext, build_graph
from gcr.agent.image_writer import BarrierSqliteSaver, ImageWriter, write_behind
from gcr.critic.schema import Critique, Dimension, DimensionJudgement
from gcr.generators.base import GenerationRequest, GenerationResult
from gcr.task import Task


class InstantGenerator:
    """Returns a precomputed photo-like image (smooth colour fields plus mild grain, which encodes
    like a generated picture; pure noise would exaggerate PNG cost), one pixel changed per call so
    each image is new, after ``delay`` seconds of sleep."""

    def __init__(self, size: int, delay: float = 0.0) -> None:
        rng = np.random.default_rng(0)
        coarse = Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), "RGB")
        smooth = np.asarray(coarse.resize((size, size), Image.Resampling.BICUBIC)).astype(np.int16)
        grain = rng.integers(-6, 7, (size, size, 3))
        self.image = Image.fromarray(np.clip(smooth + grain, 0, 255).astype(np.uint8), "RGB")
        self.delay = delay
        self.calls = 0
        self.model_id = f"instant-{size}px"
        self.task = Task.T2I

    def generate(self, request: GenerationRequest) -> GenerationResult:
        if self.delay:
            time.sleep(self.delay)
        self.calls += 1
        image = self.image.copy()
        image.putpixel((0, 0), (self.calls % 256, self.calls // 256 % 256, 7))
        return GenerationResult([image], request.seeds(), self.model_id, {})


class InstantCritic:
    """Returns a fixed critique whose refined request is new every time (so every round runs)."""

    model_id = "instant-critic"

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls = 0

    def cache_identity(self, mode: str, task: Task | str) -> str:
        return "instant-critic"

    async def acritique(self, prompt: str, image: Image.Image, *, sources=(), task=None) -> Critique:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        return Critique(
            task=Task.T2I,
            judgements=[
                DimensionJudgement(dimension=Dimension.TEXT_FAITHFULNESS, score=3.0, justification="fine"),
                DimensionJudgement(dimension=Dimension.PHYSICAL_QUALITY, score=3.0, justification="fine"),
                DimensionJudgement(dimension=Dimension.TEXT_RENDERING, score=None, justification="none"),
            ],
            summary="fine",
            refined_request=f"{prompt}, variant {self.calls}",
        )


async def one_run(
    rounds: int, candidates: int, size: int, saver: str, gen_s: float, critic_s: float, workdir: Path
) -> float:
    """Wall seconds of one run of exactly ``rounds`` rounds."""
    run_dir = Path(tempfile.mkdtemp(dir=workdir))
    builder = build_graph(
        generator=InstantGenerator(size, gen_s),
        critic=InstantCritic(critic_s),
        cache=ArtifactCache(run_dir / "cache"),
    )
    context = RefineContext(
        run_dir=str(run_dir / "run"), max_rounds=rounds, candidates=candidates,
        target_reward=None, min_delta=0.0, patience=rounds + 1,
    )  # fmt: skip
    config = {"configurable": {"thread_id": "bench"}}
    inputs = {"prompt": "a red cat on a wooden table"}
    started = time.perf_counter()
    if saver.startswith("sqlite"):
        # As gcr refine runs it (gcr.agent.runner): images written behind by a writer thread,
        # each checkpoint saved once the images it names are on disk.
        durability = "async" if saver == "sqlite-async" else "sync"
        writer = ImageWriter()
        async with BarrierSqliteSaver.from_conn_string(str(run_dir / "checkpoints.sqlite")) as checkpointer:
            checkpointer.image_writer = writer
            graph = builder.compile(checkpointer=checkpointer)
            with write_behind(writer):
                out = await graph.ainvoke(inputs, config, context=context, durability=durability)
        writer.close()
    else:
        graph = builder.compile(checkpointer=InMemorySaver() if saver == "memory" else None)
        out = await graph.ainvoke(inputs, config, context=context)
    elapsed = time.perf_counter() - started
    assert len(out["rounds"]) == rounds, out["stop_reason"]
    return elapsed


def per_round(
    r1: int, r2: int, repeats: int, candidates: int, size: int, saver: str, gen_s: float, critic_s: float
) -> float:
    """Median over repeats of the marginal wall seconds per round."""
    samples = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            t1 = asyncio.run(one_run(r1, candidates, size, saver, gen_s, critic_s, Path(tmp)))
            t2 = asyncio.run(one_run(r2, candidates, size, saver, gen_s, critic_s, Path(tmp)))
            samples.append((t2 - t1) / (r2 - r1))
    return statistics.median(samples)


def image_io_ms(size: int, repeats: int = 5) -> dict[str, float]:
    """Milliseconds per image of the image work the graph does for each candidate."""
    from gcr.images import image_digest, load_image

    image = InstantGenerator(size).image
    with tempfile.TemporaryDirectory() as tmp:
        png, copy = Path(tmp) / "a.png", Path(tmp) / "b.png"
        steps = {
            "encode PNG": lambda: image.save(png, format="PNG", compress_level=1),
            "pixel digest": lambda: image_digest(image),
            "copy to cache": lambda: shutil.copyfile(png, copy),
            "decode PNG": lambda: load_image(png),
        }
        out = {}
        for name, step in steps.items():
            started = time.perf_counter()
            for _ in range(repeats):
                step()
            out[name] = (time.perf_counter() - started) / repeats * 1e3
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Refine-graph overhead per round.")
    parser.add_argument("--rounds", type=int, nargs=2, default=(2, 12), metavar=("R1", "R2"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--gen-s", type=float, default=5.0, help="real generator seconds per image")
    parser.add_argument("--critic-s", type=float, default=2.0, help="real critic seconds per critique")
    parser.add_argument(
        "--scale", type=float, default=0.02, help="factor applied to the simulated stage times"
    )
    args = parser.parse_args(argv)
    r1, r2 = args.rounds
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
          f"load {load:.1f}; rounds {r1} vs {r2}, median of {args.repeats}")  # fmt: skip

    print("\nPart 0: image work per candidate (ms per image)")
    for size in (64, 1024):
        parts = image_io_ms(size)
        listed = ", ".join(f"{name} {ms:.1f}" for name, ms in parts.items())
        print(f"  {size:>4} px: {listed}; total {sum(parts.values()):.1f}")

    print("\nPart 1: overhead per round with an instant generator and critic")
    print(f"{'checkpointer':>12} {'cands':>5} {'image':>6} {'ms/round':>9} {'ms/cand':>8}")
    overhead: dict[tuple[str, int, int], float] = {}
    for saver in ("none", "memory", "sqlite", "sqlite-async"):
        for candidates in (1, 4):
            for size in (64, 1024):
                seconds = per_round(r1, r2, args.repeats, candidates, size, saver, 0.0, 0.0)
                overhead[(saver, candidates, size)] = seconds
                print(f"{saver:>12} {candidates:>5} {size:>5}p {seconds * 1e3:>9.1f} "
                      f"{seconds * 1e3 / candidates:>8.1f}")  # fmt: skip

    print(f"\nPart 2: simulated stage times (generator {args.gen_s:g} s/image, critic {args.critic_s:g} s, "
          f"scaled by {args.scale:g}), SQLite checkpointers, 1024 px")  # fmt: skip
    print(f"{'checkpointer':>12} {'cands':>5} {'ideal s':>8} {'measured s':>10} {'excess ms':>9} "
          f"{'share':>7} {'share at real times':>19}")  # fmt: skip
    gen_s, critic_s = args.gen_s * args.scale, args.critic_s * args.scale
    for saver in ("sqlite", "sqlite-async"):
        for candidates in (1, 4):
            measured = per_round(r1, r2, args.repeats, candidates, 1024, saver, gen_s, critic_s)
            ideal = candidates * gen_s + critic_s
            excess = measured - ideal
            real_round = candidates * args.gen_s + args.critic_s
            real_share = excess / (real_round + excess)
            print(f"{saver:>12} {candidates:>5} {ideal:>8.3f} {measured:>10.3f} {excess * 1e3:>9.1f} "
                  f"{excess / measured:>7.1%} {real_share:>19.2%}")  # fmt: skip
    real = args.gen_s + args.critic_s
    for saver in ("sqlite", "sqlite-async"):
        base = overhead[(saver, 1, 1024)]
        print(f"\nInstant-stage overhead ({saver}, 1 candidate, 1024 px): {base * 1e3:.1f} ms per round, "
              f"{base / real:.2%} of a {real:g} s round.")  # fmt: skip


if __name__ == "__main__":
    main()
