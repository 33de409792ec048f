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
from test_benchmark_roundtrip import gcr

from gcr.bench.eval.pairs import ImageRef
from gcr.bench.pipeline import BenchSettings, run_bench
from gcr.benchmarks import load_benchmark
from gcr.benchmarks.scoring import judged_dir, score_run
from gcr.errors import GCRError, InputError
from stubs.critic_server import StubCriticServer
from stubs.judge_server import ScriptedJudge as ScriptedReplies


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
    identity: str = "scripted"
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
    saved = json.loads((judged_dir(tmp_path / "run", "scripted") / "gedit-summary.json").read_text())
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


# --------------------------------------------------------------------------- the real rubric judges


def _by_mask(colour: tuple[int, int, int]) -> tuple[int, int, int]:
    """The pixel generator paints its phrase mask in the red channel: bit 0 is "golden light"."""
    return (colour[0] & 1, 0, 0)


def test_gedit_scored_by_the_viescore_judge_over_a_scripted_server(
    monkeypatch, capsys, tmp_path: Path
) -> None:
    root = bf.write_gedit(tmp_path / "gedit", "disk")
    prompt_set = load_benchmark(f"gedit-en:{root}")
    bench(prompt_set, tmp_path / "run")
    # VIEScore (gcr.judges rubric viescore): SC = min(instruction_following, minimal_change),
    # PQ = min(naturalness, artifacts), O = sqrt(SC * PQ).
    replies = ScriptedReplies(
        {
            (0, 0, 0): {"instruction_following": 6, "minimal_change": 4, "naturalness": 9, "artifacts": 10},
            (1, 0, 0): {"instruction_following": 8, "minimal_change": 9, "naturalness": 8, "artifacts": 8},
        },
        key=_by_mask,
    )
    with StubCriticServer(models=("gpt-4.1",)) as server:
        server.responder = replies
        code, out, err = gcr(
            monkeypatch, capsys, "bench", "score", str(tmp_path / "run"), "--benchmark", f"gedit-en:{root}",
            "--judge", f"viescore:{server.url},model=gpt-4.1", "--json",
        )  # fmt: skip
        assert code == 0, err
        summary = json.loads(out)
        assert len(server.chat_requests) == 3 * 2 * 2  # 3 sets x 2 items x the two VIEScore questions
        # Rerun with the same judge: every verdict is on disk, nothing is asked again.
        code, out, err = gcr(
            monkeypatch, capsys, "bench", "score", str(tmp_path / "run"), "--benchmark", f"gedit-en:{root}",
            "--judge", f"viescore:{server.url},model=gpt-4.1",
        )  # fmt: skip
        assert code == 0, err
        assert len(server.chat_requests) == 12
    # By hand: round 0 and baseline SC min(6, 4) = 4, PQ min(9, 10) = 9, O sqrt(36) = 6; final 8, 8, 8.
    for name, (sc, pq, o) in (("round0", (4, 9, 6)), ("final", (8, 8, 8)), ("baseline", (4, 9, 6))):
        en = summary["sets"][name]["report"]["en"]
        assert en["average"] == pytest.approx({"semantics": sc, "quality": pq, "overall": o})
        assert {g: v["n"] for g, v in en["groups"].items()} == {"background_change": 1, "subject-add": 1}
    assert summary["published"]["ours"] == pytest.approx({"round0": 6.0, "final": 8.0, "baseline": 6.0})
    assert summary["published"]["published"]["round0"] == 7.56
    # The tables put the paper's figures beside ours.
    assert "GEdit-Bench-EN" in out and "background_change" in out and "7.56" in out and "8.33" in out


def test_imgedit_scored_by_the_imgedit_judge_over_a_scripted_server(
    monkeypatch, capsys, tmp_path: Path
) -> None:
    edit_json = bf.write_imgedit(tmp_path / "imgedit")
    bench(load_benchmark(f"imgedit:{edit_json}"), tmp_path / "run", limit=2)
    replies = ScriptedReplies(
        {
            (0, 0, 0): {"instruction_compliance": 3, "visual_naturalness": 3, "physical_integrity": 4},
            (1, 0, 0): {"instruction_compliance": 5, "visual_naturalness": 4, "physical_integrity": 4},
        },
        key=_by_mask,
    )
    with StubCriticServer(models=("gpt-4.1",)) as server:
        server.responder = replies
        code, out, err = gcr(
            monkeypatch, capsys, "bench", "score", str(tmp_path / "run"),
            "--benchmark", f"imgedit:{edit_json}",
            "--judge", f"imgedit:{server.url},model=gpt-4.1", "--set", "round0", "--set", "final", "--json",
        )  # fmt: skip
    assert code == 0, err
    summary = json.loads(out)
    # By hand: round 0 (3 + 3 + 4) / 3 = 3.33 per item and per type; final (5 + 4 + 4) / 3 = 4.33.
    assert summary["sets"]["round0"]["report"]["types"] == {
        "alter": {"score": 3.33, "n": 1},
        "style": {"score": 3.33, "n": 1},
    }
    assert summary["sets"]["final"]["report"]["overall"] == pytest.approx(4.33)
    assert set(summary["sets"]) == {"round0", "final"}
    assert summary["published"]["published"]["final"] == 4.43


def test_a_judge_that_cannot_answer_fails_the_command_and_scores_nothing(
    monkeypatch, capsys, tmp_path
) -> None:
    edit_json = bf.write_imgedit(tmp_path / "imgedit")
    bench(load_benchmark(f"imgedit:{edit_json}"), tmp_path / "run", limit=1)
    with StubCriticServer(models=("gpt-4.1",)) as server:
        server.responder = ScriptedReplies({}, default=None)  # prose, never a score
        code, out, err = gcr(
            monkeypatch, capsys, "bench", "score", str(tmp_path / "run"),
            "--benchmark", f"imgedit:{edit_json}",
            "--judge", f"imgedit:{server.url},model=gpt-4.1,max_retries=0", "--set", "final", "--json",
        )  # fmt: skip
    assert code == 1 and "failed and are left out" in err
    summary = json.loads(out)
    assert summary["sets"]["final"]["judged"] == 0 and "overall" not in summary["sets"]["final"]["report"]
    code, _, err = gcr(
        monkeypatch, capsys, "bench", "score", str(tmp_path / "run"), "--benchmark", f"geneval:{edit_json}",
        "--judge", "viescore:http://127.0.0.1:9/v1",
    )  # fmt: skip
    assert code == 1 and "gcr scores gedit" in err
