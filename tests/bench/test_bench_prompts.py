"""Prompt-set loading: every format, the edit-folder layouts, built-ins, and clear errors for bad rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gcr.bench.builtin import BUILTIN_SETS, data_dir, render_edit_source
from gcr.bench.prompt_files import load_prompt_set
from gcr.errors import DatasetError
from gcr.task import Task


def png(path: Path, color: tuple[int, int, int] = (200, 30, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (24, 24), color).save(path)
    return path


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_jsonl_with_ids_categories_meta_and_default_ids(tmp_path: Path) -> None:
    path = write(
        tmp_path / "set.jsonl",
        '{"id": "a", "prompt": "  a red   cube ", "category": "colour", "source": "mine"}\n'
        "\n"
        '{"prompt": "two cats"}\n',
    )
    s = load_prompt_set(path)
    assert s.name == "set" and s.task is Task.T2I and len(s) == 2
    first, second = s.cases
    assert (first.id, first.prompt, first.category, first.meta) == (
        "a",
        "a red cube",
        "colour",
        {"source": "mine"},
    )
    assert (second.id, second.prompt, second.category) == ("p0001", "two cats", None)
    assert s.head(1) == (first,)


def test_json_array_csv_text_and_parquet_agree(tmp_path: Path) -> None:
    rows = [{"id": "x1", "prompt": "a blue bird", "category": "animals"}, {"id": "x2", "prompt": "a red car"}]
    write(tmp_path / "a.json", json.dumps(rows))
    write(tmp_path / "b.csv", 'id,prompt,category\nx1,a blue bird,animals\nx2,"a red car",\n')
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "c.parquet")
    loaded = [load_prompt_set(tmp_path / name) for name in ("a.json", "b.csv", "c.parquet")]
    for s in loaded:
        assert [(c.id, c.prompt, c.category) for c in s.cases] == [
            ("x1", "a blue bird", "animals"),
            ("x2", "a red car", None),
        ]
    assert loaded[0].digest() == loaded[1].digest() == loaded[2].digest()

    text = load_prompt_set(
        write(tmp_path / "p.txt", "# my prompts\n\na lighthouse at dusk\n  a fox in snow  \n")
    )
    assert [(c.id, c.prompt) for c in text.cases] == [
        ("line-0003", "a lighthouse at dusk"),
        ("line-0004", "a fox in snow"),
    ]


def test_edit_cases_jsonl_csv_and_parquet_with_embedded_images(tmp_path: Path) -> None:
    png(tmp_path / "imgs" / "src.png")
    jsonl = load_prompt_set(
        write(tmp_path / "e.jsonl", '{"instruction": "make it blue", "image": "imgs/src.png"}\n')
    )
    assert jsonl.task is Task.EDIT
    assert jsonl.cases[0].sources[0].load().getpixel((0, 0)) == (200, 30, 30)

    csv_set = load_prompt_set(
        write(tmp_path / "e.csv", "prompt,images\nmerge them,imgs/src.png;imgs/src.png\n")
    )
    assert len(csv_set.cases[0].sources) == 2

    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 250, 0)).save(buf, format="PNG")
    table = pa.Table.from_pylist(
        [{"prompt": "make it red", "image": {"bytes": buf.getvalue(), "path": None}}]
    )
    pq.write_table(table, tmp_path / "e.parquet")
    embedded = load_prompt_set(tmp_path / "e.parquet")
    assert embedded.task is Task.EDIT
    assert embedded.cases[0].sources[0].load().getpixel((3, 3)) == (0, 250, 0)


def test_edit_folder_layouts(tmp_path: Path) -> None:
    manifest = tmp_path / "m"
    png(manifest / "a.png")
    write(manifest / "cases.jsonl", '{"id": "c1", "instruction": "add a hat", "image": "a.png"}\n')
    s = load_prompt_set(manifest)
    assert s.name == "m" and [c.id for c in s.cases] == ["c1"] and s.task is Task.EDIT

    folders = tmp_path / "f"
    png(folders / "cat-hat" / "source.png")
    write(folders / "cat-hat" / "instruction.txt", "put a hat on the cat\n")
    png(folders / "two" / "source-0.png")
    png(folders / "two" / "source-1.jpg")
    write(folders / "two" / "prompt.txt", "combine both")
    s = load_prompt_set(folders)
    assert [(c.id, c.prompt, len(c.sources)) for c in s.cases] == [
        ("cat-hat", "put a hat on the cat", 1),
        ("two", "combine both", 2),
    ]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.jsonl", '{"prompt": "ok"}\n{"prompt": \n', r"bad\.jsonl:2: not valid JSON"),
        (
            "list.jsonl",
            '["a red cube"]\n',
            r"list\.jsonl:1: expected a JSON object with a 'prompt' field, got list",
        ),
        ("missing.jsonl", '{"text": "a cube"}\n', r"missing\.jsonl:1: field 'prompt' is missing"),
        ("empty.jsonl", '{"prompt": "   "}\n', r"empty\.jsonl:1: field 'prompt' is empty"),
        ("number.jsonl", '{"prompt": 12}\n', r"number\.jsonl:1: field 'prompt' must be text, got int"),
        (
            "both.jsonl",
            '{"prompt": "a", "instruction": "b"}\n',
            r"both\.jsonl:1: has both 'prompt' and 'instruction'",
        ),
        (
            "dup.jsonl",
            '{"id": "a", "prompt": "x"}\n{"id": "a", "prompt": "y"}\n',
            r"dup\.jsonl:2: id 'a' is used again \(first at .*dup\.jsonl:1\)",
        ),
        (
            "noimg.jsonl",
            '{"prompt": "edit", "image": "nowhere.png"}\n',
            r"noimg\.jsonl:1: field 'image': image file 'nowhere.png' not found",
        ),
        ("imgtype.jsonl", '{"prompt": "edit", "images": "a.png"}\n', r"field 'images' must be a list"),
        ("cat.jsonl", '{"prompt": "x", "category": 3}\n', r"field 'category' must be text, got int"),
        (
            "mixed.jsonl",
            '{"id": "e", "prompt": "edit", "image": "ok.png"}\n{"id": "t", "prompt": "plain"}\n',
            r"mixes edit cases .*'e'.* and text-to-image prompts .*'t'",
        ),
        ("nohead.csv", "text,category\na cube,x\n", r"nohead\.csv: the header has no 'prompt'"),
        (
            "long.csv",
            'prompt\n"a",extra\n',
            r"long\.csv:2: the row has more cells than the header has columns",
        ),
        ("blank.txt", "# only a comment\n\n", r"blank\.txt holds no prompts"),
    ],
)
def test_bad_rows_name_the_row_and_field(tmp_path: Path, name: str, text: str, message: str) -> None:
    png(tmp_path / "ok.png")
    with pytest.raises(DatasetError, match=message):
        load_prompt_set(write(tmp_path / name, text))


def test_bad_inputs_and_folders(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"not found: give a \.jsonl"):
        load_prompt_set(tmp_path / "nope.jsonl")
    with pytest.raises(DatasetError, match="neither a folder of edit cases"):
        load_prompt_set(tmp_path)
    (tmp_path / "case").mkdir()
    with pytest.raises(DatasetError, match=r"case: a case folder needs instruction.txt"):
        load_prompt_set(tmp_path)
    with pytest.raises(DatasetError, match="no built-in prompt set 'nope': use one of counting"):
        load_prompt_set("builtin:nope")
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(DatasetError, match="is not UTF-8"):
        load_prompt_set(tmp_path / "bin.txt")
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist([{"caption": "x"}]), tmp_path / "p.parquet")
    with pytest.raises(DatasetError, match=r"no 'prompt' \(or 'instruction'\) column; it has caption"):
        load_prompt_set(tmp_path / "p.parquet")


def test_builtin_sets_cover_the_issue_categories() -> None:
    sizes = {}
    for name, entry in BUILTIN_SETS.items():
        s = load_prompt_set(f"builtin:{name}")
        assert s.task is entry.task and s.name == name
        assert all(c.prompt and c.category for c in s.cases)
        sizes[name] = len(s)
    assert sizes["all-t2i"] == sizes["counting"] + sizes["spatial"] + sizes["attributes"] + sizes["text"]
    assert min(sizes.values()) >= 8
    text = load_prompt_set("builtin:text")
    assert all('"' in c.prompt for c in text.cases)  # each asks for a quoted phrase
    edits = load_prompt_set("builtin:edits")
    assert {c.category for c in edits.cases} >= {"colour", "add", "remove", "text"}
    for case in edits.cases:
        assert case.sources[0].load().size == (512, 512)


def test_shipped_edit_sources_are_what_the_renderer_draws() -> None:
    for name in ("ball.png", "house.png", "sign.png", "boxes.png"):
        shipped = np.asarray(Image.open(data_dir() / "edits" / name).convert("RGB"), dtype=np.int16)
        drawn = np.asarray(render_edit_source(name), dtype=np.int16)
        assert shipped.shape == drawn.shape
        assert np.abs(shipped - drawn).mean() < 1.0
