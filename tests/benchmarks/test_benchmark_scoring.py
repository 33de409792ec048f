"""The edit benchmarks scored inside gcr by a judge, over a real ``gcr bench`` run, with figures by hand.

The judge here is scripted on the images the pixel generator paints: round 0
(the instruction as given) has no reward phrase, the final best has "golden
light" (see tests/bench/benchkit.py), so each set's scores are known.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import benchfiles as bf
import pytest
from benchkit import PixelCritic, PixelGenerator, components, read_pixel
from PIL import Image

from gcr.bench.eval.records import ImageRef
from gcr.bench.pipeline import BenchSettings, run_bench
from gcr.benchmarks import load_benchmark
from gcr.benchmarks.scoring import score_run
from gcr.errors import GCRError, InputError


@dataclass
class Result:
    """Shaped like gcr.judges' JudgeResult."""

    score: float
    subscores: dict[str, float]
    raw: str
    judge: str


@dataclass
class ScriptedJudge:
    """SC/PQ (viescore) or overall (imgedit) by whether the image has the "golden light" phrase."""

    rubric: str
    fail_once: set[str] = field(default_factory=set)
    seen: list[tuple[str, tuple[int, int], list[tuple[int, int]]]] = field(default_factory=list)

    async def judge(self, prompt: str, image: Image.Image, sources: Sequence[Image.Image]) -> Result:
        await asyncio.sleep(0)
        self.seen.append((prompt, image.size, [s.size for s in sources]))
        if prompt in self.fail_once:
            self.fail_once.discard(prompt)
            raise GCRError("the judge's answer had no score (scripted)")
        golden = read_pixel(image)[0] & 1
        if self.rubric == "viescore":
            sc, pq = (8.0, 8.0) if golden else (4.0, 9.0)
            subs = {"semantic_consistency": sc, "perceptual_quality": pq, "overall": (sc * pq) ** 0.5}
            return Result(subs["overall"], subs, "scripted", "scripted-viescore")
        overall = 4.5 if golden else 10 / 3
        return Result(overall, {"overall": overall}, "scripted", "scripted-imgedit")


def bench(prompt_set: Any, out: Path, **settings: Any) -> None:
    from gcr.agent.runner import RunSpec

    spec = RunSpec(prompt="", context={"max_rounds": 2, "target_reward": 1.0, "candidates": 1, "patience": 5})
    asyncio.run(
        run_bench(
            prompt_set, spec, str(out), BenchSettings(baseline="best-of-n", **settings),
            load=lambda s, t: components(PixelGenerator(task="edit"), PixelCritic()),
        )
    )  # fmt: skip


def test_gedit_en_scored_per_task_type_with_the_judge_seeing_srcimg(tmp_path: Path) -> None:
    root = bf.write_gedit(tmp_path / "gedit", "parquet")
    prompt_set = load_benchmark(f"gedit-en:{root}")
    bench(prompt_set, tmp_path / "run")
    judge = ScriptedJudge("viescore")
    summary = asyncio.run(score_run(tmp_path / "run", "gedit", judge, "scripted", bench_set=prompt_set))
    # round 0 and the baseline's pick: SC 4, PQ 9, O 6 for both items; final: 8, 8, 8.
    for name, expected in (("round0", (4, 9, 6)), ("final", (8, 8, 8)), ("baseline", (4, 9, 6))):
        report = summary["sets"][name]["report"]["en"]
        figures = {"semantics": expected[0], "quality": expected[1], "overall": expected[2]}
        assert report["average"] == pytest.approx(figures)
        assert set(report["groups"]) == {"background_change", "subject-add"}
        assert summary["sets"][name]["judged"] == 2 and not summary["sets"][name]["failed"]
    # The background_change item has Intersection_exist; subject-add has not.
    assert set(summary["sets"]["final"]["report"]["en"]["intersection"]["groups"]) == {"background_change"}
    assert summary["published"]["ours"] == pytest.approx({"round0": 6.0, "final": 8.0, "baseline": 6.0})
    assert summary["published"]["published"]["final"] == 8.33
    # The source is <key>_SRCIMG (input_image, 16x16 here), not the raw image the model edited (48x32).
    assert {(size, tuple(srcs)) for _, size, srcs in judge.seen} == {((16, 16), ((16, 16),))}
    saved = json.loads((tmp_path / "run" / "judged" / "scripted" / "gedit-summary.json").read_text())
    assert saved["sets"]["final"]["report"] == summary["sets"]["final"]["report"]


