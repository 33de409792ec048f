"""Teacher/predictor templates and the answer formatter: rendering, checks and round trips."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from gcr.critic.parser import parse_critique, parse_pairwise
from gcr.errors import ConfigError
from gcr.task import Task
from gcr.training.parrot.answers import format_pairwise, format_pointwise, format_score, strip_verdicts
from gcr.training.parrot.data import ItemImages, PreferenceItem
from gcr.training.parrot.prompts import (
    load_parrot_template,
    render_anchor,
    render_predictor,
    render_projection,
)
from stubs.teacher_server import pairwise_answer, pointwise_answer, user_text


def _images(edit: bool) -> ItemImages:
    return ItemImages(
        sources=[Image.new("RGB", (8, 8), "grey")] if edit else [],
        a=Image.new("RGB", (8, 8), "red"),
        b=Image.new("RGB", (8, 8), "green"),
    )


def _item(task: str, label: str = "B") -> PreferenceItem:
    return PreferenceItem(
        id="i",
        task=task,
        request="put a hat on the dog",
        image_a="a.png",
        image_b="b.png",
        source_images=["s.png"] if task == "edit" else [],
        label=label,
    )


@pytest.mark.parametrize("task", ["t2i", "edit"])
def test_anchor_request_shows_images_in_order_and_the_verdict(task: str) -> None:
    images = _images(task == "edit")
    request = render_anchor(load_parrot_template("anchor", task), _item(task, "B"), images)
    assert request.images == [*images.sources, images.a, images.b]
    text = user_text(request)
    assert "put a hat on the dog" in text
    assert "Human verdict: the raters preferred Image B." in text
    assert "{preference}" not in text and "{request}" not in text
    assert "never mention the raters" in request.system.lower()
    tie = render_anchor(load_parrot_template("anchor", task), _item(task, "tie"), images)
    assert "equally good (a tie)" in user_text(tie)


def test_predictor_request_hides_every_verdict() -> None:
    critique = parse_pairwise(
        pairwise_answer("t2i", [(3.5, 2.0), (3.0, 3.0), (None, None)], summary="A wins."), "t2i"
    )
    request = render_predictor(load_parrot_template("predict", "t2i"), _item("t2i"), _images(False), critique)
    text = user_text(request)
    assert "image A shows detail 1" in text
    for leaked in ("Score A", "Score B", "Winner", "3.5", "A wins."):
        assert leaked not in text
    assert text.rstrip().endswith("Preferred: Tie")  # the answer format it must follow


def test_projection_request_carries_the_candidate_scores() -> None:
    critique = parse_pairwise(
        pairwise_answer("edit", [(3.5, 2.0), (4.0, 3.0), (3.0, 2.5), (None, None)]), "edit"
    )
    images = _images(True)
    request = render_projection(load_parrot_template("project", "edit"), _item("edit"), images, critique, "B")
    assert request.images == [images.sources[0], images.b]
    text = user_text(request)
    assert "called Image B there" in text
    assert "- Text Faithfulness: 2.0\n- Image Faithfulness: 3.0\n- Physical and Visual Quality: 2.5\n" in text
    assert "- Text Rendering: N/A" in text
    assert "## Score A: 3.5" in text  # the full comparison is shown


def test_custom_template_needs_its_placeholders(tmp_path: Path) -> None:
    bad = tmp_path / "anchor.md"
    bad.write_text("<!-- system -->\nbe nice\n<!-- user -->\n{request} <image:A> <image:B>\n")
    with pytest.raises(ConfigError, match=r"lacks the placeholder\(s\) \{preference\}"):
        load_parrot_template("anchor", "t2i", bad)
    good = tmp_path / "anchor2.md"
    good.write_text("<!-- user -->\n{request} A: <image:A> B: <image:B> verdict: {preference}\n")
    assert load_parrot_template("anchor", "t2i", good).path == str(good)
    with pytest.raises(ConfigError, match="missing image slot <image:source>"):
        load_parrot_template("anchor", "edit", good)
    with pytest.raises(ConfigError, match="unknown PARROT template kind"):
        load_parrot_template("grade", "t2i")  # type: ignore[arg-type]


def test_model_text_cannot_inject_slots() -> None:
    critique = parse_pairwise(
        pairwise_answer(
            "t2i", [(3.0, 2.0), (3.0, 3.0), (None, None)], note="It mentions <image:A> and {request}."
        ),
        "t2i",
    )
    request = render_predictor(load_parrot_template("predict", "t2i"), _item("t2i"), _images(False), critique)
    assert len(request.images) == 2
    assert "<image :A>" in user_text(request)


PAIR_SCORES = {
    "t2i": [(3.25, 2.0), (4.0, 4.0), (None, None)],
    "edit": [(3.25, 2.0), (2.0, 2.5), (4.0, 4.0), (None, None)],
}
POINT_SCORES = {"t2i": [3.5, 2.0, None], "edit": [3.5, 2.0, 4.0, None]}


@pytest.mark.parametrize("task", ["t2i", "edit"])
def test_formatted_answers_parse_back_identically(task: str) -> None:
    pair = parse_pairwise(pairwise_answer(task, PAIR_SCORES[task]), task)
    text = format_pairwise(pair)
    assert text.startswith("# User Request Analysis\n")
    again = parse_pairwise(text, task)
    assert again.warnings == []
    assert again.judgements == pair.judgements
    assert (again.request_analysis, again.summary) == (pair.request_analysis, pair.summary)
    point = parse_critique(pointwise_answer(task, POINT_SCORES[task]), task)
    text = format_pointwise(point)
    assert "## Refined Request: A sharper request." in text
    back = parse_critique(text, task)
    assert back.warnings == []
    assert back.judgements == point.judgements and back.refined_request == point.refined_request


def test_score_format_and_strip() -> None:
    assert [format_score(v) for v in (3.0, 3.5, 2.75, None, 2.333)] == ["3.0", "3.5", "2.75", "N/A", "2.33"]
    critique = parse_pairwise(pairwise_answer("t2i", [(3.0, 2.0), (3.0, 3.0), (None, None)]), Task.T2I)
    stripped = strip_verdicts(critique)
    assert "Text Faithfulness:\nOn text faithfulness" in stripped
    assert "Score" not in stripped and "Winner" not in stripped and "Summary" not in stripped
