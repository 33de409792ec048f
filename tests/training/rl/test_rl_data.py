"""Prompt files (JSONL, optional sources) and the per-epoch prompt draw."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from gcr.errors import DatasetError
from gcr.training.rl.data import PromptRecord, epoch_prompts, load_prompts


def _write(path: Path, rows: list) -> Path:
    path.write_text(
        "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf-8"
    )
    return path


def test_text_prompts_get_ids(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.jsonl", [{"prompt": " a red cat "}, "", {"id": "b", "prompt": "a cup"}])
    records = load_prompts(path)
    assert [(r.id, r.prompt, r.is_edit) for r in records] == [
        ("0", "a red cat", False),
        ("b", "a cup", False),
    ]


def test_sources_resolve_relative_to_the_file_and_fit_the_size(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    Image.new("RGB", (40, 20), (255, 0, 0)).save(tmp_path / "img" / "a.png")
    path = _write(tmp_path / "edits.jsonl", [{"prompt": "make it blue", "source": "img/a.png"}])
    (record,) = load_prompts(path)
    assert record.is_edit and record.source_paths == (tmp_path / "img" / "a.png",)
    (image,) = record.load_sources((16, 16))
    assert image.size == (16, 16) and image.getpixel((8, 8)) == (255, 0, 0)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (["{not json"], ":1: not valid JSON"),
        ([{"text": "x"}], ":1: field 'prompt' must be a non-empty string"),
        ([{"prompt": "x", "source": "missing.png"}], ":1: source image not found"),
        ([{"prompt": "x", "id": "a"}, {"prompt": "y", "id": "a"}], ":2: duplicate id 'a'"),
        ([{"prompt": "x", "sources": [1]}], "'sources' must be a path or a list of paths"),
        ([], "holds no prompts"),
    ],
)
def test_bad_lines_name_the_line(tmp_path: Path, rows: list, message: str) -> None:
    path = _write(tmp_path / "p.jsonl", rows)
    with pytest.raises(DatasetError) as info:
        load_prompts(path)
    assert message in str(info.value)


def test_mixed_files_are_refused(tmp_path: Path) -> None:
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    path = _write(tmp_path / "p.jsonl", [{"prompt": "x"}, {"prompt": "y", "source": "a.png"}])
    with pytest.raises(DatasetError, match="mixes prompts with and without source images"):
        load_prompts(path)


def test_epoch_draw_is_seeded_disjoint_across_processes_and_skips_dropped() -> None:
    records = [PromptRecord(id=str(i), prompt=f"p{i}") for i in range(10)]
    draw = {
        k: epoch_prompts(
            records, dropped=set(), seed=3, epoch=5, per_process=3, num_processes=2, process_index=k
        )
        for k in (0, 1)
    }
    assert draw[0] == epoch_prompts(records, dropped=set(), seed=3, epoch=5, per_process=3, num_processes=2)
    assert not {r.id for r in draw[0]} & {r.id for r in draw[1]}
    assert epoch_prompts(records, dropped=set(), seed=3, epoch=6, per_process=3) != draw[0]
    kept = epoch_prompts(records, dropped={str(i) for i in range(8)}, seed=3, epoch=5, per_process=4)
    assert {r.id for r in kept} == {"8", "9"}  # fewer prompts than groups: passes repeat
    assert epoch_prompts(records, dropped={r.id for r in records}, seed=3, epoch=5, per_process=1) is None
