"""summary.json and report.html carry the figures computed by hand for a small scripted benchmark."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from benchkit import PixelCritic, PixelGenerator, write_jsonl
from test_bench_pipeline import run, template

from gcr.bench.folder import BenchFolder
from gcr.bench.prompt_files import load_prompt_set
from gcr.bench.report import write_bench_report
from gcr.bench.stats import mean_interval, throughput_figures

T_975_DF2 = 4.302652729911275  # Student t quantile, 0.975, 2 degrees of freedom (tables)


def test_mean_interval_by_hand() -> None:
    fig = mean_interval([0.5, 0.0, 0.5])
    std = math.sqrt(((1 / 6) ** 2 * 2 + (1 / 3) ** 2) / 2)
    assert fig["mean"] == pytest.approx(1 / 3) and fig["std"] == pytest.approx(std)
    half = T_975_DF2 * std / math.sqrt(3)
    assert (fig["ci_low"], fig["ci_high"]) == pytest.approx((1 / 3 - half, 1 / 3 + half))
    assert mean_interval([0.7]) == {"n": 1, "mean": 0.7, "std": None, "ci_low": None, "ci_high": None}
    assert mean_interval([])["mean"] is None


def test_throughput_counts_overlapping_sessions_once() -> None:
    sessions = [
        {
            "started_at": 0.0,
            "ended_at": 10.0,
            "generator_calls": 20,
            "critic_calls": 20,
            "generator_busy_s": 9.0,
        },
        {
            "started_at": 5.0,
            "ended_at": 20.0,
            "generator_calls": 30,
            "critic_calls": 31,
            "generator_busy_s": 14.0,
        },
        {"started_at": 30.0, "ended_at": 40.0, "generator_calls": 10, "critic_calls": 10, "load_s": 3.0},
    ]
    t = throughput_figures(sessions)
    assert t["wall_s"] == 30.0 and t["generator_calls"] == 60 and t["images_per_min"] == pytest.approx(120.0)
    assert (
        t["critiques_per_min"] == pytest.approx(122.0)
        and t["generator_busy_s"] == 23.0
        and t["load_s"] == 3.0
    )


def test_summary_and_report_figures(tmp_path: Path) -> None:
    # a: 2.5 -> 3.25 -> 4.0 (rewards 0.5, 0.75, 1.0; target reached); b: 4.0 at once (1.0);
    # c: 1.75 -> 2.5 -> 3.25 (0.25, 0.5, 0.75; max rounds).
    rows = [
        {"id": "a", "prompt": "alpha [base 2.5]", "category": "x"},
        {"id": "b", "prompt": "beta [base 4]", "category": "x"},
        {"id": "c", "prompt": "gamma [base 1.75]", "category": "y"},
    ]
    prompt_set = load_prompt_set(write_jsonl(tmp_path / "p.jsonl", rows))
    out = tmp_path / "out"
    run(
        prompt_set,
        out,
        PixelGenerator(),
        PixelCritic(),
        template(max_rounds=3, target_reward=1.0),
        baseline="best-of-n",
    )
    summary_path, report_path = write_bench_report(BenchFolder(out))
    s = json.loads(summary_path.read_text())

    assert s["counts"] == {"finished": 3, "failed": 0, "baseline_finished": 3, "baseline_failed": 0}
    reward = s["reward"]
    assert reward["initial"]["mean"] == pytest.approx(1.75 / 3)
    assert reward["final"]["mean"] == pytest.approx(2.75 / 3)
    assert reward["delta"]["mean"] == pytest.approx(1 / 3)
    half = T_975_DF2 * math.sqrt(1 / 12) / math.sqrt(3)
    assert (reward["delta"]["ci_low"], reward["delta"]["ci_high"]) == pytest.approx(
        (1 / 3 - half, 1 / 3 + half)
    )
    # Wilson interval of 2 wins in 3 (z = 1.959964), worked out by hand.
    assert (
        reward["win_rate"]["wins"] == 2
        and reward["win_rate"]["ties"] == 1
        and reward["win_rate"]["losses"] == 0
    )
    assert reward["win_rate"]["rate"] == pytest.approx(2 / 3)
    assert (reward["win_rate"]["ci_low"], reward["win_rate"]["ci_high"]) == pytest.approx(
        (0.20766, 0.93851), abs=1e-4
    )

    tf = s["dimensions"]["text_faithfulness"]
    assert (tf["n"], tf["initial_mean"], tf["final_mean"]) == (3, pytest.approx(2.75), pytest.approx(3.75))
    assert tf["delta"]["mean"] == pytest.approx(1.0)
    assert s["dimensions"]["text_rendering"]["n"] == 0  # N/A everywhere

    rounds = s["rounds"]
    assert rounds["histogram"] == {"1": 1, "3": 2} and rounds["mean_rounds"] == pytest.approx(7 / 3)
    assert rounds["stop_reasons"] == {"target_reward": 2, "max_rounds": 1}
    assert rounds["best_so_far_by_round"] == pytest.approx([1.75 / 3, 2.25 / 3, 2.75 / 3])
    assert rounds["generations"] == 7

    base = s["baseline"]  # no seed jitter: every plain image scores like round 0
    assert base["baseline"]["mean"] == pytest.approx(1.75 / 3) and base["delta"]["mean"] == pytest.approx(
        1 / 3
    )
    assert (base["win_rate"]["wins"], base["win_rate"]["ties"]) == (2, 1)
    assert base["refine_generations"] == base["baseline_generations"] == 7

    assert s["categories"]["x"]["final_mean"] == pytest.approx(1.0)
    assert s["categories"]["y"]["delta_mean"] == pytest.approx(0.5)
    assert s["gallery"]["gains"] == ["a", "c"] and s["gallery"]["losses"] == []
    assert s["gallery"]["beats_baseline"] == ["a", "c"]
    assert s["throughput"]["generator_calls"] == 14 and s["throughput"]["images_per_min"] > 0
    assert s["critic"] == "pixel-critic" and s["prompt_set"]["cases"] == 3

    text = report_path.read_text()
    assert "<script" not in text and "src='http" not in text  # self-contained
    assert (
        len(re.findall(r"<img alt='(reward|dimensions|rounds|time)' src='data:image/png;base64,", text)) == 4
    )
    assert (
        "0.583 [" in text
        and "0.917 [" in text
        and "66.7% [20.8%, 93.9%] (2 won, 1 tied, 0 lost of 3)" in text
    )
    assert "target_reward: 2, max_rounds: 1" in text
    gallery = text.split("<h2>Gallery</h2>")[1]
    assert gallery.count("<div class='card'>") == 4  # a and c, among gains and against the baseline
    assert gallery.count("data:image/png;base64,") >= 10


def test_losses_are_rounds_that_fell_below_round_zero(tmp_path: Path) -> None:
    from benchkit import PixelScript

    # "golden light" now costs a point: the refined prompt scores below round 0.
    script = PixelScript(gains=(-1.0, 0.5, 0.0))
    prompt_set = load_prompt_set(write_jsonl(tmp_path / "p.jsonl", [{"id": "z", "prompt": "zeta [base 3]"}]))
    run(prompt_set, tmp_path / "out", PixelGenerator(), PixelCritic(script), template(max_rounds=2))
    summary_path, _ = write_bench_report(BenchFolder(tmp_path / "out"))
    s = json.loads(summary_path.read_text())
    assert s["gallery"] == {"gains": [], "losses": ["z"]}
    assert s["reward"]["last"]["mean"] == pytest.approx(1 / 3) and s["reward"]["final"][
        "mean"
    ] == pytest.approx(2 / 3)


def test_a_record_naming_an_image_outside_the_folder_is_not_embedded(tmp_path: Path) -> None:
    """A shared benchmark folder with a crafted record must not pull other files into its report."""
    from PIL import Image

    rows = [{"id": "a", "prompt": "alpha [base 2.5]", "category": "x"}]
    prompt_set = load_prompt_set(write_jsonl(tmp_path / "p.jsonl", rows))
    out = tmp_path / "out"
    run(prompt_set, out, PixelGenerator(), PixelCritic(), template(max_rounds=2, target_reward=1.0))
    secret = tmp_path / "private.png"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(secret)
    results = out / "results.jsonl"
    records = [json.loads(line) for line in results.read_text().splitlines()]
    for record in records:
        record["best_image"], record["initial_image"] = str(secret), "../private.png"
    results.write_text("".join(json.dumps(r) + "\n" for r in records))

    _, report_path = write_bench_report(BenchFolder(out))
    gallery = report_path.read_text().split("<h2>Gallery</h2>")[1]
    assert "image missing" in gallery
    assert "data:image/png;base64," not in gallery
