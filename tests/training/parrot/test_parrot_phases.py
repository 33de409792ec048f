"""Anchoring, filtering and projection with an in-process scripted backend: outcomes, resume, reports."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from gcr.critic.backends.base import Completion
from gcr.critic.parser import parse_critique, parse_pairwise
from gcr.errors import ConfigError, CriticUnavailableError
from gcr.training.parrot.anchor import anchor_preferences, load_anchored
from gcr.training.parrot.data import load_preferences
from gcr.training.parrot.filter import (
    FilterSettings,
    filter_rationales,
    find_leak,
    load_kept,
    parse_predictor_answer,
)
from gcr.training.parrot.jobs import ResultLog, run_jobs
from gcr.training.parrot.pointwise_projection import load_pointwise, project_rationales
from stubs.teacher_server import FakeBackend, pairwise_answer, pointwise_answer, predictor_answer, user_text

T2I_A = [(3.5, 2.0), (3.0, 3.0), (None, None)]  # A wins
T2I_B = [(2.0, 3.5), (3.0, 2.5), (None, None)]  # B wins (5.0+2.5 vs 6.0+2.5)
T2I_TIE = [(3.0, 3.0), (2.5, 2.5), (None, None)]


def _marker(request) -> str:
    return user_text(request).split("request: ", 1)[1].split("\n", 1)[0]


# -- jobs -------------------------------------------------------------------------------------


def test_jobs_skip_done_retry_failed_and_survive_a_cut_line(tmp_path: Path) -> None:
    log = ResultLog(tmp_path / "log.jsonl")
    calls: list[str] = []
    broken = {"k2", "k4"}

    async def work(key: str) -> dict:
        calls.append(key)
        await asyncio.sleep(0.01)
        if key == "k4":
            raise RuntimeError("bug in worker")
        return {"status": "failed" if key in broken else "ok", "error": "nope" if key in broken else None}

    keys = [f"k{i}" for i in range(6)]
    stats = asyncio.run(run_jobs(keys, work, log, concurrency=2))
    assert (stats.total, stats.already_done, stats.ok, stats.failed) == (6, 0, 4, 2)
    assert "RuntimeError: bug in worker" in stats.errors["k4"]
    with log.path.open("a") as fh:
        fh.write('{"key": "k1", "status": "fa')  # a crash in the middle of a write
    broken.clear()
    calls.clear()

    async def fixed(key: str) -> dict:
        calls.append(key)
        return {"status": "ok"}

    stats = asyncio.run(run_jobs(keys, fixed, log, concurrency=2))
    assert sorted(calls) == ["k2", "k4"]
    assert (stats.already_done, stats.ok, stats.failed) == (4, 2, 0)
    assert log.attempts() == {"k0": 1, "k1": 1, "k2": 2, "k3": 1, "k4": 2, "k5": 1}
    assert set(log.ok()) == set(keys)
    assert log.latest()["k2"]["attempt"] == 2


def test_jobs_respect_the_concurrency_limit(tmp_path: Path) -> None:
    running = 0
    peak = 0

    async def work(key: str) -> dict:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        return {"status": "ok"}

    asyncio.run(run_jobs([str(i) for i in range(12)], work, ResultLog(tmp_path / "l.jsonl"), concurrency=3))
    assert peak == 3


# -- anchoring ---------------------------------------------------------------------------------


SPECS = [
    {"id": "good", "request": "good: a red apple", "label": "A"},
    {"id": "garbled", "request": "garbled: a blue car", "label": "B"},
    {"id": "cut", "request": "cut: a tall tree", "label": "A"},
    {"id": "down", "request": "down: a small dog", "label": "B"},
    {"id": "partial", "request": "partial: two birds", "label": "A"},
]


def test_anchoring_outcomes_raw_text_and_resume(prefs_factory) -> None:
    prefs = load_preferences(prefs_factory(SPECS))
    log = prefs.root.parent / "anchored.jsonl"
    first = {
        "good": pairwise_answer("t2i", T2I_A),
        "garbled": "I refuse to use the layout.",
        "cut": Completion(pairwise_answer("t2i", T2I_A)[:200], finish_reason="length"),
        "down": CriticUnavailableError("teacher down"),
        "partial": pairwise_answer("t2i", T2I_A).split("2. Physical")[0] + "# Summary: A.",
    }
    teacher = FakeBackend(lambda r: first[_marker(r).split(":")[0]], delay=0.005)
    stats = asyncio.run(anchor_preferences(prefs, teacher, log, concurrency=2))
    assert (stats.ok, stats.failed) == (1, 4)
    assert teacher.max_in_flight == 2
    records = ResultLog(log).latest()
    assert records["good"]["status"] == "ok" and records["good"]["teacher"] == "fake-teacher"
    assert records["good"]["raw_text"] == first["good"]
    assert "no pair of dimension scores" in records["garbled"]["error"]
    assert records["garbled"]["raw_text"] == "I refuse to use the layout."
    assert (
        "cut off at max_tokens=4096" in records["cut"]["error"]
        and records["cut"]["finish_reason"] == "length"
    )
    assert records["down"]["error"] == "teacher down" and "raw_text" not in records["down"]
    assert "does not judge physical_quality, text_rendering" in records["partial"]["error"]
    # the teacher saw the known preference of each item
    verdicts = {_marker(r).split(":")[0]: _label(r).strip() for r in teacher.requests}
    assert verdicts["good"] == "the raters preferred Image A."
    assert verdicts["down"] == "the raters preferred Image B."

    fixed = FakeBackend(lambda r: pairwise_answer("t2i", T2I_B if "B" in _label(r) else T2I_A))
    stats = asyncio.run(anchor_preferences(prefs, fixed, log, concurrency=4))
    assert (stats.already_done, stats.ok, stats.failed) == (1, 4, 0)
    assert len(fixed.requests) == 4
    anchored = load_anchored(log, prefs)
    assert sorted(anchored) == sorted(s["id"] for s in SPECS)
    assert anchored["down"].preference() == "B"


def _label(request) -> str:
    return user_text(request).split("Human verdict:", 1)[1].split("\n", 1)[0]


# -- filtering ---------------------------------------------------------------------------------


FILTER_SPECS = [
    {"id": "keep-a", "request": "keep-a: a cat on a mat", "label": "A"},
    {"id": "keep-tie", "request": "keep-tie: a cat on a hat", "label": "tie"},
    {"id": "scores-wrong", "request": "scores-wrong: a bat", "label": "A", "origin": "other"},
    {"id": "predictor-wrong", "request": "predictor-wrong: a rat", "label": "B"},
    {"id": "leaky", "request": "leaky: a gnat", "label": "A"},
    {"id": "predictor-down", "request": "predictor-down: a goat", "label": "A"},
    {"id": "predictor-garbled", "request": "predictor-garbled: a boat", "label": "B"},
]
ANCHORS = {
    "keep-a": T2I_A,
    "keep-tie": T2I_TIE,
    "scores-wrong": T2I_B,
    "predictor-wrong": T2I_B,
    "leaky": T2I_A,
    "predictor-down": T2I_A,
    "predictor-garbled": T2I_B,
}
PREDICTIONS = {
    "keep-a": predictor_answer("A"),
    "keep-tie": predictor_answer("tie"),
    "predictor-wrong": predictor_answer("A"),
    "leaky": predictor_answer("A"),
    "predictor-down": CriticUnavailableError("predictor down"),
    "predictor-garbled": "I think B is nicer.",
}


def _anchored(prefs):
    out = {}
    for item in prefs:
        note = "As the raters said, A is better." if item.id == "leaky" else ""
        out[item.id] = parse_pairwise(pairwise_answer("t2i", ANCHORS[item.id], note=note), "t2i")
    return out


def test_filter_keeps_exactly_the_consistent_rationales(prefs_factory) -> None:
    prefs = load_preferences(prefs_factory(FILTER_SPECS))
    work = prefs.root.parent
    predictor = FakeBackend(lambda r: PREDICTIONS[_marker(r).split(":")[0]], model_id="fake-predictor")
    report = asyncio.run(
        filter_rationales(
            prefs,
            _anchored(prefs),
            predicted_log=work / "predicted.jsonl",
            kept_path=work / "kept.jsonl",
            report_path=work / "report.json",
            predictor=predictor,
        )
    )
    assert report.kept == ["keep-a", "keep-tie"]
    assert set(report.dropped) == {"scores-wrong", "predictor-wrong", "leaky"}
    assert report.dropped["scores-wrong"] == "scores imply B (A 7.5, B 8.5), label is A"
    assert report.dropped["predictor-wrong"] == "predictor chose A, label is B"
    assert "gives the label away ('raters')" in report.dropped["leaky"]
    assert set(report.pending) == {"predictor-down", "predictor-garbled"}
    # the predictor only saw the rationales that passed the cheap checks
    assert sorted(_marker(r).split(":")[0] for r in predictor.requests) == [
        "keep-a",
        "keep-tie",
        "predictor-down",
        "predictor-garbled",
        "predictor-wrong",
    ]
    data = json.loads((work / "report.json").read_text())
    assert (data["anchored"], data["kept"], data["dropped"], data["pending"]) == (7, 2, 3, 2)
    assert data["survival_rate"] == pytest.approx(2 / 5)
    assert data["checks"]["scores"] == {"checked": 7, "passed": 6}
    assert data["checks"]["leak"] == {"checked": 6, "passed": 5}
    assert data["checks"]["predictor"] == {"checked": 3, "passed": 2}
    assert data["by_group"]["origin"]["other"]["dropped"] == 1
    assert data["by_group"]["label"]["tie"]["survival_rate"] == 1.0
    tf = data["dimensions"]["text_faithfulness"]
    # TF winners: A for the A-scripts (4), B for the B-scripts (3), tie for keep-tie; labels A,tie,A,B,A,A,B
    assert (tf["judged"], tf["agree"], tf["kept_judged"], tf["kept_agree"]) == (7, 6, 2, 2)
    assert "text_rendering" not in data["dimensions"]  # N/A everywhere
    kept_lines = [json.loads(x) for x in (work / "kept.jsonl").read_text().splitlines()]
    assert [k["id"] for k in kept_lines] == ["keep-a", "keep-tie"]
    assert kept_lines[0]["answer"].startswith("# User Request Analysis")
    assert load_kept(work / "kept.jsonl", prefs)["keep-a"].preference() == "A"

    # rerun: the two pending items are asked again, the others are not
    predictor2 = FakeBackend(lambda r: predictor_answer("A" if "goat" in user_text(r) else "B"))
    report = asyncio.run(
        filter_rationales(
            prefs,
            _anchored(prefs),
            predicted_log=work / "predicted.jsonl",
            kept_path=work / "kept.jsonl",
            report_path=work / "report.json",
            predictor=predictor2,
        )
    )
    assert len(predictor2.requests) == 2
    assert report.kept == ["keep-a", "keep-tie", "predictor-down", "predictor-garbled"]
    assert report.survival_rate == pytest.approx(4 / 7)


def test_filter_checks_are_configurable(prefs_factory, tmp_path: Path) -> None:
    prefs = load_preferences(prefs_factory(FILTER_SPECS))
    report = asyncio.run(
        filter_rationales(
            prefs,
            _anchored(prefs),
            predicted_log=tmp_path / "p.jsonl",
            kept_path=tmp_path / "k.jsonl",
            report_path=tmp_path / "r.json",
            settings=FilterSettings(checks=("scores",)),
        )
    )
    assert report.dropped == {"scores-wrong": "scores imply B (A 7.5, B 8.5), label is A"}
    assert not (tmp_path / "p.jsonl").exists()
    with pytest.raises(ConfigError, match="needs a predictor endpoint"):
        asyncio.run(
            filter_rationales(
                prefs,
                {},
                predicted_log=tmp_path / "p",
                kept_path=tmp_path / "k",
                report_path=tmp_path / "r",
                settings=FilterSettings(),
            )
        )
    with pytest.raises(ConfigError, match="unknown filter check"):
        FilterSettings(checks=("vibes",))
    tolerant = asyncio.run(
        filter_rationales(
            prefs,
            _anchored(prefs),
            predicted_log=tmp_path / "p.jsonl",
            kept_path=tmp_path / "k.jsonl",
            report_path=tmp_path / "r.json",
            settings=FilterSettings(checks=("scores",), tie_tolerance=1.0),
        )
    )
    # within 1 point the B-scripts (7.5 vs 8.5) become ties; A's 1.5-point lead stays decisive
    assert tolerant.kept == ["keep-a", "keep-tie", "leaky", "predictor-down"]
    assert tolerant.dropped["predictor-wrong"] == "scores imply tie (A 7.5, B 8.5), label is B"


def test_predictor_answer_and_leak_parsing() -> None:
    assert parse_predictor_answer("reasons...\nPreferred: Image B") == "B"
    assert parse_predictor_answer("Preferred: A\nactually\n**Preferred:** tie") == "tie"
    assert parse_predictor_answer("preferred: image a.") == "A"
    with pytest.raises(ValueError, match="no 'Preferred"):
        parse_predictor_answer("Image A is better")
    phrases = ("raters", "ground truth")
    assert find_leak("The Raters chose A", phrases) == "raters"
    assert find_leak("the ground truth says", phrases) == "ground truth"
    assert find_leak("the generators did well", phrases) is None


# -- projection --------------------------------------------------------------------------------


PROJECT_SPECS = [
    {"id": "ok", "request": "ok: a yellow kite", "label": "A"},
    {"id": "swapped", "request": "swapped: a green kite", "label": "B"},
    {"id": "norefine", "request": "norefine: a pink kite", "label": "A"},
    {"id": "tie", "request": "tie: a grey kite", "label": "tie"},
]


def test_projection_checks_the_order_and_writes_parseable_critiques(prefs_factory) -> None:
    prefs = load_preferences(prefs_factory(PROJECT_SPECS))
    work = prefs.root.parent
    kept = {
        "ok": parse_pairwise(pairwise_answer("t2i", T2I_A), "t2i"),
        "swapped": parse_pairwise(pairwise_answer("t2i", T2I_B), "t2i"),
        "norefine": parse_pairwise(pairwise_answer("t2i", T2I_A), "t2i"),
        "tie": parse_pairwise(pairwise_answer("t2i", T2I_TIE), "t2i"),
    }

    def respond(request):
        text = user_text(request)
        name = _marker(request).split(":")[0]
        cand = "A" if "called Image A there" in text else "B"
        if name == "ok":
            return pointwise_answer("t2i", [3.5, 3.0, None] if cand == "A" else [2.0, 3.0, None])
        if name == "swapped":  # the projection flips the pair's order: a violation
            return pointwise_answer("t2i", [3.5, 3.0, None] if cand == "A" else [2.0, 2.5, None])
        if name == "norefine":
            return pointwise_answer("t2i", [3.5, 3.0, None]).split("# User Request Refinement")[0]
        return pointwise_answer("t2i", [3.0, 2.5, None])

    teacher = FakeBackend(respond)
    report = asyncio.run(
        project_rationales(
            prefs,
            kept,
            teacher,
            log_path=work / "projected.jsonl",
            pointwise_path=work / "pointwise.jsonl",
            report_path=work / "projection.json",
        )
    )
    assert sorted(report.projected) == ["ok", "tie"]
    assert report.violations == {"swapped": "pointwise totals give A (A 9, B 7), the comparison gives B"}
    assert set(report.failed) == {"norefine"}
    assert len(teacher.requests) == 8
    data = json.loads((work / "projection.json").read_text())
    assert (data["pairs"], data["projected_pairs"], data["pointwise_critiques"], data["violations"]) == (
        4,
        2,
        4,
        1,
    )
    assert data["violation_rate"] == pytest.approx(1 / 3)
    records = load_pointwise(work / "pointwise.jsonl")
    assert [(r["id"], r["candidate"]) for r in records] == [
        ("ok", "A"),
        ("ok", "B"),
        ("tie", "A"),
        ("tie", "B"),
    ]
    for r in records:
        critique = parse_critique(r["answer"], "t2i")
        assert critique.warnings == [] and critique.refined_request == "A sharper request."
    assert parse_critique(records[1]["answer"], "t2i").scores == {
        "text_faithfulness": 2.0,
        "physical_quality": 3.0,
        "text_rendering": None,
    }
    assert "refined request" in ResultLog(work / "projected.jsonl").latest()["norefine::A"]["error"]
