"""Throughput of ``gcr bench`` against the bound set by its slowest stage.

A fake generator holds a process-wide lock for a fixed time per image (like a
busy GPU: one image at a time), and a stub critic server answers each critique
after a fixed latency. The server runs in a separate process, so its threads do
not compete with the benchmark for the interpreter lock. Everything between is
gcr's real code: the refine graph of every prompt (run folders, SQLite
checkpoints, results.jsonl flushed per prompt), gcr's HTTP critic (prompt
rendering, PNG encoding, parsing), the generator worker and the bounded critic.

Each prompt runs ``--rounds`` rounds of one image, so the work is a fixed number
of images, each generated once and critiqued once. With generation time ``g``
and critic latency ``L`` at ``C`` critiques in flight, the fastest possible rate
is ``min(1 / g, C / L)`` images per second; the script prints the measured rate
as a ratio of that bound (1 = the slowest stage never waits), with how busy the
generator was and how long generation and critiques overlapped. Without
pipelining (``--in-flight 1``: one prompt at a time) the ratio is ``g / (g + L)``
at best.

Run: ``python benchmarks/bench_pipeline.py [--prompts 40] [--rounds 2] [--gen-time 0.075]
[--latency 0.3] [--concurrency 1 2 4 8] [--skip-serial]``
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "bench")]  # the fakes live with the tests

from benchkit import PixelCriticServer, PixelGenerator, PixelScript, components, write_jsonl  # noqa: E402

from gcr.agent.runner import RunSpec  # noqa: E402
from gcr.bench.pipeline import BenchSettings, run_bench  # noqa: E402
from gcr.bench.prompt_files import load_prompt_set  # noqa: E402
from gcr.critic import load_critic  # noqa: E402


def _serve(latency: float, port_queue: mp.Queue, stop: mp.Event) -> None:
    server = PixelCriticServer(PixelScript(), latency=latency).start()
    port_queue.put(server.port)
    stop.wait()
    server.stop()


def measure(
    folder: Path,
    url: str,
    prompts: int,
    rounds: int,
    gen_time: float,
    concurrency: int,
    in_flight: int | None,
) -> dict[str, float]:
    # Base 1.0 with gains 0.75: no prompt reaches the target, each runs exactly ``rounds`` rounds.
    rows = [{"id": f"b{i:04d}", "prompt": f"benchmark scene {i} [base 1.0]"} for i in range(prompts)]
    prompt_set = load_prompt_set(write_jsonl(folder / "prompts.jsonl", rows))
    spec = RunSpec(
        prompt="",
        context={"max_rounds": rounds, "target_reward": None, "patience": rounds, "write_report": False},
        use_cache=False,
    )
    generator = PixelGenerator(hold=gen_time)
    critic = load_critic(url, max_concurrency=concurrency)
    settings = BenchSettings(concurrency=concurrency, in_flight=in_flight)
    load = lambda spec, task: components(generator, critic)  # noqa: E731
    outcome = asyncio.run(run_bench(prompt_set, spec, str(folder / "out"), settings, load=load))
    session = outcome.session
    assert outcome.complete and session["generator_calls"] == prompts * rounds
    return session


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--gen-time", type=float, default=0.075, help="seconds the generator holds its lock")
    parser.add_argument("--latency", type=float, default=0.3, help="seconds the critic takes per request")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--skip-serial", action="store_true", help="leave out the one-prompt-at-a-time run")
    args = parser.parse_args()

    ports: mp.Queue = mp.Queue()
    stop = mp.Event()
    server = mp.Process(target=_serve, args=(args.latency, ports, stop), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{ports.get(timeout=60)}/v1"
    images = args.prompts * args.rounds
    print(
        f"{args.prompts} prompts x {args.rounds} rounds = {images} images; "
        f"generator {args.gen_time * 1000:.0f} ms/image; critic latency {args.latency * 1000:.0f} ms"
    )
    header = (
        f"{'critic conc.':>12} {'in flight':>9} {'images/s':>9} {'bound':>7} {'ratio':>6} "
        f"{'gen busy':>9} {'overlap':>8} {'peak':>5}"
    )
    print(header)
    runs: list[tuple[int, int | None]] = [(c, None) for c in args.concurrency]
    if not args.skip_serial:
        runs.append((max(args.concurrency), 1))
    try:
        for concurrency, in_flight in runs:
            with tempfile.TemporaryDirectory() as tmp:
                s = measure(Path(tmp), url, args.prompts, args.rounds, args.gen_time, concurrency, in_flight)
            rate = s["generator_calls"] / s["wall_s"]
            bound = min(1 / args.gen_time, concurrency / args.latency)
            shown_in_flight = in_flight if in_flight is not None else concurrency + 2
            print(
                f"{concurrency:>12} {shown_in_flight:>9} {rate:>9.2f} {bound:>7.2f} {rate / bound:>6.2f} "
                f"{s['generator_busy_s'] / s['wall_s']:>8.0%} {s['overlap_s'] / s['wall_s']:>7.0%} "
                f"{s['critic_peak_in_flight']:>5}"
            )
    finally:
        stop.set()
        server.join(timeout=10)


if __name__ == "__main__":
    main()
