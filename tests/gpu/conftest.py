"""GPU test fixtures: peak GPU memory per test, and the per-test record the check script reads.

Every test here runs only with ``-m gpu`` (the default options exclude it) and
skips with one reason where CUDA is missing (see :mod:`gpukit`).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
import torch
from gpukit import RESULTS, SKIP_REASON, PeakMemory, mib


@pytest.fixture(autouse=True)
def peak_gpu_memory(request: pytest.FixtureRequest) -> Iterator[PeakMemory]:
    """Reset CUDA's peak counters before the test; record the peak of this process after it.

    The figure is ``torch.cuda.max_memory_allocated`` (tensors this process held at
    once) plus ``max_memory_reserved`` (what the caching allocator took from the
    driver). Memory of child processes (a vLLM server, NCCL workers) is not in it;
    such tests add their own figures through :meth:`PeakMemory.note`.
    """
    record = PeakMemory()
    if SKIP_REASON is not None:
        yield record
        return
    gc.collect()
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    yield record
    torch.cuda.synchronize()
    fields = {
        "peak_allocated_mib": mib(torch.cuda.max_memory_allocated()),
        "peak_reserved_mib": mib(torch.cuda.max_memory_reserved()),
        **{f"{name}_mib": mib(value) for name, value in record.extra.items()},
    }
    request.node.user_properties.extend(fields.items())
    RESULTS.update(request.node.nodeid, **fields)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Keep each test's outcome next to its memory figures (a skip or error at setup counts too)."""
    if report.when == "call" or (report.when == "setup" and not report.passed):
        fields: dict[str, object] = {"outcome": report.outcome, "seconds": round(report.duration, 3)}
        if report.skipped and isinstance(report.longrepr, tuple):
            fields["reason"] = str(report.longrepr[2]).removeprefix("Skipped: ")
        elif report.failed:
            fields["outcome"] = "failed" if report.when == "call" else "error"
            fields["reason"] = _first_line(report)
        RESULTS.update(report.nodeid, **fields)


def _first_line(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    return " ".join(text.split())[:300]
