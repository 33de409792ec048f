"""Critic templates: built-ins load and render, custom files are validated, the answer layout round-trips."""

from __future__ import annotations

import hashlib
import itertools
import re
from importlib import resources
from pathlib import Path

import pytest
from PIL import Image

from gcr.critic.parser import parse_critique, parse_pairwise
from gcr.critic.schema import TASK_DIMENSIONS, Dimension
from gcr.critic.templates import CritiqueTemplate, load_template, render_pairwise, render_pointwise
from gcr.errors import ConfigError, InputError
from gcr.task import Task

MODES = ("pointwise", "pairwise")


def _img(color: tuple[int, int, int]) -> Image.Image:
    return Image.new("RGB", (8, 8), color)


SRC1, SRC2, CAND, IMG_A, IMG_B = (_img(c) for c in [(1, 0, 0), (2, 0, 0), (3, 0, 0), (4, 0, 0), (5, 0, 0)])


def _render(t: CritiqueTemplate, request: str = "a red fox in the snow", sources=()):
    if t.mode == "pointwise":
        return render_pointwise(t, request, CAND, sources)
    return render_pairwise(t, request, IMG_A, IMG_B, sources)


def _alternates(parts) -> bool:
    return all(isinstance(a, str) != isinstance(b, str) for a, b in itertools.pairwise(parts))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("task", list(Task))
def test_builtin_template_loads_with_digest_of_its_file(mode: str, task: Task) -> None:
    t = load_template(mode, task)
    file_name = f"critic_{mode}_{task.value}.md"
    raw = resources.files("gcr.prompts").joinpath(file_name).read_bytes()
    assert (t.name, t.mode, t.task) == (f"critic_{mode}_{task.value}", mode, task)
    assert t.digest == hashlib.sha256(raw).hexdigest()
    assert t.path == f"gcr.prompts/{file_name}"
    assert t.system and "{request}" in t.user
    assert load_template(mode, task.value) == t  # a task given as text is accepted


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("task", list(Task))
def test_builtin_templates_ask_for_the_answer_layout(mode: str, task: Task) -> None:
    user = load_template(mode, task).user
    layout = user[user.index("# User Request Analysis") :]
    headers = [d.header for d in TASK_DIMENSIONS[task]]
    positions = [layout.index(f"{i}. {h}:") for i, h in enumerate(headers, start=1)]
    assert positions == sorted(positions)
    fields = (
        ["## Justification:", "## Score:"]
        if mode == "pointwise"
        else ["## Justification:", "## Score A:", "## Score B:", "## Winner:"]
    )
    for field in fields:
        assert layout.count(field) == len(headers)
    assert "# Detailed Judgement" in layout and "# Summary:" in layout
    has_refinement = "# User Request Refinement:" in layout
    assert has_refinement is (mode == "pointwise")
    if has_refinement:
        assert "## Refinement Comments:" in layout and "## Refined Request:" in layout
    # N/A is offered for text rendering only.
    rubric = user[: user.index("Answer in exactly this layout")]
    assert "N/A" not in rubric[: rubric.index("Text Rendering:")]
    assert "N/A" in rubric[rubric.index("Text Rendering:") :]
    assert all(level in rubric for level in ("- 4:", "- 3:", "- 2:", "- 1:"))


@pytest.mark.parametrize("mode", MODES)
def test_t2i_render_alternates_text_and_images_in_order(mode: str) -> None:
    req = _render(load_template(mode, Task.T2I))
    assert isinstance(req.parts[0], str) and isinstance(req.parts[-1], str)
    assert _alternates(req.parts)
    assert req.images == ([CAND] if mode == "pointwise" else [IMG_A, IMG_B])
    text = "".join(p for p in req.parts if isinstance(p, str))
    assert "User request: a red fox in the snow" in text
    assert "{request}" not in text and "<image:" not in text


@pytest.mark.parametrize("mode", MODES)
def test_edit_render_puts_every_source_first_in_order(mode: str) -> None:
    req = _render(load_template(mode, Task.EDIT), sources=[SRC1, SRC2])
    assert _alternates(req.parts)
    expected = [SRC1, SRC2, CAND] if mode == "pointwise" else [SRC1, SRC2, IMG_A, IMG_B]
    assert [id(i) for i in req.images] == [id(i) for i in expected]
    between = req.parts[req.parts.index(SRC1) + 1]
    assert between == "\n"  # two sources are separated by a text part


