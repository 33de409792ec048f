"""The HTML report: prompt diffs, per-dimension scores, skipped candidates, linked or embedded images."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from refine_harness import Harness

from gcr.agent import RunFolder
from gcr.agent.report import diff_prompts, prompt_diff_html, render_report
from stubs.prompt_aware_critic import PromptAwareScript


def test_prompt_diff_marks_insertions_and_deletions_at_word_level():
    assert prompt_diff_html("a red cat", "a blue cat") == "a <del>red</del><ins>blue</ins> cat"
    assert prompt_diff_html("a cat", "a cat, golden light") == "a cat<ins>, golden light</ins>"
    assert prompt_diff_html('a "<b>" sign', 'a "<b>" sign') == "a &quot;&lt;b&gt;&quot; sign"
    assert diff_prompts("x y", "x y") == [("same", "x y")]


def run_once(tmp_path: Path, **script):
    harness = Harness(tmp_path, PromptAwareScript(**script))
    graph = harness.builder().compile()
    context = harness.context(max_rounds=3, candidates=2)
    return asyncio.run(graph.ainvoke({"prompt": "a cat"}, context=context))


def test_report_shows_rounds_scores_diffs_and_skips(tmp_path):
    out = run_once(tmp_path, unreadable_seeds={1})
    folder = RunFolder(out["run_dir"])
    html = (folder.path / "report.html").read_text()
    assert html.count("<h2>Round ") == 3
    assert "a cat<ins>, golden light</ins>" in html
    assert "Text Faithfulness" in html and "Physical and Visual Quality" in html and "N/A" in html
    assert html.count("skipped: ") == 3  # seed 1 is unreadable in every round
    assert "max_rounds" in html
    assert "<svg" in html  # reward trajectory
    sources = re.findall(r"<img src='([^']+)'", html)
    assert sources and all(not s.startswith("/") and (folder.path / s).is_file() for s in sources)
    assert "<script" not in html and "http" not in html  # self-contained


def test_report_can_embed_images(tmp_path):
    out = run_once(tmp_path)
    folder = RunFolder(out["run_dir"])
    candidates = [c for line in folder.read_trajectory() for c in line["candidates"]]
    html = render_report(folder, out["summary"], out["rounds"], candidates, embed_images=True)
    sources = re.findall(r"<img src='([^']+)'", html)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
