"""Importers: every layout, from small real files (PNG, Parquet, JSONL, JSON), broken rows included."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from gcr.bench.eval.fields import ranking_label
from gcr.errors import DatasetError, InputError
from gcr.training.parrot.data import load_preferences, validate_preferences
from gcr.training.parrot.importers import import_preferences
from stubs.teacher_server import write_png

RED, GREEN, BLUE, GREY = (220, 0, 0), (0, 220, 0), (0, 0, 220), (128, 128, 128)


def png_bytes(color: tuple[int, int, int], fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (24, 16), color).save(buf, format=fmt)
    return buf.getvalue()


def struct(color: tuple[int, int, int], fmt: str = "PNG") -> dict[str, object]:
    return {"bytes": png_bytes(color, fmt), "path": f"x.{fmt.lower()}"}


def write_parquet(path: Path, rows: list[dict[str, object]]) -> Path:
    """Rows with the same keys (pyarrow takes the schema from the first row)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def colors(out: Path) -> dict[str, tuple]:
    prefs = load_preferences(out)
    result = {}
    for item in prefs:
        images = prefs.load_images(item)
        result[item.id] = (
            images.a.pixels().getpixel((0, 0)),
            images.b.pixels().getpixel((0, 0)),
            tuple(s.pixels().getpixel((0, 0)) for s in images.sources),
        )
    return result


def test_mmrb2_parquet_t2i_and_edit_with_broken_rows(tmp_path: Path) -> None:
    rows = [
        {
            "pair_id": "t1",
            "prompt_text": "a red cube",
            "prompt_images": [],
            "response_a_images": [struct(RED)],
            "response_b_images": [struct(GREEN, "JPEG")],
            "chosen": "B",
            "response_a_model": "m1",
        },
        {
            "pair_id": "e1",
            "prompt_text": "make it blue",
            "prompt_images": [struct(GREY)],
            "response_a_images": [struct(BLUE)],
            "response_b_images": [struct(RED)],
            "chosen": "a",
        },
        {
            "pair_id": "bad-label",
            "prompt_text": "x",
            "prompt_images": [],
            "response_a_images": [struct(RED)],
            "response_b_images": [struct(GREEN)],
            "chosen": "C",
        },
        {
            "pair_id": "two-images",
            "prompt_text": "x",
            "prompt_images": [],
            "response_a_images": [struct(RED), struct(RED)],
            "response_b_images": [struct(GREEN)],
            "chosen": "A",
        },
        {
            "pair_id": "corrupt",
            "prompt_text": "x",
            "prompt_images": [],
            "response_a_images": [{"bytes": b"garbage", "path": "g.png"}],
            "response_b_images": [struct(GREEN)],
            "chosen": "A",
        },
        {
            "pair_id": "no-prompt",
            "prompt_text": "",
            "prompt_images": [],
            "response_a_images": [struct(RED)],
            "response_b_images": [struct(GREEN)],
            "chosen": "A",
        },
    ]
    src = write_parquet(tmp_path / "mmrb2" / "test-00000.parquet", rows)
    out = tmp_path / "prefs"
    report = import_preferences(src.parent, "mmrb2", out)
    assert (report.total, report.written) == (6, 2)
    reasons = {p.item_id: p.message for p in report.problems}
    assert set(reasons) == {"bad-label", "two-images", "corrupt", "no-prompt"}
    assert "is not A or B" in reasons["bad-label"]
    assert "holds 2 images" in reasons["two-images"]
    assert "does not decode" in reasons["corrupt"]
    assert "'prompt_text' is missing" in reasons["no-prompt"]
    prefs = load_preferences(out)
    by_id = prefs.by_id()
    assert by_id["t1"].task.value == "t2i" and by_id["t1"].label == "B" and by_id["t1"].origin == "mmrb2"
    assert by_id["t1"].meta == {"response_a_model": "m1"}
    assert by_id["t1"].image_b.endswith(".jpg")  # original bytes kept, extension from the format
    assert by_id["e1"].task.value == "edit" and by_id["e1"].label == "A"
    got = colors(out)
    assert got["t1"][0] == RED and got["e1"][2] == (GREY,)
    assert validate_preferences(out).ok


