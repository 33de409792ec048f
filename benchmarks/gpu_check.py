"""The GPU check: gcr's CUDA test suite plus a short throughput pass, in one Markdown report.

Run it on a machine with an NVIDIA GPU (installs nothing; uses the active environment)::

    python benchmarks/gpu_check.py                  # writes docs/gpu-report.md
    python benchmarks/gpu_check.py --out report.md  # elsewhere

Stages, each with its own time budget inside one overall budget (default 450 s, so
the whole check fits an 8-minute loan of one GPU):

1. environment: device, driver, CUDA, library versions;
2. ``pytest -m gpu tests/gpu`` in a subprocess; each test's outcome and peak GPU
   memory come back through the JSON file named by ``GCR_GPU_RESULTS``;
3. images per second of each tiny pipeline (``gcr.dev.tiny_pipelines``);
4. critic answers per second of the tiny critic in-process (transformers);
5. the same behind a real vLLM server, where vLLM is installed.

``--cpu`` (alias ``--dry-run``) runs the same code on the CPU at tiny sizes with
CUDA hidden from the test subprocess, so CI exercises the script itself; its
report says so and carries no GPU figures. The exit code is 0 only when every
stage finished and no test failed.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gpu_check_report import Figures, environment, render_report  # noqa: E402

logger = logging.getLogger("gpu_check")

#: Seconds per stage on a GPU, and on the CPU in the dry run (tiny sizes).
GPU_BUDGETS = {"tests": 260.0, "pipelines": 40.0, "critic": 25.0, "vllm": 110.0}
CPU_BUDGETS = {"tests": 120.0, "pipelines": 60.0, "critic": 60.0, "vllm": 0.0}
VLLM_SERVED_NAME = "tiny-critic"


@dataclass
class Settings:
    """What one run does; the CPU dry run shrinks every size."""

    cpu: bool
    device: str
    image_size: int
    steps: int
    images_per_call: int
    calls: int
    critic_requests: int
    critic_concurrency: int
    critic_max_tokens: int
    budgets: dict[str, float] = field(default_factory=dict)

    @classmethod
    def make(cls, cpu: bool) -> Settings:
        if cpu:
            return cls(True, "cpu", 32, 2, 1, 1, 4, 2, 8, dict(CPU_BUDGETS))
        return cls(False, "cuda", 64, 8, 4, 10, 32, 8, 32, dict(GPU_BUDGETS))


class Deadline:
    """The overall budget; a stage gets the smaller of its own budget and what is left."""

    def __init__(self, total_s: float) -> None:
        self.end = time.monotonic() + total_s

    def budget(self, stage_s: float) -> float:
        return max(0.0, min(stage_s, self.end - time.monotonic()))


# --------------------------------------------------------------------------- stage 2: tests


def run_tests(settings: Settings, budget_s: float, work: Path, figures: Figures) -> str:
    """``pytest -m gpu tests/gpu`` in a subprocess; per-test records land in ``figures.tests``."""
    results = work / "gpu-tests.json"
    results.unlink(missing_ok=True)
    env = {**os.environ, "GCR_GPU_RESULTS": str(results), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    if settings.cpu:
        env["CUDA_VISIBLE_DEVICES"] = ""  # the dry run must not touch a GPU even where one exists
    per_test = max(30, min(210, int(budget_s) - 10))  # one hung test cannot take the whole stage
    command = [
        sys.executable, "-m", "pytest", "-m", "gpu", str(ROOT / "tests" / "gpu"), "-q", "-rA",
        "-p", "no:cacheprovider", f"--timeout={per_test}",
    ]  # fmt: skip
    log = work / "pytest.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            code = proc.wait(timeout=budget_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            code = None
    if results.is_file():
        figures.tests = json.loads(results.read_text(encoding="utf-8")).get("tests", {})
    lines = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    figures.pytest_summary = lines[-1] if lines else ""
    if code is None:
        return f"timed out after {budget_s:.0f}s (tests finished before then are listed)"
    if code in (0, 5):  # 5: nothing collected
        return "ok"
    if not figures.tests:
        figures.pytest_output_tail = "\n".join(lines[-30:])
    return f"pytest exited with {code}"


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop a child started with ``start_new_session`` and everything it started."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=15)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


# --------------------------------------------------------------------------- stage 3: pipelines


def pipeline_throughput(settings: Settings, budget_s: float, work: Path, figures: Figures) -> str:
    """Images per second of each tiny pipeline through ``DiffusersGenerator`` (load excluded)."""
    import torch

    from gcr.dev.tiny_pipelines import PIPELINE_KINDS, build_tiny_pipeline
    from gcr.generators.base import GenerationRequest
    from gcr.generators.diffusers_adapter import DiffusersGenerator
    from gcr.generators.loading import PipelineCache
    from gcr.images import ensure_rgb

    start = time.monotonic()
    status = "ok"
    source = _noise_image(1, settings.image_size)
    for i, kind in enumerate(PIPELINE_KINDS):
        share = (budget_s - (time.monotonic() - start)) / (len(PIPELINE_KINDS) - i)
        if share <= 1.0:
            status = f"out of time before {kind}"
            break
        folder = build_tiny_pipeline(kind, work / "pipelines" / kind)
        cache = PipelineCache()
        gen = DiffusersGenerator(str(folder), device=settings.device, cache=cache)
        request = GenerationRequest(
            prompt="a red cat sitting on a wooden table",
            width=settings.image_size,
            height=settings.image_size,
            steps=settings.steps,
            num_images=settings.images_per_call,
            source_images=[ensure_rgb(source)] if gen.task.value == "edit" else [],
        )
        gen.generate(request)  # loads and warms up (kernels, allocator)
        kind_deadline = time.monotonic() + share
        calls, elapsed = _timed_calls(functools.partial(gen.generate, request), settings.calls, kind_deadline)
        figures.pipelines.append(
            {
                "pipeline": kind,
                "device": str(gen.device),
                "dtype": str(gen.dtype).removeprefix("torch."),
                "size": settings.image_size,
                "steps": settings.steps,
                "images_per_call": settings.images_per_call,
                "calls": calls,
                "images_per_s": round(calls * settings.images_per_call / elapsed, 2) if calls else None,
            }
        )
        cache.clear()
    _free_accelerator(torch)
    return status


def _timed_calls(call: Callable[[], Any], wanted: int, deadline: float) -> tuple[int, float]:
    """Make up to ``wanted`` calls, stopping at ``deadline``; (calls made, seconds)."""
    started = time.perf_counter()
    done = 0
    while done < wanted and (done == 0 or time.monotonic() < deadline):
        call()
        done += 1
    _synchronize()
    return done, time.perf_counter() - started


# --------------------------------------------------------------------------- stages 4-5: critic


def critic_throughput(settings: Settings, budget_s: float, work: Path, figures: Figures) -> str:
    """Critic answers per second of the tiny critic loaded in-process."""
    import torch

    from gcr.critic.backends.transformers_local import TransformersBackend

    critic_dir = _tiny_critic(work)
    backend = TransformersBackend(
        critic_dir, device=settings.device, max_batch_size=settings.critic_concurrency, max_pixels=65_536
    )
    backend.load()
    row = _measure_critic(backend, "transformers (in-process)", settings, budget_s)
    row.update(device=str(backend.device), dtype=str(backend.dtype).removeprefix("torch."))
    figures.critic.append(row)
    del backend
    _free_accelerator(torch)
    return "ok" if row["answers"] == settings.critic_requests else "out of time (fewer requests than planned)"


def vllm_throughput(settings: Settings, budget_s: float, work: Path, figures: Figures) -> str:
    """The same requests against the tiny critic behind ``vllm serve`` (as ``gcr serve critic`` starts it)."""
    import importlib.util

    from gcr.critic.backends.openai_http import OpenAICompatibleBackend
    from gcr.critic.serving import CriticServer, ServeConfig, find_executable

    if settings.cpu:
        return "skipped: vLLM needs a GPU (CPU dry run)"
    if importlib.util.find_spec("vllm") is None or find_executable("vllm") is None:
        return "skipped: vLLM is not installed here"
    started = time.monotonic()
    config = ServeConfig(
        model=str(_tiny_critic(work)),
        served_model_name=VLLM_SERVED_NAME,
        port=_free_port(),
        max_model_len=4096,  # the tiny critic's context
        max_images=2,
        max_pixels=65_536,
        gpu_memory_utilization=0.25,
        extra_args=("--enforce-eager",),  # no CUDA-graph capture: a minute saved from the budget
    )
    server = CriticServer(config)
    log_path = work / "vllm.log"
    log = log_path.open("wb")
    try:
        server.start(stdout=log, stderr=subprocess.STDOUT)
        server.wait_ready(timeout=max(budget_s - 30.0, 10.0))
        figures.vllm_startup_s = round(time.monotonic() - started, 1)
        backend = OpenAICompatibleBackend(server.url, VLLM_SERVED_NAME, timeout=60, max_retries=0)
        remaining = budget_s - (time.monotonic() - started)
        row = _measure_critic(backend, "vLLM server", settings, remaining)
        row.update(device="cuda", dtype="auto (vLLM)")
        figures.critic.append(row)
    except Exception as exc:  # the report says what failed; the other figures stay
        log.flush()
        tail = " / ".join(log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:])
        return f"failed: {type(exc).__name__}: {exc}; the server's last lines: {tail or '(none)'}"
    finally:
        server.stop(grace=20.0)
        log.close()
    return "ok"


def _measure_critic(backend: Any, name: str, settings: Settings, budget_s: float) -> dict[str, Any]:
    """Send ``critic_requests`` full pointwise critic prompts, ``critic_concurrency`` at a time."""
    from gcr.critic.backends.base import SamplingParams
    from gcr.critic.templates import load_template, render_pointwise
    from gcr.task import Task

    template = load_template("pointwise", Task.T2I)
    requests = [
        render_pointwise(template, f"a red cat number {i} on a table", _noise_image(i, 256))
        for i in range(settings.critic_requests)
    ]
    sampling = SamplingParams(temperature=0.0, max_tokens=settings.critic_max_tokens)

    async def run() -> tuple[int, float]:
        await backend.complete(requests[0], sampling)  # warm-up (first batch, kernels, connection)
        gate = asyncio.Semaphore(settings.critic_concurrency)
        deadline = time.monotonic() + budget_s

        async def one(request: Any) -> bool:
            async with gate:
                if time.monotonic() > deadline:
                    return False
                await backend.complete(request, sampling)
                return True

        started = time.perf_counter()
        try:
            done = await asyncio.gather(*(one(r) for r in requests))
        finally:
            await backend.aclose()
        return sum(done), time.perf_counter() - started

    answers, elapsed = asyncio.run(run())
    return {
        "backend": name,
        "requests": settings.critic_requests,
        "answers": answers,
        "concurrency": settings.critic_concurrency,
        "max_tokens": settings.critic_max_tokens,
        "answers_per_s": round(answers / elapsed, 2) if answers else None,
    }


# --------------------------------------------------------------------------- helpers


def _tiny_critic(work: Path) -> Path:
    from gcr.dev.tiny_critic import build_tiny_critic

    folder = work / "critic"
    return folder if (folder / "config.json").is_file() else build_tiny_critic(folder)


def _noise_image(seed: int, size: int) -> Any:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), "RGB")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _synchronize() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _free_accelerator(torch: Any) -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# --------------------------------------------------------------------------- main


def run_check(cpu: bool, out: Path, work: Path, total_budget_s: float) -> int:
    settings = Settings.make(cpu)
    deadline = Deadline(total_budget_s)
    figures = Figures(mode="CPU dry run" if cpu else "GPU")
    started = time.monotonic()
    figures.environment = environment(cpu)
    if not cpu and figures.environment.get("cuda_available") != "yes":
        logger.error("no CUDA device here: run on a GPU, or pass --cpu for the dry run")
        return 2
    stages: list[tuple[str, Callable[[Settings, float, Path, Figures], str]]] = [
        ("tests", run_tests),
        ("pipelines", pipeline_throughput),
        ("critic", critic_throughput),
        ("vllm", vllm_throughput),
    ]
    for name, stage in stages:
        budget = deadline.budget(settings.budgets[name])
        t0 = time.monotonic()
        if budget <= 0 and settings.budgets[name] > 0:
            status = "skipped: the overall budget was spent"
        else:
            logger.info("stage %s (budget %.0fs)", name, budget)
            try:
                status = stage(settings, budget, work, figures)
            except Exception as exc:  # one broken stage must not lose the others' figures
                logger.exception("stage %s failed", name)
                status = f"failed: {type(exc).__name__}: {exc}"
        figures.stages.append(
            {
                "stage": name,
                "budget_s": round(budget, 1),
                "seconds": round(time.monotonic() - t0, 1),
                "status": status,
            }
        )
    figures.total_s = round(time.monotonic() - started, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_report(figures), encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps(asdict(figures), indent=2), encoding="utf-8")
    logger.info("report written to %s (%.0fs)", out, figures.total_s)
    return 0 if figures.all_good() else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cpu", "--dry-run", dest="cpu", action="store_true", help="run on the CPU, tiny sizes"
    )
    parser.add_argument(
        "--out", type=Path, help="report path (default: docs/gpu-report.md; dry run: ./gpu-check-dry-run.md)"
    )
    parser.add_argument(
        "--workdir", type=Path, help="scratch folder for models and logs (default: a temp dir)"
    )
    parser.add_argument("--budget-s", type=float, default=450.0, help="overall time budget in seconds")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if args.cpu:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # set before torch is imported in this process
    with tempfile.TemporaryDirectory(prefix="gcr-gpu-check-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        default_out = Path("gpu-check-dry-run.md") if args.cpu else ROOT / "docs" / "gpu-report.md"
        return run_check(args.cpu, args.out or default_out, work, args.budget_s)


if __name__ == "__main__":
    sys.exit(main())
