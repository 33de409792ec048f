"""The figures of ``gpu_check.py`` and their Markdown report (device, versions, stages, tests, throughput).

Every number in the report is one the check measured in this run; what was not
measured says why ("skipped: ...", "not run") instead of showing a number.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import platform
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any

#: Libraries whose versions decide the CUDA paths gcr takes.
LIBRARIES = ("torch", "diffusers", "transformers", "accelerate", "peft", "trl", "vllm", "gcr")
OK_OUTCOMES = ("passed", "skipped")
PIPELINE_KEYS = ("pipeline", "device", "dtype", "size", "steps", "images_per_call", "calls", "images_per_s")
CRITIC_KEYS = (
    "backend",
    "device",
    "dtype",
    "requests",
    "answers",
    "concurrency",
    "max_tokens",
    "answers_per_s",
)


@dataclass
class Figures:
    """Everything one check run measured."""

    mode: str
    environment: dict[str, str] = field(default_factory=dict)
    stages: list[dict[str, Any]] = field(default_factory=list)
    tests: dict[str, dict[str, Any]] = field(default_factory=dict)
    pytest_summary: str = ""
    pytest_output_tail: str = ""
    pipelines: list[dict[str, Any]] = field(default_factory=list)
    critic: list[dict[str, Any]] = field(default_factory=list)
    vllm_startup_s: float | None = None
    total_s: float | None = None

    def failed_tests(self) -> list[str]:
        return [name for name, t in self.tests.items() if t.get("outcome") not in OK_OUTCOMES]

    def all_good(self) -> bool:
        stages_ok = all(s["status"] == "ok" or s["status"].startswith("skipped") for s in self.stages)
        return stages_ok and not self.failed_tests()


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _driver_version() -> str:
    """The NVIDIA driver version from ``nvidia-smi``, or why it is unknown."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return "unknown (no nvidia-smi)"
    try:
        done = subprocess.run(
            [exe, "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=15,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({type(exc).__name__})"
    lines = done.stdout.strip().splitlines()
    return lines[0].strip() if done.returncode == 0 and lines else "unknown (nvidia-smi failed)"


def environment(cpu: bool) -> dict[str, str]:
    """Device, driver, CUDA and library versions of this machine."""
    import torch

    env = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "host": f"{platform.node()} ({platform.platform()}, Python {platform.python_version()})",
        "cuda_available": "yes" if torch.cuda.is_available() else "no",
        "torch_cuda": torch.version.cuda or "none (CPU build)",
        "cudnn": str(torch.backends.cudnn.version()) if torch.cuda.is_available() else "n/a",
    }
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        props = torch.cuda.get_device_properties(0)
        env["device"] = f"{props.name} ×{count}, {props.total_memory / 2**30:.1f} GiB each"
        env["compute_capability"] = f"{props.major}.{props.minor}"
        env["bf16_supported"] = "yes" if torch.cuda.is_bf16_supported() else "no"
        env["driver"] = _driver_version()
    else:
        env["device"] = "CPU (dry run)" if cpu else "no CUDA device"
        env["driver"] = "n/a"
    for name in LIBRARIES:
        env[name] = _version(name)
    return env


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    text = str(value).replace("|", "\\|").replace("\n", " ")
    return text


def _table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def render_report(f: Figures) -> str:
    """The Markdown report of one check run."""
    env = f.environment
    outcomes: dict[str, int] = {}
    for t in f.tests.values():
        outcomes[t.get("outcome", "unknown")] = outcomes.get(t.get("outcome", "unknown"), 0) + 1
    counts = ", ".join(f"{n} {k}" for k, n in sorted(outcomes.items())) or "no test results"
    verdict = "all stages finished, no test failed" if f.all_good() else "PROBLEMS (see below)"
    out = [
        "# gcr GPU check",
        "",
        f"- Date: {env.get('date', '—')}",
        f"- Mode: {f.mode}"
        + (" — the CPU code path of the script only; no GPU figures" if f.mode != "GPU" else ""),
        f"- Device: {env.get('device', '—')}",
        f"- Result: {verdict}; tests: {counts}; total {f.total_s} s",
        "",
        "Written by `python benchmarks/gpu_check.py`. Peak memory is that of the pytest process",
        "(`torch.cuda.max_memory_allocated` / `max_memory_reserved`, reset before each test); figures of",
        "child processes (vLLM server, NCCL workers) are listed separately under *other*.",
        "",
        "## Device and versions",
        "",
        *_table(["item", "value"], [[k, v] for k, v in env.items()]),
        "",
        "## Stages",
        "",
        *_table(
            ["stage", "budget (s)", "took (s)", "status"],
            [[s["stage"], s["budget_s"], s["seconds"], s["status"]] for s in f.stages],
        ),
        "",
        "## Tests (`pytest -m gpu tests/gpu`)",
        "",
    ]
    if f.tests:
        rows = []
        for name, t in sorted(f.tests.items()):
            other = ", ".join(
                f"{k.removesuffix('_mib')}: {v} MiB"
                for k, v in t.items()
                if k.endswith("_mib") and k not in ("peak_allocated_mib", "peak_reserved_mib")
            )
            rows.append(
                [
                    name,
                    t.get("outcome", "unknown"),
                    t.get("seconds"),
                    t.get("peak_allocated_mib"),
                    t.get("peak_reserved_mib"),
                    other or None,
                    t.get("reason"),
                ]
            )
        out += _table(
            ["test", "outcome", "seconds", "peak allocated (MiB)", "peak reserved (MiB)", "other", "note"],
            rows,
        )
    else:
        out.append("No per-test results came back.")
    if f.pytest_summary:
        out += ["", f"pytest: `{f.pytest_summary}`"]
    if f.pytest_output_tail:
        out += ["", "```", f.pytest_output_tail, "```"]
    out += [
        "",
        "## Throughput",
        "",
        "### Tiny pipelines (images per second, load excluded)",
        "",
    ]
    out += _table(
        ["pipeline", "device", "dtype", "size (px)", "steps", "images per call", "calls", "images/s"],
        [[p[k] for k in PIPELINE_KEYS] for p in f.pipelines],
    )
    out += [
        "",
        "### Tiny critic (answers per second)",
        "",
        "Each request is the full built-in pointwise critic prompt with one 256 px image, greedy, at most",
        "*max tokens* new tokens. The tiny critic is random, so its answers are words rather than critiques:",
        "the figure measures serving speed (prompt and image processing, prefill, decoding), not quality.",
        "",
    ]
    out += _table(
        ["backend", "device", "dtype", "requests", "answered", "concurrency", "max tokens", "answers/s"],
        [[c[k] for k in CRITIC_KEYS] for c in f.critic],
    )
    vllm_status = next((s["status"] for s in f.stages if s["stage"] == "vllm"), "not run")
    if f.vllm_startup_s is not None:
        out += ["", f"vLLM server start-up (to its first answer of /v1/models): {f.vllm_startup_s} s"]
    elif vllm_status != "ok":
        out += ["", f"vLLM: {vllm_status}"]
    return "\n".join(out) + "\n"
