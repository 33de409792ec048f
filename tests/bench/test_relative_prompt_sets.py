"""Edit sets given by a relative path: image paths resolve once, against the prompt-set file's folder."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from benchkit import PixelCritic, PixelGenerator, components, write_jsonl
from PIL import Image

from gcr.agent.runner import RunSpec
from gcr.bench.pipeline import BenchSettings, run_bench
from gcr.bench.prompt_files import load_prompt_set


def _edit_folder(root: Path) -> None:
    for name, colour in (("red", (200, 10, 10)), ("green", (10, 200, 10))):
        case = root / name
        case.mkdir(parents=True)
        (case / "instruction.txt").write_text(f"make the {name} square blue [base 3.25]\n")
        Image.new("RGB", (32, 32), colour).save(case / "source.png")


def _manifest_folder(root: Path) -> None:
    (root / "images").mkdir(parents=True)
    Image.new("RGB", (32, 32), (10, 10, 200)).save(root / "images" / "src.png")
    write_jsonl(
        root / "cases.jsonl", [{"id": "m1", "instruction": "tint it [base 3.25]", "image": "images/src.png"}]
    )


def _jsonl_file(root: Path) -> None:
    root.mkdir(parents=True)
    Image.new("RGB", (32, 32), (90, 90, 90)).save(root / "src.png")
    write_jsonl(
        root / "set.jsonl", [{"id": "j1", "instruction": "brighten it [base 3.25]", "image": "src.png"}]
    )


@pytest.mark.parametrize(
    ("build", "spec", "ids"),
    [
        (_edit_folder, "edits2", ["green", "red"]),
        (_manifest_folder, "edits2", ["m1"]),
        (_jsonl_file, "edits2/set.jsonl", ["j1"]),
        (_edit_folder, "./sets/../edits2", ["green", "red"]),
    ],
)
def test_a_relative_edit_set_finds_its_images(tmp_path: Path, monkeypatch, build, spec, ids) -> None:
    build(tmp_path / "edits2")
    (tmp_path / "sets").mkdir(exist_ok=True)
    monkeypatch.chdir(tmp_path)
    prompt_set = load_prompt_set(spec)
    assert sorted(c.id for c in prompt_set.cases) == ids
    for case in prompt_set.cases:
        assert case.sources[0].load().size == (32, 32)

    template = RunSpec(prompt="", context={"max_rounds": 1, "target_reward": 1.0})
    outcome = asyncio.run(
        run_bench(
            prompt_set,
            template,
            str(tmp_path / "out"),
            BenchSettings(),
            load=lambda s, t: components(PixelGenerator(task="edit"), PixelCritic()),
        )
    )
    records = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert outcome.failed == 0 and outcome.complete, [r.get("error") for r in records]
    assert sorted(r["id"] for r in records if r["status"] == "ok") == ids
    for case_id in ids:
        assert (tmp_path / "out" / "inputs" / case_id / "source-0.png").is_file()


def test_the_set_digest_does_not_depend_on_how_the_path_was_typed(tmp_path: Path, monkeypatch) -> None:
    _edit_folder(tmp_path / "edits2")
    monkeypatch.chdir(tmp_path)
    assert load_prompt_set("edits2").digest() == load_prompt_set(tmp_path / "edits2").digest()
