"""``benchmarks/gpu_check.py`` itself: its CPU dry run end to end, and its report on made-up failures.

The dry run is the same code as a GPU run at tiny sizes with CUDA hidden, so CI
checks the stages, the per-test records coming back from the pytest subprocess,
the figures and the Markdown report without a GPU.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
sys.path.insert(0, str(SCRIPT.parent))

from gpu_check_report import Figures, render_report  # noqa: E402

from gcr.dev.tiny_pipelines import PIPELINE_KINDS  # noqa: E402


def _section(report: str, title: str) -> str:
    """The text of the ``## title`` section (up to the next ``## ``)."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", report, flags=re.M | re.S)
    assert match, f"no section {title!r} in the report"
    return match.group(1)


def _rows(section: str) -> list[list[str]]:
    """Body rows of the Markdown tables in ``section`` (header and rule lines left out)."""
    rows = []
    for line in section.splitlines():
        if not line.startswith("| ") or set(line) <= set("|-"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        rows.append(cells)
    return [r for r in rows if r[0] not in ("item", "stage", "test", "pipeline", "backend")]


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, dict, str]:
    tmp = tmp_path_factory.mktemp("gpu-check")
    out = tmp / "report.md"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--cpu", "--out", str(out), "--workdir", str(tmp / "work")],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp,
    )
    assert out.is_file(), done.stderr[-3000:]
    figures = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    return done.returncode, out.read_text(encoding="utf-8"), figures, done.stderr


def test_dry_run_succeeds_and_says_what_it_is(dry_run) -> None:
    code, report, _, stderr = dry_run
    assert code == 0, stderr[-3000:]
    assert report.startswith("# gcr GPU check\n")
    assert "- Mode: CPU dry run" in report and "no GPU figures" in report
    assert "- Result: all stages finished, no test failed" in report


def test_report_names_the_device_and_every_version(dry_run) -> None:
    _, report, _, _ = dry_run
    table = dict((row[0], row[1]) for row in _rows(_section(report, "Device and versions")))
    for item in ("date", "device", "driver", "torch_cuda", "torch", "diffusers", "transformers", "vllm"):
        assert table.get(item), item
    assert table["device"] == "CPU (dry run)" and table["cuda_available"] == "no"
    assert re.fullmatch(r"\d+\.\d+.*", table["torch"]) and re.fullmatch(r"\d+\.\d+.*", table["diffusers"])


def test_every_stage_ran_within_its_budget(dry_run) -> None:
    _, report, _, _ = dry_run
    stages = {row[0]: row for row in _rows(_section(report, "Stages"))}
    assert list(stages) == ["tests", "pipelines", "critic", "vllm"]
    for name in ("tests", "pipelines", "critic"):
        _, budget, took, status = stages[name]
        assert status == "ok" and 0 < float(took) <= float(budget) + 5.0, stages[name]
    assert stages["vllm"][3].startswith("skipped: vLLM needs a GPU")


def test_every_gpu_test_is_listed_as_skipped_with_its_reason(dry_run) -> None:
    _, report, figures, _ = dry_run
    gpu_tests = sorted(Path(ROOT / "tests" / "gpu").glob("test_*.py"))
    rows = _rows(_section(report, "Tests (`pytest -m gpu tests/gpu`)"))
    assert len(rows) == len(figures["tests"]) >= 15
    assert {row[0].split("::")[0] for row in rows} == {f"tests/gpu/{p.name}" for p in gpu_tests}
    for test, outcome, *_, note in rows:
        # without CUDA, or (tests that need two GPUs) without a second GPU: either way one stated reason
        assert outcome == "skipped", test
        assert "torch.cuda.is_available() is False" in note or "at least 2 CUDA GPUs" in note, (test, note)
    assert sum("torch.cuda.is_available() is False" in row[-1] for row in rows) >= 14


def test_throughput_figures_are_present_and_numeric(dry_run) -> None:
    _, report, figures, _ = dry_run
    throughput = _section(report, "Throughput")
    pipelines = [r for r in _rows(throughput) if r[0] in PIPELINE_KINDS]
    assert [r[0] for r in pipelines] == list(PIPELINE_KINDS)
    for row in pipelines:
        assert row[1:3] == ["cpu", "float32"] and float(row[-1]) > 0, row
    critic = [r for r in _rows(throughput) if r[0].startswith("transformers")]
    assert len(critic) == 1 and critic[0][4] == critic[0][3] and float(critic[0][-1]) > 0
    assert [p["images_per_s"] for p in figures["pipelines"]] == [float(r[-1]) for r in pipelines]


def test_report_of_a_run_with_problems() -> None:
    figures = Figures(mode="GPU", environment={"date": "2026-01-01 00:00 UTC", "device": "NVIDIA X ×1"})
    figures.stages = [
        {"stage": "tests", "budget_s": 260.0, "seconds": 261.0, "status": "timed out after 260s"},
        {"stage": "vllm", "budget_s": 110.0, "seconds": 80.0, "status": "ok"},
    ]
    figures.tests = {
        "tests/gpu/test_a.py::test_ok": {"outcome": "passed", "seconds": 1.5, "peak_allocated_mib": 12.5},
        "tests/gpu/test_b.py::test_bad": {"outcome": "failed", "reason": "assert 1 | 2"},
        "tests/gpu/test_c.py::test_ddp": {"outcome": "passed", "rank0_peak_allocated_mib": 30.0},
    }
    figures.critic = [
        {"backend": "vLLM server", "device": "cuda", "dtype": "auto (vLLM)", "requests": 32, "answers": 32,
         "concurrency": 8, "max_tokens": 32, "answers_per_s": 41.5},
    ]  # fmt: skip
    figures.vllm_startup_s = 62.0
    assert not figures.all_good() and figures.failed_tests() == ["tests/gpu/test_b.py::test_bad"]
    report = render_report(figures)
    assert "- Result: PROBLEMS (see below)" in report and "2 passed" in report and "1 failed" in report
    assert "| tests/gpu/test_b.py::test_bad | failed |" in report and "assert 1 \\| 2" in report
    assert "rank0_peak_allocated: 30.0 MiB" in report
    assert "| vLLM server | cuda | auto (vLLM) | 32 | 32 | 8 | 32 | 41.5 |" in report
    assert "vLLM server start-up (to its first answer of /v1/models): 62.0 s" in report
