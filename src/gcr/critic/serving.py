"""Start an OpenAI-compatible server for the critic: vLLM on GPUs, ``transformers serve`` elsewhere.

This module builds the exact command line, starts it as a child process, waits
until it answers, and stops it (forwarding signals). It renders nothing; the
``gcr serve critic`` command in :mod:`gcr.cli.serve` shows progress.

vLLM gets the settings the released RationalRewards model was served with: a
served model name, up to 16 images per prompt (no video), a 40,960-token
context, the image pixel budget forwarded to the Qwen3-VL processor, and data
parallelism across the visible GPUs (tensor parallelism on request). Because it
applies the budget itself, its clients may send images as they are
(:func:`client_image_settings`); with a local media folder it also reads
``file://`` image URLs under that folder, so clients on the same machine send
run-folder images by path.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Literal

import httpx

from gcr.critic.defaults import (
    DEFAULT_MAX_IMAGES_PER_PROMPT,
    DEFAULT_MAX_MODEL_LEN,
    DEFAULT_MAX_PIXELS,
    DEFAULT_MIN_PIXELS,
    DEFAULT_PORT,
)
from gcr.errors import ConfigError, CriticServeError, CriticUnavailableError, DependencyError

logger = logging.getLogger(__name__)

ServerBackend = Literal["vllm", "transformers"]
SERVER_BACKENDS: tuple[ServerBackend, ...] = ("vllm", "transformers")


@dataclass
class ServeConfig:
    """How to serve the critic. ``None`` sizes are derived from the visible GPUs."""

    model: str
    backend: ServerBackend = "vllm"
    served_model_name: str | None = None
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    tensor_parallel_size: int | None = None
    data_parallel_size: int | None = None
    max_model_len: int = DEFAULT_MAX_MODEL_LEN
    max_images: int = DEFAULT_MAX_IMAGES_PER_PROMPT
    max_pixels: int = DEFAULT_MAX_PIXELS
    min_pixels: int = DEFAULT_MIN_PIXELS
    gpu_memory_utilization: float | None = None
    device: str | None = None
    dtype: str | None = None
    #: A folder the server may read images from (``file://`` URLs); clients on this machine
    #: then send run-folder images by path instead of by bytes. None: bytes only.
    local_media_root: str | Path | None = None
    extra_args: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.backend not in SERVER_BACKENDS:
            raise ConfigError(f"unknown server backend {self.backend!r}: use vllm or transformers")
        if not self.model or not str(self.model).strip():
            raise ConfigError("no model to serve: pass --model with a Hugging Face id or a local folder")
        if not 0 < self.port < 65536:
            raise ConfigError(f"port {self.port} is out of range 1-65535")
        for name in ("tensor_parallel_size", "data_parallel_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name.replace('_', '-')} must be at least 1, got {value}")
        if self.max_images < 1 or self.max_model_len < 1 or self.max_pixels < 1:
            raise ConfigError("max images, max model length and max pixels must be positive")
        if self.local_media_root is not None:
            root = Path(self.local_media_root).expanduser().resolve()
            if not root.is_dir():
                raise ConfigError(f"--local-media {root} is not a folder; create it or give an existing one")
            self.local_media_root = root
        if self.gpu_memory_utilization is not None and not 0 < self.gpu_memory_utilization <= 1:
            raise ConfigError(f"gpu memory utilization must be in (0, 1], got {self.gpu_memory_utilization}")
        if self.backend == "transformers":
            vllm_only = {
                "--served-model-name": self.served_model_name,
                "--tp": self.tensor_parallel_size,
                "--dp": self.data_parallel_size,
                "--gpu-memory-utilization": self.gpu_memory_utilization,
                "--local-media": self.local_media_root,
            }
            given = [flag for flag, value in vllm_only.items() if value is not None]
            if given:
                raise ConfigError(
                    f"{', '.join(given)} only apply to the vLLM backend; `transformers serve` serves one "
                    "model on one device under the model id as given"
                )

    @property
    def model_name(self) -> str:
        """The name clients put in requests.

        vLLM serves under ``served_model_name`` (default: the last part of the model id
        or folder); ``transformers serve`` only answers to the model exactly as given.
        """
        if self.backend == "transformers":
            return str(self.model)
        if self.served_model_name:
            return self.served_model_name
        return Path(str(self.model).rstrip("/")).name or str(self.model)


def visible_gpu_count() -> int:
    """GPUs this process may use: ``CUDA_VISIBLE_DEVICES`` if set, else what torch sees."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        ids = [d.strip() for d in env.split(",") if d.strip()]
        # A negative id hides that device and every one after it.
        count = 0
        for d in ids:
            if d.startswith("-"):
                break
            count += 1
        return count
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def parallel_sizes(gpus: int, tensor: int | None, data: int | None) -> tuple[int, int]:
    """(tensor, data) parallel sizes: one model copy per GPU unless told otherwise.

    The 8B critic fits one GPU, so data parallelism (independent replicas) is the
    default; tensor parallelism splits one replica over several GPUs.
    """
    tp = tensor or 1
    dp = data or (max(gpus // tp, 1) if gpus else 1)
    if gpus and tp * dp > gpus:
        raise ConfigError(
            f"tensor-parallel {tp} x data-parallel {dp} needs {tp * dp} GPUs but {gpus} are visible; "
            "lower --tp/--dp or set CUDA_VISIBLE_DEVICES"
        )
    return tp, dp


def build_vllm_command(config: ServeConfig, gpus: int | None = None) -> list[str]:
    """The ``vllm serve`` command line for ``config`` (argument list, no shell quoting)."""
    gpus = visible_gpu_count() if gpus is None else gpus
    tp, dp = parallel_sizes(gpus, config.tensor_parallel_size, config.data_parallel_size)
    limits = json.dumps({"image": config.max_images, "video": 0})
    size = {"longest_edge": config.max_pixels, "shortest_edge": min(config.min_pixels, config.max_pixels)}
    cmd = [
        "vllm", "serve", str(config.model),
        "--served-model-name", config.model_name,
        "--host", config.host,
        "--port", str(config.port),
        "--max-model-len", str(config.max_model_len),
        "--limit-mm-per-prompt", limits,
        "--mm-processor-kwargs", json.dumps({"size": size}),
        "--tensor-parallel-size", str(tp),
        "--data-parallel-size", str(dp),
    ]  # fmt: skip
    if config.gpu_memory_utilization is not None:
        cmd += ["--gpu-memory-utilization", f"{config.gpu_memory_utilization:g}"]
    if config.dtype:
        cmd += ["--dtype", config.dtype]
    if config.local_media_root is not None:
        # vLLM reads file:// image URLs only under this one folder (MediaConnector._load_file_url in
        # vllm-project/vllm vllm/multimodal/utils.py; the flag is ModelConfig.allowed_local_media_path).
        cmd += ["--allowed-local-media-path", str(config.local_media_root)]
    return cmd + list(config.extra_args)


def client_image_settings(config: ServeConfig) -> dict[str, str]:
    """Environment settings that make gcr's HTTP critic use what this server can do.

    vLLM applies the pixel budget itself (``--mm-processor-kwargs``), so clients send
    images as they are; with a local media folder they send files under it by path.
    ``transformers serve`` gets neither setting, so its clients keep the defaults.
    """
    from gcr.critic.defaults import IMAGE_RESIZE_ENV, LOCAL_MEDIA_ENV

    if config.backend != "vllm":
        return {}
    settings = {IMAGE_RESIZE_ENV: "server"}
    if config.local_media_root is not None:
        settings[LOCAL_MEDIA_ENV] = str(config.local_media_root)
    return settings


def build_transformers_command(config: ServeConfig) -> list[str]:
    """The ``transformers serve`` command line: one pinned model, CPU-friendly."""
    cmd = ["transformers", "serve", str(config.model), "--host", config.host, "--port", str(config.port)]
    if config.device:
        cmd += ["--device", config.device]
    if config.dtype:
        cmd += ["--dtype", config.dtype]
    return cmd + list(config.extra_args)


def build_command(config: ServeConfig, gpus: int | None = None) -> list[str]:
    if config.backend == "vllm":
        return build_vllm_command(config, gpus)
    return build_transformers_command(config)


def format_command(cmd: list[str]) -> str:
    """The command as one line to paste into a POSIX shell."""
    return shlex.join(cmd)


def find_executable(name: str) -> str | None:
    """``name`` on PATH, or next to this Python (a virtual environment not on PATH)."""
    found = shutil.which(name)
    if found:
        return found
    sibling = Path(sys.executable).with_name(name)
    return str(sibling) if sibling.is_file() and os.access(sibling, os.X_OK) else None


def check_backend_available(config: ServeConfig) -> str:
    """Path of the server executable, or a :class:`CriticServeError` that says what to do instead."""
    if config.backend == "vllm":
        exe = find_executable("vllm")
        if exe is None:
            fallback = ServeConfig(
                model=config.model, backend="transformers", host=config.host, port=config.port
            )
            raise CriticServeError(
                "vLLM is not installed here (it needs a CUDA GPU; install it with `pip install vllm` "
                "on a GPU machine). On this machine serve the critic with transformers instead: "
                f"`gcr serve critic --backend transformers --model {config.model}`, which runs "
                f"`{format_command(build_transformers_command(fallback))}` (pip install 'gcr[serve]')"
            )
        return exe
    exe = find_executable("transformers")
    missing = [m for m in ("fastapi", "uvicorn") if importlib.util.find_spec(m) is None]
    if exe is None or missing:
        raise DependencyError("transformers[serving]", "serve", "`transformers serve`")
    return exe


def client_url(host: str, port: int) -> str:
    """The ``/v1`` base URL a client on this machine uses for a server bound to ``host``."""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}/v1"


def readiness_url(config: ServeConfig) -> str:
    """What to poll: vLLM's model list; ``transformers serve`` lists its cache there, so its health."""
    base = client_url(config.host, config.port)
    if config.backend == "vllm":
        return base + "/models"
    return base.removesuffix("/v1") + "/health"


class CriticServer:
    """A critic server child process: start, wait until it answers, forward signals, stop.

    Usable as a context manager (stops the server on exit).
    """

    def __init__(self, config: ServeConfig, *, gpus: int | None = None) -> None:
        self.config = config
        self.command = build_command(config, gpus)
        self.url = client_url(config.host, config.port)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, stdout: int | None = None, stderr: int | None = None) -> None:
        exe = check_backend_available(self.config)
        argv = [exe, *self.command[1:]]
        logger.info("starting critic server: %s", format_command(self.command))
        # Its own session, so a terminal's Ctrl-C reaches it only through us (see wait()).
        self.process = subprocess.Popen(argv, stdout=stdout, stderr=stderr, start_new_session=True)

    def wait_ready(
        self,
        timeout: float = 900.0,
        interval: float = 1.0,
        on_wait: Callable[[float], None] | None = None,
    ) -> None:
        """Block until the server answers; ``on_wait(elapsed_s)`` is called between polls."""
        url = readiness_url(self.config)
        start = time.monotonic()
        with httpx.Client(timeout=5.0) as client:
            while True:
                if self.process is not None and self.process.poll() is not None:
                    raise CriticServeError(
                        f"the critic server exited with code {self.process.returncode} before it answered; "
                        "its output above says why"
                    )
                try:
                    if client.get(url).status_code == 200:
                        logger.info("critic server ready at %s", self.url)
                        return
                except httpx.HTTPError:
                    pass
                elapsed = time.monotonic() - start
                if elapsed > timeout:
                    raise CriticUnavailableError(
                        f"the critic server did not answer at {url} within {timeout:g}s; loading a large "
                        "model can take minutes: raise --ready-timeout"
                    )
                if on_wait is not None:
                    on_wait(elapsed)
                time.sleep(interval)

    def wait(self) -> int:
        """Block until the server exits, forwarding SIGINT/SIGTERM/SIGHUP to it; its exit code."""
        proc = self._require_process()

        def forward(signum: int, frame: FrameType | None) -> None:
            logger.info("forwarding signal %d to the critic server", signum)
            self._signal(signum)

        handled = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
        previous = {s: signal.signal(s, forward) for s in handled}
        try:
            return proc.wait()
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def stop(self, grace: float = 30.0) -> int | None:
        """Ask the server to stop (SIGTERM), then kill it after ``grace`` seconds."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self._signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            logger.warning("critic server did not stop within %gs; killing it", grace)
            self._signal(signal.SIGKILL)
            return self.process.wait()

    def _signal(self, signum: int) -> None:
        proc = self._require_process()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signum)  # the server and the workers it started

    def _require_process(self) -> subprocess.Popen[bytes]:
        if self.process is None:
            raise RuntimeError("the critic server was not started")
        return self.process

    def __enter__(self) -> CriticServer:
        if self.process is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
