"""``gcr demo`` end to end with its output piped: the real refine path, labelled as a demo."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from gcr.dev.mock_critic import MODEL_NAME

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_the_refine_loop_offline_and_says_what_it_is(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    env.update(HF_HUB_OFFLINE="1", PYTHONPATH=os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")]))
    out = tmp_path / "a demo run folder with a fairly long name" / "so that eighty columns are passed"
    done = subprocess.run(
        [sys.executable, "-m", "gcr", "demo", "--out", str(out), "--models", str(tmp_path / "models")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0].startswith(
        "gcr demo: tiny random models (their pictures are noise) judged by a scripted critic"
    )
    assert not set("│┃┘└━") & set(done.stderr)
    assert any(line.startswith("stopped: target_reward") for line in lines), done.stderr
    report = out / "report.html"
    assert lines[-1].startswith(f"demo report: {report.resolve()} (tiny random models + a scripted critic")
    assert report.is_file()
    html = report.read_text("utf-8")
    assert MODEL_NAME in html and "tiny-random-sd" in html
    summary = json.loads((out / "summary.json").read_text("utf-8"))
    assert summary["final_reward"] > summary["start_reward"]
    assert done.stdout.strip() == str(out / "rounds" / f"r{summary['best']['round']:02d}" / "c00.png")

    # The report links its images relative to the run folder: moving the whole folder keeps them.
    moved = tmp_path / "moved"
    out.rename(moved)
    sources = re.findall(r"<img src='([^']+)'", (moved / "report.html").read_text("utf-8"))
    assert sources and all(not Path(src).is_absolute() and (moved / src).is_file() for src in sources)