def test_request_text_is_inserted_literally() -> None:
    t = load_template("pairwise", Task.T2I)
    req = render_pairwise(t, "  write {request} and <image:A> on a sign  ", IMG_A, IMG_B)
    assert req.images == [IMG_A, IMG_B]
    text = "".join(p for p in req.parts if isinstance(p, str))
    assert "User request: write {request} and <image:A> on a sign\n" in text


@pytest.mark.parametrize("request_text", ["", "   \n\t"])
def test_empty_request_is_refused(request_text: str) -> None:
    with pytest.raises(InputError, match="request is empty"):
        render_pointwise(load_template("pointwise", Task.T2I), request_text, CAND)


def test_edit_without_source_and_t2i_with_source_are_refused() -> None:
    with pytest.raises(InputError, match="needs the source image"):
        render_pointwise(load_template("pointwise", Task.EDIT), "make it blue", CAND)
    with pytest.raises(InputError, match="takes no source images"):
        render_pairwise(load_template("pairwise", Task.T2I), "a cat", IMG_A, IMG_B, [SRC1])


def test_wrong_render_function_and_bad_images_are_refused() -> None:
    with pytest.raises(InputError, match="is a pointwise template; use render_pointwise"):
        render_pairwise(load_template("pointwise", Task.T2I), "a cat", IMG_A, IMG_B)
    with pytest.raises(InputError, match="is a pairwise template; use render_pairwise"):
        render_pointwise(load_template("pairwise", Task.T2I), "a cat", CAND)
    with pytest.raises(InputError, match="candidate image must be a PIL image"):
        render_pointwise(load_template("pointwise", Task.T2I), "a cat", "cat.png")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="sources must be a sequence"):
        render_pointwise(load_template("pointwise", Task.EDIT), "a cat", CAND, SRC1)  # type: ignore[arg-type]


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(InputError, match="unknown critique mode 'listwise'"):
        load_template("listwise", Task.T2I)  # type: ignore[arg-type]


CUSTOM = """<!-- system -->
Judge fairly.
<!-- user -->
Instruction: {request}
Before: <image:source>
Left: <image:A>
Right: <image:B>
Compare them.
"""


def _write(tmp_path: Path, text: str, name: str = "mine.md") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_custom_template_is_accepted(tmp_path: Path) -> None:
    path = _write(tmp_path, CUSTOM)
    t = load_template("pairwise", Task.EDIT, path)
    assert (t.name, t.system, t.path) == ("mine", "Judge fairly.", str(path))
    assert t.digest == hashlib.sha256(CUSTOM.encode()).hexdigest()
    req = render_pairwise(t, "add a hat", IMG_A, IMG_B, [SRC1])
    assert req.system == "Judge fairly."
    assert req.parts == (
        "Instruction: add a hat\nBefore: ",
        SRC1,
        "\nLeft: ",
        IMG_A,
        "\nRight: ",
        IMG_B,
        "\nCompare them.",
    )


def test_custom_template_without_system_part(tmp_path: Path) -> None:
    t = load_template(
        "pointwise", Task.T2I, _write(tmp_path, "<!-- user -->\n<image:candidate>\nRate: {request}\n")
    )
    req = render_pointwise(t, "a cat", CAND)
    assert req.system == ""
    assert req.parts == (CAND, "\nRate: a cat")


