"""``gcr eval`` end to end: the real critic (prompt, HTTP backend, parser) against a scripted server."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from evalkit import CASES, WITH_TIES, WITHOUT_TIES, http_script, write_jsonl, write_parquet, write_saved
from typer.testing import CliRunner

from gcr.bench.eval.output import RESULTS_FILE, SUMMARY_FILE
from gcr.cli.app import app
from gcr.cli.console import console
from gcr.task import Task
from stubs.critic_server import StubCriticServer
from stubs.eval_critic_server import EvalScript

LABELLED = sorted(c.key for c in CASES if c.label != "unknown")
#: GenAI-Bench rows have no id column: their ids are row numbers.
ROW_IDS = sorted(f"row-{i:06d}" for i, c in enumerate(CASES) if c.label != "unknown")
ROW_TO_KEY = {f"row-{i:06d}": c.key for i, c in enumerate(CASES)}


@pytest.fixture
def server() -> Iterator[StubCriticServer]:
    with StubCriticServer(models=("rr-stub",)) as stub:
        yield stub


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console, "width", 220)


def _script(server: StubCriticServer, task: Task) -> EvalScript:
    script = http_script(task)
    server.responder = script
    return script


def _eval(*args: str) -> dict:
    result = CliRunner().invoke(app, ["eval", *args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _ids(out: Path) -> list[str]:
    return [json.loads(line)["id"] for line in (out / RESULTS_FILE).read_text().splitlines()]


def test_table_shows_our_figure_beside_the_published_one(server: StubCriticServer, tmp_path: Path) -> None:
    _script(server, Task.T2I)
    path = write_parquet("genai-t2i", tmp_path / "genai.parquet")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["eval", str(path), "--critic", server.url, "--out", str(out), "--concurrency", "4"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "GenAI T2I" in text and "MMRB2 T2I" in text and "EditReward" in text
    # Ours: 5 of 8 → 62.5 (30.6–86.3); the paper's RationalRewards figure 69.8 beside it, and the gap.
    assert "62.5 (30.6–86.3)" in text
    assert "RationalRewards (Qwen3-VL-8B) (paper)" in text and "69.8" in text and "-7.3" in text
    assert "rr-stub (pairwise, ours)" in text
    failures = r"failed \(not in accuracy\)\s+2 \(CriticUnavailableError: 1, CritiqueParseError: 1\)"
    assert re.search(failures, text)
    # Progress, not a terminal here: plain lines ending at the whole count, no bar glyphs.
    progress = [line for line in result.stderr.splitlines() if line.startswith("judging: ")]
    assert progress and re.match(r"judging: (\d+)/\1 \(100%\) \S+ ok", progress[-1]), result.stderr
    assert "━" not in result.stderr
    assert re.search(r"unknown labels \(skipped\)\s+1", text)
    assert "rerun the same command to retry the failed pairs" in text
    assert "cat-x" in text and "cat-y" in text
    summary = json.loads((out / SUMMARY_FILE).read_text())
    assert summary["accuracy"]["correct"] == 5 and summary["settings"]["critic"] == "rr-stub"


@pytest.mark.parametrize(
    ("layout", "fmt", "expected"),
    [
        ("mmrb2-t2i", "saved", WITHOUT_TIES),
        ("mmrb2-edit", "parquet", WITHOUT_TIES),
        ("genai-edit", "jsonl", WITH_TIES),
        ("editreward", "parquet", WITH_TIES),
    ],
)
def test_exact_accuracy_through_the_real_critic(
    layout: str, fmt: str, expected: dict, server: StubCriticServer, tmp_path: Path
) -> None:
    task = Task.EDIT if layout.endswith("edit") or layout == "editreward" else Task.T2I
    script = _script(server, task)
    if fmt == "saved":
        path = write_saved(layout, tmp_path / "saved")
    elif fmt == "parquet":
        path = write_parquet(layout, tmp_path / "d.parquet")
    else:
        path = write_jsonl(layout, tmp_path / "jsonl")
    summary = _eval(str(path), "--critic", server.url, "--out", str(tmp_path / "out"))
    assert summary["dataset"]["layout"] == layout and summary["dataset"]["layout_detected"]
    acc = summary["accuracy"]
    assert (acc["correct"], acc["evaluated"]) == (expected["correct"], expected["evaluated"])
    assert summary["counts"]["failed"] == 2 and summary["counts"]["unknown_labels"] == 1
    assert "CritiqueParseError" in summary["failures"]["by_type"]
    # The unreadable answer was asked once more (the critic's bounded re-ask); the 500 was not retried.
    assert script.requested_keys().count("case-08") == 2
    assert script.requested_keys().count("case-07") == 1
    assert "case-09" not in script.requested_keys()
    images_per_request = {len(r.image_urls()) for r in server.chat_requests}
    assert images_per_request == ({3} if task is Task.EDIT else {2})


def test_pointwise_mode_and_tie_tolerance(server: StubCriticServer, tmp_path: Path) -> None:
    script = _script(server, Task.EDIT)
    path = write_parquet("editreward", tmp_path / "er.parquet")
    summary = _eval(str(path), "--critic", server.url, "--mode", "pointwise", "--out", str(tmp_path / "o"),
                    "--tie-tolerance", "0.5")
    assert summary["settings"]["mode"] == "pointwise"
    assert summary["accuracy"]["correct"] == WITH_TIES["correct_tol_0.5"]
    pointwise = [(k, s) for k, m, s in script.log if m == "pointwise"]
    assert len(pointwise) == len(script.log)
    healthy_keys = [k for k in LABELLED if k not in ("case-07", "case-08")]
    assert sorted(k for k, s in pointwise if s == "A" and k in healthy_keys) == healthy_keys
    assert sorted(k for k, s in pointwise if s == "B" and k in healthy_keys) == healthy_keys
    assert {len(r.image_urls()) for r in server.chat_requests} == {2}  # source + one candidate


def test_layout_override(server: StubCriticServer, tmp_path: Path) -> None:
    _script(server, Task.T2I)
    path = write_parquet("mmrb2-t2i", tmp_path / "m.parquet")
    summary = _eval(str(path), "--layout", "mmrb2-t2i", "--critic", server.url, "--out", str(tmp_path / "o"),
                    "--limit", "3")
    assert summary["dataset"]["layout_detected"] is False
    assert summary["counts"]["rows_in_scope"] == 3 and summary["accuracy"]["evaluated"] == 3
    result = CliRunner().invoke(app, ["eval", str(path), "--layout", "genai-edit", "--critic", server.url])
    assert result.exit_code != 0
    assert "lacks the column(s) instruct_prompt" in str(result.exception)


def test_rerun_requests_only_failed_pairs(server: StubCriticServer, tmp_path: Path) -> None:
    script = _script(server, Task.T2I)
    path = write_parquet("genai-t2i", tmp_path / "g.parquet")
    out = tmp_path / "out"
    first = _eval(str(path), "--critic", server.url, "--out", str(out))
    assert first["counts"]["failed"] == 2
    assert sorted(_ids(out)) == ROW_IDS

    script.healthy = True
    script.log.clear()
    second = _eval(str(path), "--critic", server.url, "--out", str(out))
    assert sorted(script.requested_keys()) == ["case-07", "case-08"]
    assert second["counts"]["judged_this_run"] == 2 and second["counts"]["reused_from_earlier_runs"] == 8
    assert (second["accuracy"]["correct"], second["accuracy"]["evaluated"]) == (7, 10)
    ids = _ids(out)
    assert sorted(ids) == ROW_IDS and len(ids) == len(set(ids))


def test_killed_run_resumes_without_duplicates(server: StubCriticServer, tmp_path: Path) -> None:
    script = _script(server, Task.T2I)
    script.healthy = True
    script.delay = 0.3
    path = write_parquet("genai-t2i", tmp_path / "g.parquet")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "gcr", "eval", str(path), "--critic", server.url, "--out", str(out),
           "--concurrency", "1", "--json"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    results = out / RESULTS_FILE
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if results.exists() and len(results.read_text().splitlines()) >= 3:
            break
        if proc.poll() is not None:
            pytest.fail(f"gcr eval ended early: {proc.stderr.read().decode() if proc.stderr else ''}")
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    done_before = _ids(out)
    assert 3 <= len(done_before) < len(LABELLED)

    script.delay = 0.0
    script.log.clear()
    summary = _eval(str(path), "--critic", server.url, "--out", str(out))
    ids = _ids(out)
    assert sorted(ids) == ROW_IDS and len(ids) == len(set(ids))
    # Only the pairs without a result were asked for (the one in flight at the kill included).
    assert sorted(script.requested_keys()) == sorted(set(LABELLED) - {ROW_TO_KEY[i] for i in done_before})
    assert summary["counts"]["reused_from_earlier_runs"] == len(done_before)
    assert summary["accuracy"]["evaluated"] == len(LABELLED)


def test_in_process_checkpoint_failures_are_reported(tiny_critic_dir: Path, tmp_path: Path) -> None:
    # The tiny random critic writes words, not critiques: every pair must fail loudly, none score 0.
    path = write_parquet("genai-t2i", tmp_path / "g.parquet")
    summary = _eval(str(path), "--critic", str(tiny_critic_dir), "--max-tokens", "16", "--limit", "3",
                    "--out", str(tmp_path / "o"))
    assert summary["counts"]["failed"] == 3 and summary["accuracy"]["evaluated"] == 0
    assert summary["accuracy"]["accuracy"] is None
    assert summary["failures"]["by_type"] == {"CritiqueParseError": 3}
    assert "max_tokens=16" in summary["failures"]["examples"][0]["message"]


def test_both_orders_through_the_real_critic(server: StubCriticServer, tmp_path: Path) -> None:
    script = _script(server, Task.T2I)
    path = write_parquet("genai-t2i", tmp_path / "genai.parquet")
    out = tmp_path / "out"
    args = ["eval", str(path), "--critic", server.url, "--out", str(out), "--both-orders"]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    # The scripted server has no position bias: swapping the images never changes the verdict.
    assert re.search(r"order flips \(AB vs BA\)\s+0 of 8 pairs \(0\.0%\)", result.stdout)
    assert "62.5 (30.6–86.3)" in result.stdout and "rr-stub (pairwise, both orders, ours)" in result.stdout
    asked = {(key, side) for key, mode, side in script.log if mode == "pairwise"}
    assert asked == {(key, side) for key in LABELLED for side in ("AB", "BA")}
    summary = json.loads((out / SUMMARY_FILE).read_text())
    assert summary["order_agreement"]["flips"] == 0 and summary["settings"]["both_orders"] is True
    assert summary["order_agreement"]["accuracy_per_judgement"] == pytest.approx(5 / 8)

    refused = CliRunner().invoke(app, [*args, "--mode", "pointwise"])
    assert refused.exit_code != 0 and "pairwise mode" in str(refused.exception)
