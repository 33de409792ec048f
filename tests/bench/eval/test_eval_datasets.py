"""Reading the benchmarks: every layout in every storage form, detection, override, labels, images."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from evalkit import CASES, MMRB2_CASES, side_of, write_jsonl, write_parquet, write_saved
from PIL import Image

from gcr.bench.eval import open_dataset
from gcr.bench.eval.layouts import LAYOUTS, label_from_chosen, label_from_editreward, label_from_vote_type
from gcr.errors import DatasetError, ImageError, InputError
from gcr.task import Task

LAYOUT_NAMES = ("mmrb2-t2i", "mmrb2-edit", "genai-t2i", "genai-edit", "editreward")


def _write(fmt: str, layout: str, tmp_path: Path) -> Path:
    if fmt == "parquet":
        return write_parquet(layout, tmp_path / "data.parquet")
    if fmt == "saved":
        return write_saved(layout, tmp_path / "saved")
    return write_jsonl(layout, tmp_path / "jsonl", how=fmt)


@pytest.mark.parametrize("fmt", ["parquet", "saved", "paths"])
@pytest.mark.parametrize("layout", LAYOUT_NAMES)
def test_every_layout_is_detected_and_read_in_every_form(layout: str, fmt: str, tmp_path: Path) -> None:
    path = _write(fmt, layout, tmp_path)
    ds = open_dataset(path)
    assert ds.layout.name == layout and ds.detected
    cases = MMRB2_CASES if layout.startswith("mmrb2") else CASES
    assert len(ds) == len(cases)
    pairs = list(ds.pairs())
    assert [p.label for p in pairs] == [c.label for c in cases]
    assert [p.category for p in pairs] == [c.category for c in cases]
    assert all(c.key in p.prompt for p, c in zip(pairs, cases, strict=True))
    if layout in ("mmrb2-t2i", "mmrb2-edit", "editreward"):
        assert [p.id for p in pairs] == [c.key for c in cases]
    else:  # GenAI-Bench rows carry no id: the row number stands in
        assert [p.id for p in pairs] == [f"row-{i:06d}" for i in range(len(cases))]
    task = LAYOUTS[layout].task
    for pair in pairs[:2]:
        pair.check()
        assert pair.task is task
        a, b = pair.image_a.load(), pair.image_b.load()
        assert isinstance(a, Image.Image) and a.size == (16, 16)
        assert (side_of(a), side_of(b)) == ("A", "B")
        assert [side_of(s.load()) for s in pair.sources] == (["source"] if task is Task.EDIT else [])
    # The cheap scan agrees with the full read, without decoding images.
    keys = list(ds.scan())
    assert [(k.id, k.label, k.category) for k in keys] == [(p.id, p.label, p.category) for p in pairs]


@pytest.mark.parametrize("how", ["base64", "data-url"])
def test_jsonl_with_embedded_base64_images(how: str, tmp_path: Path) -> None:
    ds = open_dataset(write_jsonl("genai-edit", tmp_path, how=how))
    pair = next(ds.pairs())
    assert side_of(pair.image_b.load()) == "B"
    assert side_of(pair.sources[0].load()) == "source"


def test_parquet_shards_folder_and_split_filter(tmp_path: Path) -> None:
    folder = write_parquet("editreward", tmp_path / "bench" / "2pair", shards=3)
    ds = open_dataset(tmp_path / "bench")
    assert ds.layout.name == "editreward" and len(ds) == len(CASES)
    assert [p.id for p in ds.pairs()] == [c.key for c in CASES]
    assert len(open_dataset(tmp_path / "bench", split="train")) == len(CASES)
    with pytest.raises(InputError, match="no dataset for split 'test'"):
        open_dataset(tmp_path / "bench", split="test")
    # A relative image path inside a shard resolves against the shard's folder first.
    assert folder.is_dir()


def test_dataset_dict_needs_a_split_when_it_has_several(tmp_path: Path) -> None:
    folder = write_saved("genai-t2i", tmp_path / "dd", splits=["train", "test"])
    with pytest.raises(InputError, match="holds the splits train, test: choose one with"):
        open_dataset(folder)
    assert len(open_dataset(folder, split="test")) == len(CASES)
    with pytest.raises(InputError, match="no split 'dev'"):
        open_dataset(folder, split="dev")


def test_layout_override_and_its_errors(tmp_path: Path) -> None:
    path = write_parquet("mmrb2-edit", tmp_path / "mmrb2.parquet")
    assert open_dataset(path).layout.name == "mmrb2-edit"
    # Forcing the t2i layout on edit rows: the rows say what is wrong, pair by pair.
    forced = open_dataset(path, layout="mmrb2-t2i")
    assert not forced.detected
    with pytest.raises(DatasetError, match="has source images but the layout is text-to-image"):
        next(forced.pairs()).check()
    missing = r"lacks the column\(s\) prompt, left_image, right_image, vote_type"
    with pytest.raises(DatasetError, match=missing):
        open_dataset(path, layout="genai-t2i")
    with pytest.raises(InputError, match="unknown layout 'hpd'"):
        open_dataset(path, layout="hpd")


def test_unrecognised_columns_name_what_was_found(tmp_path: Path) -> None:
    path = tmp_path / "other.jsonl"
    path.write_text(json.dumps({"question": "q", "answer": "a"}) + "\n")
    with pytest.raises(DatasetError, match=r"its columns are question, answer.*pass --layout"):
        open_dataset(path)


def test_bad_inputs_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="dataset not found"):
        open_dataset(tmp_path / "missing.parquet")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match=r"unsupported dataset file notes\.txt"):
        open_dataset(tmp_path / "notes.txt")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x"}\n{oops\n')
    with pytest.raises(DatasetError, match=r"bad.jsonl:2: not valid JSON"):
        open_dataset(bad)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="holds no dataset"):
        open_dataset(empty)


def test_missing_or_broken_images_fail_only_their_pair(tmp_path: Path) -> None:
    path = write_jsonl("genai-t2i", tmp_path / "d")
    (tmp_path / "d" / "images" / "000_a.png").unlink()
    (tmp_path / "d" / "images" / "001_b.png").write_bytes(b"not a png")
    pairs = list(open_dataset(path).pairs())
    where = r"row 0 \(id row-000000\), field 'left_image'"
    with pytest.raises(ImageError, match=where + ": image file .* not found"):
        pairs[0].image_a.load()
    with pytest.raises(ImageError, match=r"row 1 .*'right_image': not an image"):
        pairs[1].image_b.load()
    assert side_of(pairs[2].image_a.load()) == "A"


def test_duplicate_ids_get_stable_suffixes(tmp_path: Path) -> None:
    rows = [{"id": "p", "prompt": f"prompt {i}", "left_image": "x.png", "right_image": "y.png",
             "vote_type": "leftvote"} for i in range(3)]
    path = tmp_path / "dupes.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert [p.id for p in open_dataset(path).pairs()] == ["p", "p#1", "p#2"]


def test_mmrb2_release_json_is_flattened(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    from evalkit import case_images

    imgs = case_images(0)
    for name in ("a", "b", "src"):
        (images / f"{name}.png").write_bytes(imgs[name])
    release = {"pairs": [{
        "id": "oneig_1",
        "prompt_content": [["image", "images/src.png"], ["text", "Make the sky purple."]],
        "response_a": {"model_name": "m1", "response_content": [["image", "images/a.png"]]},
        "response_b": {"model_name": "m2", "response_content": [["image", "images/b.png"]]},
        "chosen": "B", "prompt_source": "emu_edit", "prompt_metadata": {"category": "Color"},
    }]}
    (tmp_path / "edit.json").write_text(json.dumps(release))
    ds = open_dataset(tmp_path / "edit.json")
    assert ds.layout.name == "mmrb2-edit"
    pair = next(ds.pairs())
    got = (pair.id, pair.prompt, pair.label, pair.category)
    assert got == ("oneig_1", "Make the sky purple.", "B", "Color")
    assert side_of(pair.sources[0].load()) == "source" and side_of(pair.image_a.load()) == "A"


def test_candidate_fields_with_several_images_are_rejected(tmp_path: Path) -> None:
    row = {"prompt_text": "p", "prompt_images": [], "response_a_images": ["a.png", "b.png"],
           "response_b_images": ["b.png"], "chosen": "A"}
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(DatasetError, match="expected exactly one image, found 2"):
        next(open_dataset(path).pairs()).image_a.load()


@pytest.mark.parametrize(
    ("value", "expected"),
    [("A", "A"), ("b", "B"), (" B ", "B"), ("tie", "unknown"), ("", "unknown"), (None, "unknown")],
)
def test_mmrb2_chosen(value: object, expected: str) -> None:
    assert label_from_chosen(value, {}) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("leftvote", "A"), ("rightvote", "B"), ("tievote", "tie"), ("bothbad_vote", "tie"), ("LeftVote", "A"),
     ("", "unknown"), (None, "unknown"), ("upvote", "unknown"), ("left", "unknown")],
)
def test_genai_vote_type(value: object, expected: str) -> None:
    assert label_from_vote_type(value, {}) == expected


@pytest.mark.parametrize(
    ("ranking", "comparison", "expected"),
    [
        ("A>B", None, "A"), ("B>A", None, "B"), ("A=B", None, "tie"), ("a < b", None, "B"),
        ("A>B", "AvsB", "A"), ("C>A", "AvsC", "B"), ("A>C", "AvsC", "A"), ("B=C", "BvsC", "tie"),
        ("D>B", "BvsD", "B"), ("A>B", "AvsC", "unknown"), ("A>>B", None, "unknown"), (None, None, "unknown"),
        ("A>B", "A versus B", "unknown"),
    ],
)
def test_editreward_ranking(ranking: object, comparison: str | None, expected: str) -> None:
    assert label_from_editreward(ranking, {"ranking": ranking, "comparison_type": comparison}) == expected