def test_genai_bench_t2i_votes(tmp_path: Path) -> None:
    votes = ["leftvote", "rightvote", "tievote", "bothbad_vote", None]
    rows = [
        {"prompt": f"prompt {i}", "left_image": struct(RED), "right_image": struct(GREEN), "vote_type": v}
        for i, v in enumerate(votes)
    ]
    src = write_parquet(tmp_path / "genai.parquet", rows)
    report = import_preferences(src, "genai-bench-t2i", tmp_path / "out")
    assert report.written == 4
    assert [p.message for p in report.problems] == ["genai.parquet: field 'vote_type' is missing or empty"]
    labels = [i.label for i in load_preferences(tmp_path / "out")]
    assert labels == ["A", "B", "tie", "tie"]


def test_genai_bench_edit_jsonl_with_relative_paths(tmp_path: Path) -> None:
    root = tmp_path / "genai-edit"
    for name, color in (("src.png", GREY), ("l.png", RED), ("r.png", GREEN)):
        write_png(root / "imgs" / name, color)
    rows = [
        {
            "instruct_prompt": "paint it red",
            "source_image": "imgs/src.png",
            "left_output_image": "imgs/l.png",
            "right_output_image": "imgs/r.png",
            "vote_type": "rightvote",
        },
        {
            "instruct_prompt": "paint it red",
            "source_image": "imgs/src.png",
            "left_output_image": "imgs/missing.png",
            "right_output_image": "imgs/r.png",
            "vote_type": "leftvote",
        },
    ]
    src = root / "data.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n{broken\n")
    report = import_preferences(src, "genai-bench-edit", tmp_path / "out")
    assert report.written == 1
    messages = sorted(p.message for p in report.problems)
    assert "image file not found" in messages[0] and "missing.png" in messages[0]
    assert "not valid JSON" in messages[1]
    item = load_preferences(tmp_path / "out").items[0]
    assert (item.task.value, item.label) == ("edit", "B")
    assert colors(tmp_path / "out")[item.id] == (RED, GREEN, (GREY,))


@pytest.mark.parametrize(
    ("ranking", "label"),
    [
        ("A>B", "A"),
        ("B>A", "B"),
        ("A=B", "tie"),
        ("2>1", "B"),
        ("1 > 2", "A"),
        ("candidate_1 < candidate_2", "B"),
        ("Image A > Image B", "A"),
        ([2, 1], "B"),
        (["candidate_1", "candidate_2"], "A"),
        ("tie", "tie"),
    ],
)
def test_ranking_forms(ranking: object, label: str) -> None:
    assert ranking_label(ranking) == label


def test_editreward_bench_parquet(tmp_path: Path) -> None:
    scores = dict.fromkeys(
        ("instruction_following_1", "visual_quality_1", "instruction_following_2", "visual_quality_2")
    )
    base = {
        "instruction": "add a hat",
        "source_image": struct(GREY),
        "candidate_1": struct(RED),
        "candidate_2": struct(GREEN),
        **scores,
    }
    rows = [
        {**base, "id": "r1", "ranking": "B>A"},
        {
            **base,
            "id": "r2",
            "ranking": None,
            "instruction_following_1": 3,
            "visual_quality_1": 4,
            "instruction_following_2": 2,
            "visual_quality_2": 4,
        },
        {**base, "id": "r3", "ranking": "A?B"},
        {**base, "id": "r4", "ranking": None},
        {**base, "id": "r5", "ranking": "C>A", "comparison_type": "AvsC"},
        {**base, "id": "r6", "ranking": "A>B", "comparison_type": "AvsC"},
    ]
    rows = [{"comparison_type": None, **r} for r in rows]
    src = write_parquet(tmp_path / "erb.parquet", rows)
    report = import_preferences(src, "editreward-bench", tmp_path / "out")
    assert report.written == 3
    reasons = {p.item_id: p.message for p in report.problems}
    assert "cannot read ranking" in reasons["r3"]
    assert "per-candidate scores are incomplete" in reasons["r4"]
    labels = {i.id: i.label for i in load_preferences(tmp_path / "out")}
    assert labels == {"r1": "B", "r2": "A", "r5": "B"}  # AvsC: candidate_2 is C, and C won
    assert "does not order the two candidates of 'AvsC'" in reasons["r6"]


def test_editreward_bench_multiway_rows_are_refused(tmp_path: Path) -> None:
    row = {
        "instruction": "x",
        "source_image": struct(GREY),
        "candidate_1": struct(RED),
        "candidate_2": struct(GREEN),
        "candidate_3": struct(BLUE),
        "ranking": "A>B",
    }
    report = import_preferences(
        write_parquet(tmp_path / "k3.parquet", [row]), "editreward-bench", tmp_path / "o"
    )
    assert report.written == 0 and "multi-way row" in report.problems[0].message


