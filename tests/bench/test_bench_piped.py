"""``gcr bench`` as a script sees it: output piped, exit codes, one summary line, odd text, load errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from benchkit import PixelCriticServer, PixelScript, write_jsonl

from gcr.task import Task

RUN_GCR = Path(__file__).with_name("run_gcr.py")
ROOT = Path(__file__).resolve().parents[2]


def bench(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "FORCE_COLOR")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, str(RUN_GCR), "bench", *args],
        cwd=cwd, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip


class InstScript(PixelScript):
    """Every answer starts with ``[/INST]`` (a chat-template leftover) and refines with ``[/b]`` in it."""

    def answer(self, task: Task, user_prompt: str, image) -> str:  # type: ignore[no-untyped-def]
        text = super().answer(task, user_prompt, image)
        return "[/INST] " + text.replace("## Refined Request: ", "## Refined Request: [/b] ")


def test_markup_like_ids_and_critic_text_do_not_crash_and_failed_prompts_exit_3(tmp_path: Path) -> None:
    rows = [
        {"id": "p[/x]", "prompt": "a [/INST] lamp [unreadable]"},  # the critic cannot judge it: fails
        {"id": "ok[/]", "prompt": "a [bold]desk[/bold] [base 2]"},
    ]
    prompts = write_jsonl(tmp_path / "p[red].jsonl", rows)
    out = tmp_path / "a bench folder with a long name" / "that goes on and on for a while" / "out"
    with PixelCriticServer(InstScript()) as server:
        args = (
            str(prompts), "--generator-kind", "pixel", "--generator", "pixel", "--critic", server.url,
            "--max-rounds", "2", "--target", "1", "--no-cache", "--out", str(out),
        )  # fmt: skip
        done = bench(*args, cwd=tmp_path)
        assert done.returncode == 3, done.stderr
        assert "Traceback" not in done.stderr
        failed = [line for line in done.stderr.splitlines() if line.startswith("failed p[/x]: ")]
        assert len(failed) == 1, done.stderr
        assert any(line.startswith("WARNING: prompt p[/x] failed: ") for line in done.stderr.splitlines())
        lines = done.stderr.splitlines()
        refined = [line for line in lines if re.match(r"\[[12]/2\] refined ok\[/\]: ", line)]
        assert len(refined) == 1, done.stderr
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith("bench: 1 prompt(s) finished, 1 run(s) failed (exit code 3;"), last
        assert last.endswith(f"report: {out / 'report.html'}")
        assert not set("│┃┘└━") & set(done.stderr)
        records = {json.loads(line)["id"]: json.loads(line) for line in (out / "results.jsonl").open()}
        assert records["ok[/]"]["best_prompt"].startswith("[/b] a [bold]desk[/bold]")

        # A rerun retries the failed prompt, fails again the same way, and still does not crash.
        again = bench(*args, cwd=tmp_path)
    assert again.returncode == 3 and "Traceback" not in again.stderr
    assert "resuming: 1 prompt(s) already finished" in again.stderr


def test_all_ok_exits_0_with_a_one_line_summary(tmp_path: Path) -> None:
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "prompt": "a lamp"}])
    out = tmp_path / "out"
    with PixelCriticServer(PixelScript()) as server:
        done = bench(
            str(prompts), "--generator-kind", "pixel", "--generator", "pixel", "--critic", server.url,
            "--max-rounds", "2", "--target", "1", "--no-cache", "--out", str(out), "--json",
            cwd=tmp_path,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["counts"]["finished"] == 1
    report = out / "report.html"
    last = done.stderr.strip().splitlines()[-1]
    assert last == f"bench: 1 prompt(s) finished, none failed; report: {report}"


def test_a_model_that_does_not_load_leaves_nothing_behind(tmp_path: Path) -> None:
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "prompt": "a lamp"}])
    out = tmp_path / "out"
    with PixelCriticServer(PixelScript()) as server:
        # The critic answers, the generator cannot load (a task it does not know): nothing is written.
        done = bench(
            str(prompts), "--generator-kind", "pixel", "--generator", "pixel?task=nonsense",
            "--critic", server.url, "--no-cache", "--out", str(out),
            cwd=tmp_path,
        )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert not out.exists()
    assert "error: " in done.stderr and "rerun" not in done.stderr and "--resume" not in done.stderr

    # The same with a critic that is down: no folder, no bench.json, no hint to resume.
    done = bench(
        str(prompts), "--generator-kind", "pixel", "--generator", "pixel",
        "--critic", "http://127.0.0.1:9/v1", "--no-cache", "--out", str(out),
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1
    assert not out.exists()
    assert "rerun" not in done.stderr and "--resume" not in done.stderr
