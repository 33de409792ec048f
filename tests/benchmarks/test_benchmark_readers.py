"""The readers on fixtures in the published layouts, and the errors a broken or changed file gets."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import benchfiles as bf
import pytest

from gcr.bench.prompt_files import load_prompt_set
from gcr.benchmarks import load_benchmark
from gcr.benchmarks.base import RowImage
from gcr.errors import DatasetError
from gcr.task import Task


def test_geneval_reads_each_line_as_a_case_with_its_metadata(tmp_path: Path) -> None:
    path = bf.write_geneval(tmp_path)
    for spec in (f"geneval:{path}", f"geneval:{tmp_path}"):  # the file, or the repository folder
        loaded = load_prompt_set(spec)  # gcr bench's own entry point
        assert loaded.task is Task.T2I and len(loaded) == 4
        assert [c.id for c in loaded.cases] == ["00000", "00001", "00002", "00003"]
        assert [c.category for c in loaded.cases] == ["single_object", "counting", "position", "color_attr"]
        assert loaded.cases[3].prompt == "a photo of a purple wine glass and a black apple"
        assert [c.meta["metadata"] for c in loaded.cases] == bf.GENEVAL_ROWS


def test_geneval_errors_name_the_file_line_and_field(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"geneval: .*missing\.jsonl not found"):
        load_benchmark(f"geneval:{tmp_path / 'missing.jsonl'}")
    with pytest.raises(DatasetError, match=r"holds no evaluation_metadata\.jsonl"):
        load_benchmark(f"geneval:{tmp_path}")
    bad = tmp_path / "evaluation_metadata.jsonl"
    rows = [dict(bf.GENEVAL_ROWS[0]), {"tag": "colors", "includes": [], "prompt": "a photo of a red car"}]
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DatasetError, match=r"evaluation_metadata.jsonl:2: field 'include' is missing"):
        load_benchmark(f"geneval:{bad}")
    bad.write_text('{"prompt": "x", "tag": "colors", "include": []}\nnot json\n')
    with pytest.raises(DatasetError, match=r":2: not valid JSON"):
        load_benchmark(f"geneval:{bad}")


def test_dpg_reads_the_csv_once_per_item_and_the_prompt_folder(tmp_path: Path) -> None:
    csv_file = bf.write_dpg(tmp_path / "dpg_bench")
    from_csv = load_benchmark(f"dpg:{csv_file}")
    from_txt = load_benchmark(f"dpg:{tmp_path / 'dpg_bench' / 'prompts'}")
    assert [c.id for c in from_csv.cases] == [c.id for c in from_txt.cases] == ["1", "partiprompts12"]
    texts = list(bf.DPG_ITEMS.values())
    assert [c.prompt for c in from_csv.cases] == [c.prompt for c in from_txt.cases] == texts
    assert from_csv.cases[1].meta["categories"] == ["entity", "relation"]
    # the folder finds the CSV
    assert load_benchmark(f"dpg:{tmp_path / 'dpg_bench'}").source.endswith("dpg_bench")


def test_dpg_changed_column_and_scattered_rows(tmp_path: Path) -> None:
    path = tmp_path / "dpg_bench.csv"
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows([["id", "text"], ["1", "a cat"]])
    with pytest.raises(DatasetError, match=r"csv is not in the DPG-Bench layout: column\(s\) item_id"):
        load_benchmark(f"dpg:{path}")
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows([["item_id", "text"], ["1", "a cat"], ["2", "a dog"], ["1", "a cat"]])
    with pytest.raises(DatasetError, match=r"dpg_bench.csv:4: the rows of item '1' are not consecutive"):
        load_benchmark(f"dpg:{path}")
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows([["item_id", "text"], ["a.b", "a cat"]])
    with pytest.raises(DatasetError, match=r"item id 'a.b' contains '.'"):
        load_benchmark(f"dpg:{path}")


def test_t2icompbench_categories_and_files(tmp_path: Path) -> None:
    folder = bf.write_t2icompbench(tmp_path)
    one = load_benchmark(f"t2icompbench:{folder / 'color_val.txt'}")
    assert one.name == "t2i-compbench-color" and {c.category for c in one.cases} == {"color"}
    every = load_benchmark(f"t2icompbench:{tmp_path}")
    assert [c.category for c in every.cases] == ["color"] * 3 + ["spatial"] * 2
    assert every.cases[-1].meta["prompt_text"] == "a cat on the left of a dog"  # text before the tab
    (folder / "shape_val.txt").write_text("a round_table and a square chair\n")
    with_shape = load_benchmark(f"t2icompbench:{tmp_path}")  # it runs; export will leave it out
    assert (
        with_shape.cases[3].id == "shape-0001"
        and with_shape.cases[3].prompt == "a round_table and a square chair"
    )
    odd = tmp_path / "colors.txt"
    odd.write_text("a red car\n")
    with pytest.raises(DatasetError, match=r"not a <category>_val\.txt file"):
        load_benchmark(f"t2icompbench:{odd}")


@pytest.mark.parametrize("kind", ["parquet", "disk"])
def test_gedit_streams_rows_and_leaves_images_in_the_files(tmp_path: Path, kind: str) -> None:
    root = bf.write_gedit(tmp_path / "gedit", kind)
    both = load_benchmark(f"gedit:{root}")
    assert [c.meta["instruction_language"] for c in both.cases] == ["en", "cn", "en", "cn"]
    cn = load_benchmark(f"gedit-cn:{root}")
    assert [c.prompt for c in cn.cases] == [r[3] for r in bf.GEDIT_ROWS if r[2] == "cn"]
    assert cn.task is Task.EDIT and [c.category for c in cn.cases] == ["background_change", "subject-add"]
    assert cn.cases[0].meta["intersection_exist"] is True and cn.cases[1].meta["intersection_exist"] is False
    source = cn.cases[1].sources[0]
    # Only a locator is held; the image is read from its row when the case runs.
    assert isinstance(source, RowImage) and source.value.endswith("#row=3&column=input_image_raw")
    image = source.load()
    assert image.size == (48, 32) and image.getpixel((0, 0)) == (30, 200, 90)
    assert cn.extras[cn.cases[1].id]["srcimg"].load().getpixel((0, 0)) == (30, 100, 50)
    assert both.digest() == load_benchmark(f"gedit:{root}").digest()


def test_gedit_parquet_shards_with_small_row_groups_give_each_row_its_own_image(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    table = bf.gedit_dataset().data.table
    (tmp_path / "data").mkdir()
    pq.write_table(table.slice(0, 3), tmp_path / "data" / "train-00000-of-00002.parquet", row_group_size=2)
    pq.write_table(table.slice(3), tmp_path / "data" / "train-00001-of-00002.parquet", row_group_size=1)
    loaded = load_benchmark(f"gedit:{tmp_path}")
    assert [c.meta["instruction_language"] for c in loaded.cases] == ["en", "cn", "en", "cn"]
    for i, case in reversed(list(enumerate(loaded.cases))):  # out of order, across groups and shards
        assert case.sources[0].load().getpixel((0, 0)) == (10 * i, 200, 90)
        assert loaded.extras[case.id]["srcimg"].load().getpixel((0, 0)) == (10 * i, 100, 50)


def test_gedit_changed_column_or_value(tmp_path: Path) -> None:
    ds = bf.gedit_dataset().rename_column("instruction_language", "language")
    ds.save_to_disk(str(tmp_path / "renamed"))
    with pytest.raises(DatasetError, match=r"GEdit-Bench layout: column\(s\) instruction_language"):
        load_benchmark(f"gedit:{tmp_path / 'renamed'}")
    ds = bf.gedit_dataset().map(lambda row: {"instruction_language": "fr" if row["key"][0] == "b" else "en"})
    ds.save_to_disk(str(tmp_path / "french"))
    with pytest.raises(DatasetError, match=r"row 2: field 'instruction_language' is 'fr'"):
        load_benchmark(f"gedit:{tmp_path / 'french'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"GEdit-Bench: .*holds no dataset"):
        load_benchmark(f"gedit:{tmp_path / 'empty'}")


def test_imgedit_reads_the_keyed_json_and_finds_the_originals(tmp_path: Path) -> None:
    edit_json = bf.write_imgedit(tmp_path / "bench")
    loaded = load_benchmark(f"imgedit:{tmp_path / 'bench'}")  # the folder holding basic_edit.json
    assert [c.id for c in loaded.cases] == list(bf.IMGEDIT_ENTRIES)
    assert [c.category for c in loaded.cases] == ["alter", "style", "add"]
    assert loaded.cases[0].meta["image_id"] == "animal/000342021.jpg"
    assert loaded.cases[0].sources[0].load().size == (32, 24)
    entries = json.loads(edit_json.read_text())
    entries["97"]["id"] = "for_add/missing.jpg"
    edit_json.write_text(json.dumps(entries))
    with pytest.raises(DatasetError, match=r"item '97': original image 'for_add/missing.jpg' not found"):
        load_benchmark(f"imgedit:{edit_json}")
    entries["97"] = {"image": "for_add/000236569.jpg", "prompt": "Add a lamp.", "edit_type": "add"}
    edit_json.write_text(json.dumps(entries))
    with pytest.raises(DatasetError, match=r"item '97': field 'id' is missing"):
        load_benchmark(f"imgedit:{edit_json}")
    edit_json.write_text(json.dumps(list(entries.values())))
    with pytest.raises(DatasetError, match="expected a JSON object keyed by item key"):
        load_benchmark(f"imgedit:{edit_json}")


def test_a_spec_that_names_no_benchmark_is_still_a_plain_path(tmp_path: Path) -> None:
    plain = tmp_path / "notes:v2.txt"
    plain.write_text("a lighthouse at dawn\n")
    assert load_prompt_set(str(plain)).cases[0].prompt == "a lighthouse at dawn"
    with pytest.raises(DatasetError, match=r"imgedit: give the benchmark's path"):
        load_prompt_set("imgedit:")