def test_hpd_json_puts_the_preferred_image_on_both_sides(tmp_path: Path) -> None:
    root = tmp_path / "hpd"
    rows = []
    for i in range(24):
        write_png(root / f"img/{i}_good.png", RED)
        write_png(root / f"img/{i}_bad.png", GREEN)
        rows.append(
            {
                "prompt": f"prompt number {i}",
                "path1": f"img/{i}_good.png",
                "path2": f"img/{i}_bad.png",
                "model1": "good-model",
                "model2": "bad-model",
                "confidence": 0.9,
            }
        )
    rows.append({"prompt": "broken", "path1": "img/0_good.png", "path2": "img/none.png"})
    (root / "train.json").write_text(json.dumps(rows))
    report = import_preferences(root / "train.json", "hpd", tmp_path / "out")
    assert report.written == 24 and len(report.problems) == 1
    prefs = load_preferences(tmp_path / "out")
    got = colors(tmp_path / "out")
    labels = {i.label for i in prefs}
    assert labels == {"A", "B"}  # hashing spreads the preferred image over both positions
    for item in prefs:
        a, b, _ = got[item.id]
        preferred = a if item.label == "A" else b
        assert preferred == RED
        assert item.meta["model_" + item.label.lower()] == "good-model"
    # the same input gives the same ids and order
    again = import_preferences(root / "train.json", "hpd", tmp_path / "again")
    assert [i.model_dump() for i in load_preferences(tmp_path / "again")] == [i.model_dump() for i in prefs]
    assert again.labels == report.labels


def test_editreward_json_and_parquet_forms(tmp_path: Path) -> None:
    root = tmp_path / "er"
    write_png(root / "k/source.png", GREY)
    write_png(root / "k/good.png", RED)
    write_png(root / "k/bad.png", GREEN)
    rows = [
        {
            "prompt": "make the sandwich a hot dog",
            "path_src": "k/source.png",
            "path1": "k/good.png",
            "path2": "k/bad.png",
            "model1": "m1",
            "model2": "m2",
            "tie_case": False,
        },
        {
            "prompt": "complete the image",
            "path_src": "k/source.png",
            "path1": "k/good.png",
            "path2": "k/bad.png",
            "tie_case": True,
        },
        {"prompt": "no source", "path1": "k/good.png", "path2": "k/bad.png"},
    ]
    (root / "train.json").write_text(json.dumps(rows))
    report = import_preferences(root / "train.json", "editreward", tmp_path / "out")
    assert report.written == 2
    assert "'path_src' is missing" in report.problems[0].message
    prefs = load_preferences(tmp_path / "out")
    got = colors(tmp_path / "out")
    first, second = prefs.items
    assert first.label in ("A", "B") and second.label == "tie"
    a, b, src = got[first.id]
    assert (a if first.label == "A" else b) == RED and src == (GREY,)

    parquet_rows = [
        {
            "unique_key": "u1",
            "instruction": "remove the car",
            "source_img": struct(GREY),
            "left_output_image": struct(RED),
            "right_output_image": struct(GREEN),
            "vote_type": "rightvote",
            "left_model": "x",
            "right_model": "y",
        }
    ]
    report = import_preferences(
        write_parquet(tmp_path / "erd.parquet", parquet_rows), "editreward", tmp_path / "o2"
    )
    item = load_preferences(tmp_path / "o2").items[0]
    assert (item.id, item.label, item.meta["left_model"]) == ("u1", "B", "x")


def test_limit_unknown_layout_and_missing_source(tmp_path: Path) -> None:
    rows = [
        {"prompt": f"p{i}", "left_image": struct(RED), "right_image": struct(GREEN), "vote_type": "leftvote"}
        for i in range(5)
    ]
    src = write_parquet(tmp_path / "g.parquet", rows)
    assert import_preferences(src, "genai-bench-t2i", tmp_path / "o", limit=3).written == 3
    with pytest.raises(InputError, match="unknown layout"):
        import_preferences(src, "nope", tmp_path / "o")
    with pytest.raises(DatasetError, match="source not found"):
        import_preferences(tmp_path / "absent.parquet", "hpd", tmp_path / "o")
