"""How long the two servers take to come up, and what a call costs once the models are loaded.

Both servers run as real subprocesses around a tiny random diffusers pipeline
and the test suite's scripted critic server (an instant answer), so the figures
are the servers' own costs on this machine, not model time:

* ``gcr serve mcp`` over stdio, driven by the MCP SDK's client: process start
  to ``initialize`` answered; then ``refine_image`` calls of one round each. The
  first call loads the generator and the critic, the later ones reuse them, so
  ``first / later`` shows what loading once per process saves.
* ``langgraph dev`` on this repo's ``langgraph.json``, driven by the LangGraph
  SDK: process start to ``/ok``; then one-round runs on fresh threads (the first
  loads the models through the graph factory).

Run: ``python benchmarks/serve_startup.py [--calls 3]``. No assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the scripted stub server lives with the tests

import httpx  # noqa: E402
from langgraph_sdk import get_client  # noqa: E402
from mcp import ClientSession, StdioServerParameters, stdio_client  # noqa: E402

from gcr.dev.tiny_pipelines import build_tiny_pipeline  # noqa: E402
from stubs.critic_server import GOOD_T2I_ANSWER, StubCriticServer, StubReply  # noqa: E402

ONE_ROUND = {"max_rounds": 1, "steps": 2, "width": 32, "height": 32}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def mcp_figures(env: dict[str, str], work: Path, calls: int) -> tuple[float, list[float]]:
    gcr = shutil.which("gcr")
    command, args = (gcr, ["serve", "mcp"]) if gcr else (sys.executable, ["-m", "gcr", "serve", "mcp"])
    params = StdioServerParameters(command=command, args=args, env=env, cwd=str(work))
    started = time.perf_counter()
    with (work / "mcp.err").open("w") as err:
        async with stdio_client(params, errlog=err) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            ready = time.perf_counter() - started
            times = []
            for i in range(calls):
                t0 = time.perf_counter()
                result = await session.call_tool("refine_image", {"prompt": f"a red cube {i}", **ONE_ROUND})
                assert not result.is_error, result.content
                times.append(time.perf_counter() - t0)
    return ready, times


async def langgraph_figures(env: dict[str, str], work: Path, calls: int) -> tuple[float, list[float]]:
    shutil.copy(ROOT / "langgraph.json", work / "langgraph.json")
    (work / "src").symlink_to(ROOT / "src", target_is_directory=True)
    port = free_port()
    flags = ["--no-browser", "--no-reload", "--port", str(port)]
    command = [sys.executable, "-m", "langgraph_cli", "dev", *flags]
    quiet = {"LANGSMITH_TRACING": "false", "LANGGRAPH_CLI_NO_ANALYTICS": "1",
             "LANGGRAPH_NO_VERSION_CHECK": "true"}  # fmt: skip
    started = time.perf_counter()
    with (work / "langgraph.log").open("w") as log:
        proc = subprocess.Popen(command, cwd=work, env={**os.environ, **env, **quiet}, stdout=log, stderr=log)
    try:
        url = f"http://127.0.0.1:{port}"
        while True:
            if proc.poll() is not None:
                raise RuntimeError((work / "langgraph.log").read_text()[-3000:])
            try:
                if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        ready = time.perf_counter() - started
        client = get_client(url=url)
        times = []
        for i in range(calls):
            thread = await client.threads.create()
            t0 = time.perf_counter()
            await client.runs.wait(thread["thread_id"], "gcr_refine", input={"prompt": f"a red cube {i}"},
                                   context=ONE_ROUND)  # fmt: skip
            times.append(time.perf_counter() - t0)
        return ready, times
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def report(name: str, ready: float, times: list[float]) -> None:
    later = statistics.median(times[1:]) if len(times) > 1 else float("nan")
    print(f"{name}: ready in {ready:.2f}s; first one-round call {times[0]:.2f}s (loads the models), "
          f"later calls {later:.2f}s (median of {len(times) - 1}); "
          f"first/later = {times[0] / later:.1f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3, help="one-round calls per server (at least 2)")
    args = parser.parse_args()
    print(f"{platform.platform()} · {os.cpu_count()} CPUs · python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="gcr-serve-bench-") as tmp, \
            StubCriticServer(default=StubReply.ok(GOOD_T2I_ANSWER)) as critic:  # fmt: skip
        work = Path(tmp)
        pipeline = build_tiny_pipeline("sd", work / "tiny-sd")
        env = {"GCR_GENERATOR": str(pipeline), "GCR_CRITIC": critic.url, "GCR_CRITIC_MODEL": "stub-critic",
               "GCR_RUNS_DIR": str(work / "runs"), "GCR_NO_CACHE": "1", "HF_HUB_OFFLINE": "1",
               **{k: os.environ[k] for k in ("PYTHONPATH",) if k in os.environ}}  # fmt: skip
        (work / "mcp").mkdir()
        (work / "lg").mkdir()
        report("gcr serve mcp (stdio)", *asyncio.run(mcp_figures(env, work / "mcp", args.calls)))
        report("langgraph dev", *asyncio.run(langgraph_figures(env, work / "lg", args.calls)))


if __name__ == "__main__":
    main()