@pytest.mark.parametrize(
    ("mode", "task", "text", "message"),
    [
        ("pairwise", Task.EDIT, CUSTOM.replace("{request}", "x"), "missing the {request} placeholder"),
        ("pairwise", Task.EDIT, CUSTOM.replace("<image:source>", ""), "missing image slot <image:source>"),
        ("pairwise", Task.T2I, CUSTOM, "unexpected image slot(s) <image:source> for a pairwise t2i template"),
        ("pointwise", Task.EDIT, CUSTOM, "missing image slot <image:candidate>"),
        (
            "pairwise",
            Task.EDIT,
            CUSTOM.replace("<image:A>", "<image:B>", 1).replace("Right: <image:B>", "Right: <image:A>"),
            "must appear in the order <image:source>, <image:A>, <image:B>",
        ),
        ("pairwise", Task.EDIT, CUSTOM + "<image:B>\n", "<image:B> appears 2 times"),
        ("pairwise", Task.EDIT, CUSTOM + "<image:C>\n", "unexpected image slot(s) <image:C>"),
        ("pairwise", Task.EDIT, CUSTOM + "<image>\n", "bare '<image>' tags are not slots"),
        (
            "pairwise",
            Task.EDIT,
            CUSTOM.replace("Judge fairly.", "Judge <image:A>"),
            "belong in the user part",
        ),
        ("pairwise", Task.EDIT, CUSTOM.replace("<!-- user -->", ""), "needs one '<!-- user -->' line"),
        ("pairwise", Task.EDIT, "Intro\n" + CUSTOM, "text before the first marker line"),
        ("pairwise", Task.EDIT, "<!-- user -->\n{request}\n<!-- system -->\nx\n", "must come before"),
    ],
    ids=[
        "no-request",
        "no-source",
        "extra-source",
        "no-candidate",
        "order",
        "twice",
        "unknown",
        "bare",
        "system",
        "no-user",
        "preamble",
        "marker-order",
    ],
)
def test_custom_template_is_refused_with_a_clear_message(
    tmp_path: Path, mode: str, task: Task, text: str, message: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_template(mode, task, path)  # type: ignore[arg-type]
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_missing_and_unreadable_template_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="critic template not found"):
        load_template("pointwise", Task.T2I, tmp_path / "nope.md")
    bad = tmp_path / "latin1.md"
    bad.write_bytes("<!-- user -->\n{request} <image:candidate> caf\xe9".encode("latin-1"))
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        load_template("pointwise", Task.T2I, bad)


# Round trip: fill in the layout each template asks for and parse it back.

POINTWISE_PLAN = {
    Task.T2I: {"Text Faithfulness": "3.5", "Physical and Visual Quality": "2.75", "Text Rendering": "N/A"},
    Task.EDIT: {
        "Text Faithfulness": "3.25",
        "Image Faithfulness": "4",
        "Physical and Visual Quality": "1.5",
        "Text Rendering": "2",
    },
}
PAIRWISE_PLAN = {
    "Text Faithfulness": ("3.5", "2", "Image A"),
    "Image Faithfulness": ("3", "3.75", "Image B"),
    "Physical and Visual Quality": ("3", "3", "Tie"),
    "Text Rendering": ("N/A", "N/A", "N/A"),
}


def _fill_layout(t: CritiqueTemplate) -> str:
    """The template's own answer layout with every bracketed placeholder filled in."""
    layout = t.user[t.user.index("# User Request Analysis") :]
    out: list[str] = []
    dim = ""
    for line in layout.split("\n"):
        m = re.match(r"\d\. (.+):$", line)
        if m:
            dim = m.group(1)
        if "[" not in line:
            out.append(line)
            continue
        head = line[: line.index("[")]
        if head == "## Score: ":
            value = POINTWISE_PLAN[t.task][dim]
        elif head in ("## Score A: ", "## Score B: ", "## Winner: "):
            value = PAIRWISE_PLAN[dim][("## Score A: ", "## Score B: ", "## Winner: ").index(head)]
        elif head == "## Refined Request: ":
            value = "A red fox sitting in deep snow at dawn, photorealistic"
        else:
            value = f"Some careful prose about {dim or 'the request'}."
        out.append(head + value)
    return "\n".join(out)


@pytest.mark.parametrize("task", list(Task))
def test_pointwise_layout_round_trips(task: Task) -> None:
    text = _fill_layout(load_template("pointwise", task))
    critique = parse_critique(text, task)
    expected = {
        Dimension.parse(h).value: (None if v == "N/A" else float(v)) for h, v in POINTWISE_PLAN[task].items()
    }
    assert critique.scores == expected
    assert critique.warnings == [] and not critique.truncated
    assert critique.refined_request == "A red fox sitting in deep snow at dawn, photorealistic"
    assert critique.summary == "Some careful prose about Text Rendering."


@pytest.mark.parametrize("task", list(Task))
def test_pairwise_layout_round_trips(task: Task) -> None:
    text = _fill_layout(load_template("pairwise", task))
    comparison = parse_pairwise(text, task)
    assert comparison.warnings == [] and not comparison.truncated
    winners = {"Image A": "A", "Image B": "B", "Tie": "tie", "N/A": None}
    for dim in TASK_DIMENSIONS[task]:
        a, b, w = PAIRWISE_PLAN[dim.header]
        j = comparison.judgement(dim)
        assert j is not None
        assert (j.score_a, j.score_b, j.winner) == (
            None if a == "N/A" else float(a),
            None if b == "N/A" else float(b),
            winners[w],
        )
