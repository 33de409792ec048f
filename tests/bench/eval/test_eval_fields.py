"""One reading of benchmark labels and prompts: ``gcr eval`` and the PARROT importers agree row by row."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from evalkit import case_images, side_of

from gcr.bench.eval import open_dataset
from gcr.bench.eval.fields import UnreadableLabel, editreward_label, mmrb2_prompt, vote_label
from gcr.training.parrot.data import load_preferences
from gcr.training.parrot.importers import import_preferences

VOTES = ["leftvote", "rightvote", "tievote", "bothbad_vote", "LEFTVOTE ", "left", "leftvote_x", "upvote", ""]


def _write_genai_t2i(folder: Path, votes: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, vote in enumerate(votes):
        imgs = case_images(i)
        for side in ("a", "b"):
            (folder / f"{i}{side}.png").write_bytes(imgs[side])
        rows.append({"id": f"v{i}", "prompt": f"prompt {i}", "left_image": f"{i}a.png",
                     "right_image": f"{i}b.png", "vote_type": vote})
    path = folder / "genai.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_genai_votes_mean_the_same_in_eval_and_import(tmp_path: Path) -> None:
    path = _write_genai_t2i(tmp_path / "genai", VOTES)
    evaluated = {k.id: k.label for k in open_dataset(path).scan()}
    report = import_preferences(path, "genai-bench-t2i", tmp_path / "out")
    imported = {item.id: item.label for item in load_preferences(tmp_path / "out")}
    skipped = {p.item_id for p in report.problems}
    assert evaluated == {"v0": "A", "v1": "B", "v2": "tie", "v3": "tie", "v4": "A", "v5": "unknown",
                         "v6": "unknown", "v7": "unknown", "v8": "unknown"}
    for pair_id, label in evaluated.items():
        if label == "unknown":
            assert pair_id in skipped and pair_id not in imported
        else:
            assert imported[pair_id] == label
    messages = {p.item_id: p.message for p in report.problems}
    assert "vote 'upvote' is not one of leftvote, rightvote, tievote, bothbad_vote" in messages["v7"]


def test_an_unknown_vote_is_an_error_not_a_tie() -> None:
    with pytest.raises(UnreadableLabel, match="not one of"):
        vote_label("downvote")
    with pytest.raises(UnreadableLabel, match="missing or empty"):
        vote_label(None)


def _release(folder: Path, prompt_content: list[list[str]]) -> Path:
    imgs = case_images(0)
    (folder / "images").mkdir(parents=True)
    (folder / "input_images").mkdir()
    (folder / "images" / "p_0.png").write_bytes(imgs["a"])
    (folder / "images" / "p_1.png").write_bytes(imgs["b"])
    (folder / "input_images" / "p_prompt_0.png").write_bytes(imgs["src"])
    # The layout facebookresearch/MMRB2 benchmark/build_from_hf.py writes (see gcr.bench.eval.fields).
    release = {"pairs": [{
        "id": "p",
        "prompt_content": prompt_content,
        "prompt_source": "emu_edit",
        "prompt_metadata": {"category": "Color"},
        "response_a": {"model_name": "m1", "response_content": [["image", "images/p_0.png"]]},
        "response_b": {"model_name": "m2", "response_content": [["image", "images/p_1.png"]]},
        "chosen": "B",
        "human_annotations": [1, 2, 2],
    }]}
    path = folder / "edit.json"
    path.write_text(json.dumps(release), encoding="utf-8")
    return path


def test_the_mmrb2_release_json_imports_as_gcr_eval_reads_it(tmp_path: Path) -> None:
    content = [["image", "input_images/p_prompt_0.png"], ["text", "Make the sky purple."]]
    path = _release(tmp_path / "mmrb2", content)
    pair = next(open_dataset(path).pairs())
    report = import_preferences(path, "mmrb2", tmp_path / "out")
    assert (report.written, report.problems) == (1, [])
    item = load_preferences(tmp_path / "out").items[0]
    assert (item.id, item.task.value, item.request, item.label) == ("p", "edit", pair.prompt, pair.label)
    assert (pair.prompt, pair.label) == ("Make the sky purple.", "B")
    assert item.meta == {"response_a_model": "m1", "response_b_model": "m2"}
    assert len(item.source_images) == 1


def test_mmrb2_image_placeholders_are_dropped_from_the_prompt(tmp_path: Path) -> None:
    assert mmrb2_prompt("<image_1> Put a hat on the dog.") == "Put a hat on the dog."
    assert mmrb2_prompt("Compare <image_1> with <image_2>, then merge") == "Compare\nwith\n, then merge"
    imgs = case_images(0)
    folder = tmp_path / "hf"
    folder.mkdir()
    for name in ("a", "b", "src"):
        (folder / f"{name}.png").write_bytes(imgs[name])
    row = {"pair_id": "x1", "prompt_text": "<image_1>\nMake the sky purple.", "prompt_images": ["src.png"],
           "response_a_images": ["a.png"], "response_b_images": ["b.png"], "chosen": "a"}
    only = {**row, "pair_id": "x2", "prompt_text": "<image_1>"}
    path = folder / "edit.jsonl"
    path.write_text(json.dumps(row) + "\n" + json.dumps(only) + "\n", encoding="utf-8")
    prompts = {p.id: p.prompt for p in open_dataset(path).pairs()}
    assert prompts["x1"] == "Make the sky purple."
    report = import_preferences(path, "mmrb2", tmp_path / "out")
    assert load_preferences(tmp_path / "out").items[0].request == "Make the sky purple."
    assert "only image placeholders" in report.problems[0].message


def _scores_parquet(path: Path, with_ranking: bool) -> Path:
    """EditReward-Bench as the repackaged evaluation parquet: per-candidate scores, no ranking column."""
    imgs = case_images(0)
    image = {"bytes": imgs["a"], "path": None}
    rows: list[dict[str, Any]] = []
    for key, (if1, vq1, if2, vq2) in {"e1": (4, 3, 2, 3), "e2": (2, 2, 3, 3), "e3": (3, 3, 2, 4),
                                      "e4": (None, 3, 2, 4)}.items():
        rows.append({"id": key, "instruction": "add a hat",
                     "source_image": {"bytes": imgs["src"], "path": None}, "candidate_1": image,
                     "candidate_2": {"bytes": imgs["b"], "path": None},
                     "instruction_following_1": if1, "visual_quality_1": vq1,
                     "instruction_following_2": if2, "visual_quality_2": vq2})
        if with_ranking:
            rows[-1]["ranking"] = "B>A"
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def test_editreward_without_a_ranking_column_is_labelled_by_score_sums(tmp_path: Path) -> None:
    path = _scores_parquet(tmp_path / "erb.parquet", with_ranking=False)
    ds = open_dataset(path)
    assert ds.layout.name == "editreward"
    assert {k.id: k.label for k in ds.scan()} == {"e1": "A", "e2": "B", "e3": "tie", "e4": "unknown"}
    assert side_of(next(ds.pairs()).image_a.load()) == "A"
    assert open_dataset(path, layout="editreward").layout.name == "editreward"
    report = import_preferences(path, "editreward-bench", tmp_path / "out")
    assert {i.id: i.label for i in load_preferences(tmp_path / "out")} == {"e1": "A", "e2": "B", "e3": "tie"}
    assert "per-candidate scores are incomplete" in report.problems[0].message
    # A ranking, where there is one, decides over the scores.
    ranked = open_dataset(_scores_parquet(tmp_path / "ranked.parquet", with_ranking=True))
    assert {k.label for k in ranked.scan()} == {"B"}


def test_score_sums_refuse_what_is_not_a_finite_number() -> None:
    row = {"instruction_following_1": 3, "visual_quality_1": float("nan"),
           "instruction_following_2": 2, "visual_quality_2": 4}
    with pytest.raises(UnreadableLabel, match="incomplete"):
        editreward_label(row)
    with pytest.raises(UnreadableLabel, match="incomplete"):
        editreward_label({**row, "visual_quality_1": True})