def test_imgedit_scored_per_edit_type_and_failures_retried_not_zeroed(tmp_path: Path) -> None:
    edit_json = bf.write_imgedit(tmp_path / "imgedit")
    prompt_set = load_benchmark(f"imgedit:{edit_json}")
    bench(prompt_set, tmp_path / "run", limit=2)
    style_prompt = bf.IMGEDIT_ENTRIES["673"]["prompt"]
    judge = ScriptedJudge("imgedit", fail_once={style_prompt})
    first = asyncio.run(score_run(tmp_path / "run", "imgedit", judge, "gpt-4.1", sets=["round0"]))
    block = first["sets"]["round0"]
    # The failed item is reported and left out, not scored 0: only "alter" (10/3 -> 3.33) counts.
    assert list(block["failed"]) == ["673"] and block["judged"] == 1
    assert block["report"]["types"] == {"alter": {"score": 3.33, "n": 1}}
    calls = len(judge.seen)
    again = asyncio.run(score_run(tmp_path / "run", "imgedit", judge, "gpt-4.1", sets=["round0", "final"]))
    assert len(judge.seen) == calls + 1 + 2  # the failed item once more, then the final set
    assert again["sets"]["round0"]["report"]["types"] == {
        "alter": {"score": 3.33, "n": 1},
        "style": {"score": 3.33, "n": 1},
    }
    assert again["sets"]["round0"]["report"]["overall"] == pytest.approx(3.33)
    assert again["sets"]["final"]["report"]["overall"] == pytest.approx(4.5)
    assert again["published"]["published"]["round0"] == 4.27
    # ImgEdit's judge sees the original image as it is (32x24 JPEG here).
    assert all(srcs == [(32, 24)] for _, _, srcs in judge.seen)


def test_gedit_edit_is_resized_to_the_source_before_judging(tmp_path: Path) -> None:
    root = bf.write_gedit(tmp_path / "gedit", "parquet")
    prompt_set = load_benchmark(f"gedit-en:{root}")
    bench(prompt_set, tmp_path / "run", limit=1)
    wide = Image.new("RGB", (40, 24), (1, 2, 3))
    other = dataclasses.replace(
        prompt_set, extras={case_id: {"srcimg": ImageRef(wide, "test")} for case_id in prompt_set.extras}
    )
    judge = ScriptedJudge("viescore")
    asyncio.run(score_run(tmp_path / "run", "gedit", judge, "j", sets=["final"], bench_set=other))
    assert [(size, srcs) for _, size, srcs in judge.seen] == [((40, 24), [(40, 24)])]


def test_scoring_refuses_what_it_cannot_score(tmp_path: Path) -> None:
    root = bf.write_gedit(tmp_path / "gedit", "parquet")
    prompt_set = load_benchmark(f"gedit-en:{root}")
    bench(prompt_set, tmp_path / "run", limit=1)
    with pytest.raises(InputError, match="only the edit benchmarks"):
        asyncio.run(score_run(tmp_path / "run", "geneval", ScriptedJudge("viescore"), "j"))
    # An imgedit-rubric judge has no SC/PQ: every item fails with that reason, none is scored.
    summary = asyncio.run(score_run(tmp_path / "run", "gedit", ScriptedJudge("imgedit"), "j", sets=["final"]))
    assert summary["sets"]["final"]["judged"] == 0
    assert "viescore rubric" in next(iter(summary["sets"]["final"]["failed"].values()))
