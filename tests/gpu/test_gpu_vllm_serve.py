"""``gcr serve critic`` starting a real vLLM server with the tiny critic, answering ``gcr critique``.

Both commands run as the user runs them (``python -m gcr`` subprocesses, output
piped). The tiny critic is random, so ``gcr critique`` must end in the clear
"no readable critique" error carrying the model's own words (exit code 1),
which proves the whole transport: flags accepted by vLLM, the model loaded, the
multimodal request accepted, an answer streamed back and parsed.

Flags: the tiny critic was built with 4,096 positions, so the test serves it with
``--max-model-len 4096`` and a small image budget (2 images of at most 65,536
pixels) instead of the released model's 40,960 tokens and 16 images; vLLM refuses
a context longer than the model's and sizes its profiling run from the image
limits. ``--enforce-eager`` (passed through to vLLM after ``--``) skips CUDA graph
capture, which would cost a minute of the check's time budget. vLLM's flags as
gcr builds them were checked against vLLM's own argument parser
(vllm-project/vllm, ``vllm/engine/arg_utils.py``: ``--data-parallel-size``/``-dp``,
``--tensor-parallel-size``/``-tp``, ``--limit-mm-per-prompt``, ``--mm-processor-kwargs``,
``--served-model-name``, ``--max-model-len``, ``--gpu-memory-utilization``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import torch
from gpukit import GPU, PeakMemory, free_port, noise_image

from gcr.critic.backends.base import ChatRequest, SamplingParams
from gcr.critic.backends.openai_http import OpenAICompatibleBackend
from gcr.critic.serving import find_executable

pytestmark = [
    *GPU,
    pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None or find_executable("vllm") is None,
        reason="vLLM is not installed here (`import vllm` fails or no `vllm` command): "
        "install it on the GPU machine (pip install vllm) to test `gcr serve critic`",
    ),
]

SERVED_NAME = "tiny-critic"
READY_TIMEOUT_S = 180.0


@dataclass
class Served:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    device_bytes: int  # GPU memory the server took, from the driver's free-memory figure


def _gcr(*args: str) -> list[str]:
    return [sys.executable, "-m", "gcr", *args]


@pytest.fixture(scope="module")
def served(tiny_critic_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    port = free_port()
    log = tmp_path_factory.mktemp("vllm") / "serve.log"
    torch.cuda.empty_cache()
    free_before, _ = torch.cuda.mem_get_info()
    command = _gcr(
        "serve", "critic",
        "--model", str(tiny_critic_dir),
        "--served-model-name", SERVED_NAME,
        "--port", str(port),
        "--max-model-len", "4096",
        "--max-images", "2",
        "--max-pixels", "65536",
        "--gpu-memory-utilization", "0.25",
        "--ready-timeout", str(READY_TIMEOUT_S),
        "--", "--enforce-eager",
    )  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + READY_TIMEOUT_S + 20
    try:
        # gcr prints "critic ready: --critic URL ..." once vLLM answers; wait for what the user waits for.
        while "critic ready:" not in log.read_text(encoding="utf-8", errors="replace"):
            if process.poll() is not None:
                pytest.fail(f"gcr serve critic exited with {process.returncode}:\n{_tail(log)}")
            if time.monotonic() > deadline:
                pytest.fail(f"gcr serve critic was not ready within {READY_TIMEOUT_S:g}s:\n{_tail(log)}")
            time.sleep(1.0)
        free_after, _ = torch.cuda.mem_get_info()
        yield Served(url=url, process=process, log=log, device_bytes=max(free_before - free_after, 0))
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C does; gcr forwards it to vLLM
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def test_serve_critic_starts_vllm_and_gcr_critique_gets_an_answer(
    served: Served, tmp_path: Path, peak_gpu_memory: PeakMemory
) -> None:
    peak_gpu_memory.note("vllm_server_device", served.device_bytes)
    assert f"--critic {served.url} --model {SERVED_NAME}" in served.log.read_text(encoding="utf-8")
    assert httpx.get(served.url + "/models", timeout=5.0).json()["data"][0]["id"] == SERVED_NAME
    image = tmp_path / "candidate.png"
    noise_image(3, (64, 64)).save(image)
    done = subprocess.run(
        _gcr("critique", str(image), "--prompt", "a red cat on a table", "--critic", served.url,
             "--model", SERVED_NAME, "--max-tokens", "32", "--temperature", "0", "--retries", "0"),
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    message = " ".join(done.stderr.split())
    # A random model writes words, not a critique: a clear error with its raw text, never a score.
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert "no readable critique" in message or "cut off at max_tokens=32" in message, message
    assert "answer began" in message, message


def test_vllm_answers_a_multimodal_chat_request(served: Served) -> None:
    backend = OpenAICompatibleBackend(served.url, model=SERVED_NAME, timeout=120, max_retries=0)
    request = ChatRequest(
        system="You judge images.",
        parts=("Request: a red square.\nImage: ", noise_image(5, (48, 40)), "\nJudge it."),
    )

    async def ask() -> str:
        try:
            return await backend.complete(request, SamplingParams(temperature=0.0, max_tokens=12))
        finally:
            await backend.aclose()

    answer = asyncio.run(ask())
    assert answer.strip() and answer.finish_reason in ("stop", "length")


def test_ctrl_c_stops_the_server_cleanly(served: Served) -> None:
    _stop(served.process)
    assert served.process.returncode == 0, _tail(served.log)
    with pytest.raises(httpx.HTTPError):
        httpx.get(served.url + "/models", timeout=2.0)
