"""gcr serve critic: the exact server commands, GPU sizing, availability checks and the process lifecycle."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gcr.cli.app import app
from gcr.critic import serving
from gcr.critic.defaults import RATIONALREWARDS_EDIT, RATIONALREWARDS_T2I
from gcr.critic.serving import (
    CriticServer,
    ServeConfig,
    build_command,
    check_backend_available,
    client_url,
    format_command,
    parallel_sizes,
    readiness_url,
    visible_gpu_count,
)
from gcr.errors import ConfigError, CriticServeError, CriticUnavailableError

runner = CliRunner()

VLLM_8_GPUS = (
    "vllm serve TIGER-Lab/RationalRewards-8B-T2I --served-model-name RationalRewards-8B-T2I "
    "--host 127.0.0.1 --port 8000 --max-model-len 40960 "
    "--limit-mm-per-prompt '{\"image\": 16, \"video\": 0}' "
    "--mm-processor-kwargs '{\"size\": {\"longest_edge\": 802816, \"shortest_edge\": 65536}}' "
    "--tensor-parallel-size 1 --data-parallel-size 8"
)


def test_vllm_command_has_the_released_model_settings() -> None:
    assert format_command(build_command(ServeConfig(model=RATIONALREWARDS_T2I), gpus=8)) == VLLM_8_GPUS


def test_vllm_command_arguments_are_single_argv_items() -> None:
    cmd = build_command(ServeConfig(model="/models/my critic", served_model_name="critic"), gpus=1)
    limits = cmd[cmd.index("--limit-mm-per-prompt") + 1]
    assert json.loads(limits) == {"image": 16, "video": 0}
    kwargs = json.loads(cmd[cmd.index("--mm-processor-kwargs") + 1])
    assert kwargs == {"size": {"longest_edge": 802_816, "shortest_edge": 65_536}}
    assert cmd[2] == "/models/my critic" and cmd[cmd.index("--served-model-name") + 1] == "critic"


def test_vllm_command_options() -> None:
    config = ServeConfig(
        model="org/critic", tensor_parallel_size=2, max_pixels=50_000, max_images=4, max_model_len=8192,
        gpu_memory_utilization=0.8, dtype="bfloat16", host="0.0.0.0", port=9000, extra_args=("--seed", "1"),
    )  # fmt: skip
    cmd = build_command(config, gpus=8)
    line = format_command(cmd)
    assert "--tensor-parallel-size 2 --data-parallel-size 4" in line
    assert "--gpu-memory-utilization 0.8 --dtype bfloat16 --seed 1" in line
    assert "--served-model-name critic" in line and "--host 0.0.0.0 --port 9000" in line
    assert json.loads(cmd[cmd.index("--mm-processor-kwargs") + 1])["size"] == {
        "longest_edge": 50_000, "shortest_edge": 50_000,
    }  # fmt: skip
    assert json.loads(cmd[cmd.index("--limit-mm-per-prompt") + 1])["image"] == 4
    assert cmd[cmd.index("--max-model-len") + 1] == "8192"


def test_transformers_command() -> None:
    config = ServeConfig(model="/tmp/critic", backend="transformers", port=8123, device="cpu", dtype="fp32")
    assert format_command(build_command(config)) == (
        "transformers serve /tmp/critic --host 127.0.0.1 --port 8123 --device cpu --dtype fp32"
    )
    assert config.model_name == "/tmp/critic"  # transformers serve answers only to the model as given


@pytest.mark.parametrize(
    ("gpus", "tp", "dp", "expected"),
    [(0, None, None, (1, 1)), (1, None, None, (1, 1)), (8, None, None, (1, 8)), (8, 2, None, (2, 4)),
     (8, None, 2, (1, 2)), (8, 4, 2, (4, 2)), (3, 2, None, (2, 1)), (0, 2, 3, (2, 3))],
)
def test_parallel_sizes(gpus: int, tp: int | None, dp: int | None, expected: tuple[int, int]) -> None:
    assert parallel_sizes(gpus, tp, dp) == expected


def test_parallel_sizes_beyond_the_visible_gpus_are_refused() -> None:
    with pytest.raises(ConfigError, match="needs 8 GPUs but 4 are visible"):
        parallel_sizes(4, 4, 2)


@pytest.mark.parametrize(("env", "count"), [("0,1,2,3", 4), ("", 0), ("2", 1), ("0,1,-1,3", 2)])
def test_visible_gpu_count_reads_cuda_visible_devices(monkeypatch, env: str, count: int) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", env)
    assert visible_gpu_count() == count


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"backend": "sglang"}, "unknown server backend"), ({"model": " "}, "no model"), ({"port": 0}, "port"),
     ({"tensor_parallel_size": 0}, "tensor-parallel-size"), ({"gpu_memory_utilization": 1.5}, "(0, 1]"),
     ({"backend": "transformers", "served_model_name": "x"}, "--served-model-name only apply to the vLLM"),
     ({"backend": "transformers", "data_parallel_size": 2}, "--dp only apply")],
)
def test_bad_serve_configs(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("]", r"\]")):
        ServeConfig(**{"model": "org/critic", **kwargs})


def test_urls() -> None:
    assert client_url("0.0.0.0", 8000) == "http://127.0.0.1:8000/v1"
    assert client_url("::1", 8000) == "http://[::1]:8000/v1"
    assert readiness_url(ServeConfig(model="m", port=1234)) == "http://127.0.0.1:1234/v1/models"
    assert readiness_url(ServeConfig(model="m", backend="transformers", port=1234)) == "http://127.0.0.1:1234/health"


def test_missing_vllm_offers_the_transformers_fallback(monkeypatch) -> None:
    monkeypatch.setattr(serving, "find_executable", lambda name: None)
    with pytest.raises(CriticServeError) as info:
        check_backend_available(ServeConfig(model="org/critic", port=8001))
    message = str(info.value)
    assert "vLLM is not installed" in message
    assert "gcr serve critic --backend transformers --model org/critic" in message
    assert "transformers serve org/critic --host 127.0.0.1 --port 8001" in message


# -- the CLI ------------------------------------------------------------------------------------


def test_cli_dry_run_prints_the_vllm_command(monkeypatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3,4,5,6,7")
    result = runner.invoke(app, ["serve", "critic", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == VLLM_8_GPUS


def test_cli_dry_run_edit_model_with_extra_args(monkeypatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    args = ["serve", "critic", "--task", "edit", "--tp", "2", "--port", "9001", "--dry-run"]
    args += ["--", "--seed", "3"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    line = result.stdout.strip()
    assert line.startswith(f"vllm serve {RATIONALREWARDS_EDIT} --served-model-name RationalRewards-8B-Edit")
    assert "--port 9001" in line and "--tensor-parallel-size 2 --data-parallel-size 1" in line
    assert line.endswith("--seed 3")


def test_cli_dry_run_prints_the_transformers_command() -> None:
    result = runner.invoke(
        app, ["serve", "critic", "--backend", "transformers", "--model", "/tmp/tiny", "--device", "cpu",
              "--port", "8124", "--dry-run"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "transformers serve /tmp/tiny --host 127.0.0.1 --port 8124 --device cpu"


def test_cli_without_vllm_says_so_and_exits_1(monkeypatch, capsys) -> None:
    from gcr.cli.app import main

    monkeypatch.setattr(serving, "find_executable", lambda name: None)
    monkeypatch.setattr(sys, "argv", ["gcr", "serve", "critic", "--model", "org/critic"])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert "vLLM is not installed" in err and "--backend transformers" in err and "Traceback" not in err


# -- the process lifecycle, with a small fake server executable --------------------------------------

FAKE_SERVER = r'''
import http.server, json, os, signal, sys, time
args = sys.argv[1:]
port = int(args[args.index("--port") + 1])
mode = os.environ.get("FAKE_MODE", "ok")
log = os.environ["FAKE_LOG"]
if mode == "crash":
    sys.exit(3)
if mode == "slow":
    time.sleep(60)
def stop(signum, frame):
    with open(log, "a") as f:
        f.write(f"signal {signum}\n")
    sys.exit(0)
signal.signal(signal.SIGINT, stop)
signal.signal(signal.SIGTERM, stop)
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def do_GET(self):
        body = json.dumps({"status": "ok"}).encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def fake_server(tmp_path: Path, monkeypatch):
    exe = tmp_path / "transformers"
    exe.write_text(f"#!{sys.executable}\n{FAKE_SERVER}")
    exe.chmod(0o755)
    log = tmp_path / "signals.log"
    monkeypatch.setenv("FAKE_LOG", str(log))
    monkeypatch.setattr(serving, "find_executable", lambda name: str(exe))

    def make(mode: str = "ok") -> CriticServer:
        monkeypatch.setenv("FAKE_MODE", mode)
        return CriticServer(ServeConfig(model="/tmp/m", backend="transformers", port=free_port()))

    make.log = log
    return make


def test_server_starts_answers_and_forwards_ctrl_c(fake_server) -> None:
    server = fake_server()
    server.start()
    try:
        waits: list[float] = []
        server.wait_ready(timeout=20, interval=0.05, on_wait=waits.append)
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
        code = server.wait()
    finally:
        server.stop(grace=5)
    assert code == 0
    assert fake_server.log.read_text().strip() == f"signal {int(signal.SIGINT)}"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # our handler was removed again


def test_server_that_exits_early_is_reported(fake_server) -> None:
    server = fake_server("crash")
    server.start()
    with pytest.raises(CriticServeError, match="exited with code 3"):
        server.wait_ready(timeout=20, interval=0.05)


def test_server_that_never_answers_times_out_and_is_stopped(fake_server) -> None:
    with fake_server("slow") as server:
        start = time.monotonic()
        with pytest.raises(CriticUnavailableError, match=r"within 0.3s.*--ready-timeout"):
            server.wait_ready(timeout=0.3, interval=0.05)
        assert time.monotonic() - start < 5
    assert server.process.returncode is not None  # stopped by the context manager
