"""Judge specs, the registry (built-ins, in-process and entry-point plugins) and rubric files."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from PIL import Image

from gcr.errors import ConfigError, InputError, JudgeResponseError
from gcr.judges import JudgeResult, available_judges, load_judge, parse_judge_spec, register_judge
from gcr.judges import registry as registry_module
from gcr.judges.registry import unregister_judge
from gcr.judges.rubric import load_rubric, parse_scores


def test_spec_splits_kind_target_and_options() -> None:
    spec = parse_judge_spec("viescore:https://api.openai.com/v1,model=gpt-4.1, temperature=0")
    assert spec.kind == "viescore" and spec.target == "https://api.openai.com/v1"
    assert spec.options == {"model": "gpt-4.1", "temperature": "0"}
    assert parse_judge_spec("clip:").target == ""
    assert parse_judge_spec("CRITIC:/models/rr,temperature=0.7").kind == "critic"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty judge spec"),
        ("http://host:8000/v1", "does not start with a judge kind"),
        ("viescore", "does not start with a judge kind"),
        ("viescore:http://x/v1,model", "is not key=value"),
        ("viescore:http://x/v1,model=a,model=b", "given twice"),
    ],
)
def test_bad_specs_say_what_to_fix(text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_judge_spec(text)


def test_unknown_kind_lists_the_known_ones() -> None:
    with pytest.raises(InputError, match=r"known kinds are .*viescore"):
        load_judge("nope:x")
    assert {"critic", "vlm", "viescore", "imgedit", "clip", "pickscore", "image-reward", "hpsv3"} <= set(
        available_judges()
    )


class ConstantJudge:
    def __init__(self, target: str, value: str = "0.5") -> None:
        self.value = float(value)
        self.identity = f"constant:{target};value={self.value}"

    async def judge(
        self, prompt: str, image: Image.Image, sources: Sequence[Image.Image] = ()
    ) -> JudgeResult:
        return JudgeResult(score=self.value, subscores={"value": self.value}, raw="", judge=self.identity)


def test_registered_and_entry_point_judges(monkeypatch: pytest.MonkeyPatch) -> None:
    register_judge("constant", ConstantJudge)
    try:
        judge = load_judge("constant:anything,value=0.25")
        result = asyncio.run(judge.judge("p", Image.new("RGB", (4, 4))))
        assert result.score == 0.25 and result.judge == "constant:anything;value=0.25"
        with pytest.raises(ConfigError, match="already registered"):
            register_judge("constant", ConstantJudge)
    finally:
        unregister_judge("constant")

    ep = EntryPoint(name="plugged", value=f"{__name__}:ConstantJudge", group="gcr.judges")
    monkeypatch.setattr(registry_module.REGISTRY, "_entry_points", lambda: [ep])
    assert "plugged" in available_judges()
    assert load_judge("plugged:t").identity == "constant:t;value=0.5"
    broken = EntryPoint(name="broken", value="no_such_module_xyz:Judge", group="gcr.judges")
    monkeypatch.setattr(registry_module.REGISTRY, "_entry_points", lambda: [broken])
    with pytest.raises(ConfigError, match="failed to load"):
        load_judge("broken:t")


def test_a_factory_returning_a_non_judge_is_refused() -> None:
    register_judge("bad", lambda target: object())
    try:
        with pytest.raises(ConfigError, match="lacks an identity"):
            load_judge("bad:x")
    finally:
        unregister_judge("bad")


def test_judge_result_checks_its_range() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        JudgeResult(score=1.5)
    with pytest.raises(ValueError):
        JudgeResult(score=float("nan"))
    r = JudgeResult(score=0.5, subscores={"a": 3}, raw="x", judge="j")
    assert JudgeResult.from_dict(r.to_dict()) == r


def test_builtin_rubrics_load_with_the_published_shape() -> None:
    vie = load_rubric("viescore")
    assert (vie.low, vie.high, vie.overall) == (0.0, 10.0, "geometric_mean")
    assert [q.key for q in vie.questions] == ["semantic_consistency", "perceptual_quality"]
    assert all(q.reduce == "min" for q in vie.questions)
    assert [t.value for t in vie.tasks] == ["t2i", "edit"]
    img = load_rubric("imgedit")
    assert (img.low, img.high, img.overall) == (1.0, 5.0, "mean")
    assert [t.value for t in img.tasks] == ["edit"]


def test_parse_scores_reads_json_and_refuses_everything_else() -> None:
    crit = ["a", "b"]
    assert parse_scores('Sure.\n{"reasoning": "r", "scores": {"a": 3, "b": "7.5"}}', crit, 0, 10) == {
        "a": 3.0, "b": 7.5
    }
    # VIEScore-style list answers map onto the criteria in order.
    assert parse_scores('{"score": 1, "scores": [4, 5]}', crit, 0, 10) == {"a": 4.0, "b": 5.0}
    for bad in ("no json here", '{"scores": {"a": 3}}', '{"scores": {"a": 3, "b": 11}}',
                '{"scores": {"a": true, "b": 1}}', '{"scores": {"a": "NaN", "b": 1}}', '{"scores": 5}'):
        with pytest.raises(JudgeResponseError):
            parse_scores(bad, crit, 0, 10)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("no header", "YAML header"),
        ("---\n: : :\n---\n", "not valid YAML"),
        ("---\nscale: [5, 1]\nquestions: [{key: q, criteria: [a]}]\n---\n", "lower to a higher"),
        ("---\nscale: [0, 1]\nquestions: [{key: q, criteria: [a]}]\n---\n", "no '<!-- question"),
        (
            "---\nscale: [0, 1]\nquestions: [{key: q, criteria: [a]}]\n---\n"
            "<!-- question: q, task: any -->\n<!-- user -->\nno image\n",
            "<image:candidate> slot exactly once",
        ),
        (
            "---\nscale: [0, 1]\nquestions: [{key: q, criteria: [a]}]\n---\n"
            "<!-- question: q, task: t2i -->\n<!-- user -->\n<image:source><image:candidate>\n",
            "has no source images",
        ),
        (
            "---\nscale: [0, 1]\nquestions: [{key: q, criteria: [a]}]\n---\n"
            "<!-- question: z, task: t2i -->\n<!-- user -->\n<image:candidate>\n",
            "unknown question 'z'",
        ),
        ("---\n!!python/object/apply:os.system ['true']\n---\n", "not valid YAML"),
    ],
)
def test_bad_rubric_files_are_refused(tmp_path: Path, body: str, match: str) -> None:
    path = tmp_path / "r.md"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError, match=match):
        load_rubric(path)


def test_missing_and_oversized_rubric_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="neither a built-in"):
        load_rubric(tmp_path / "none.md")
    big = tmp_path / "big.md"
    big.write_bytes(b"x" * (300 * 1024))
    with pytest.raises(ConfigError, match="larger than"):
        load_rubric(big)


def test_judges_that_declare_tasks_are_checked_up_front() -> None:
    from gcr.judges.base import check_judge_task

    class T2IOnly(ConstantJudge):
        tasks = ("t2i",)

    check_judge_task(T2IOnly("x"), "t2i")
    check_judge_task(ConstantJudge("x"), "edit")  # no declaration: nothing to check
    with pytest.raises(ConfigError, match="cannot judge edit images"):
        check_judge_task(T2IOnly("x"), "edit", "the veto judge")
