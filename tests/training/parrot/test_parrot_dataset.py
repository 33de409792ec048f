"""The SFT dataset: the critic's own prompt as user turn, a split that leaks no request, the mix ratio."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest

from gcr.critic.backends.transformers_local import build_chat_messages
from gcr.critic.parser import parse_critique, parse_pairwise
from gcr.critic.templates import load_template, render_pairwise, render_pointwise
from gcr.errors import ConfigError
from gcr.training.parrot.answers import format_pairwise, format_pointwise
from gcr.training.parrot.data import load_preferences
from gcr.training.parrot.dataset import DatasetSettings, build_sft_dataset, normalize_request, request_group
from stubs.teacher_server import pairwise_answer, pointwise_answer

PAIR = format_pairwise(parse_pairwise(pairwise_answer("t2i", [(3.5, 2.0), (3.0, 3.0), (None, None)]), "t2i"))
PAIR_EDIT = format_pairwise(
    parse_pairwise(pairwise_answer("edit", [(3.5, 2.0), (3.0, 3.0), (3.0, 2.0), (None, None)]), "edit")
)
POINT = format_pointwise(parse_critique(pointwise_answer("t2i", [3.5, 3.0, None]), "t2i"))
POINT_EDIT = format_pointwise(parse_critique(pointwise_answer("edit", [3.5, 3.0, 3.0, None]), "edit"))


def _specs(n: int) -> list[dict]:
    specs = []
    for i in range(n):
        specs.append({"id": f"t{i:02d}", "request": f"prompt number {i // 2}", "label": "AB"[i % 2]})
    # two edits of the same source with the same instruction: one request group
    specs.append(
        {"id": "e1", "task": "edit", "request": "add a hat", "label": "A", "source": "images/shared.png"}
    )
    specs.append(
        {"id": "e2", "task": "edit", "request": "Add  a HAT", "label": "B", "source": "images/shared.png"}
    )
    return specs


def _build(prefs, out: Path, **settings):
    kept = {i.id: (PAIR_EDIT if i.task.value == "edit" else PAIR) for i in prefs}
    pointwise = [
        {
            "id": i.id,
            "candidate": c,
            "task": i.task.value,
            "answer": POINT_EDIT if i.task.value == "edit" else POINT,
        }
        for i in prefs
        for c in "AB"
    ]
    return build_sft_dataset(prefs, kept, pointwise, out, DatasetSettings(**settings))


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_records_use_the_critic_prompt_verbatim(prefs_factory, tmp_path: Path) -> None:
    prefs = load_preferences(prefs_factory(_specs(4)))
    _build(prefs, tmp_path / "ds", val_fraction=0.0)
    rows = {r["key"]: r for r in _rows(tmp_path / "ds" / "train.jsonl")}
    assert len(rows) == 6 + 12
    item = prefs.by_id()["e1"]
    images = prefs.load_images(item)
    expected = build_chat_messages(
        render_pairwise(load_template("pairwise", "edit"), item.request, images.a, images.b, images.sources)
    )
    row = rows["pairwise:e1:"]
    for got, want in zip(row["messages"][:-1], expected, strict=True):
        assert got["role"] == want["role"]
        assert [{k: v for k, v in b.items() if v is not None} for b in got["content"]] == want["content"]
    assert row["messages"][-1] == {"role": "assistant", "content": [{"type": "text", "text": PAIR_EDIT}]}
    assert [Path(p).name for p in row["images"]] == ["shared.png", "e1_a.png", "e1_b.png"]
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in row["images"])
    assert (row["kind"], row["label"], row["task"], row["request"]) == ("pairwise", "A", "edit", "add a hat")

    point = rows["pointwise:t01:B"]
    item = prefs.by_id()["t01"]
    want = build_chat_messages(
        render_pointwise(load_template("pointwise", "t2i"), item.request, prefs.load_images(item).b)
    )
    assert [m["role"] for m in point["messages"]] == ["system", "user", "assistant"]
    assert point["messages"][0]["content"][0]["text"] == want[0]["content"][0]["text"]
    assert [Path(p).name for p in point["images"]] == ["t01_b.png"]
    assert point["messages"][-1]["content"][0]["text"] == POINT


def test_split_by_request_is_deterministic_and_never_leaks(prefs_factory, tmp_path: Path) -> None:
    prefs = load_preferences(prefs_factory(_specs(30)))
    assert request_group(prefs.by_id()["e1"], prefs) == request_group(prefs.by_id()["e2"], prefs)
    assert request_group(prefs.by_id()["t00"], prefs) == request_group(prefs.by_id()["t01"], prefs)
    report = _build(prefs, tmp_path / "a", val_fraction=0.3, write_hf=False)
    train, val = _rows(tmp_path / "a" / "train.jsonl"), _rows(tmp_path / "a" / "val.jsonl")
    assert not {r["group"] for r in train} & {r["group"] for r in val}
    train_requests = {normalize_request(r["request"]) for r in train}
    assert train_requests.isdisjoint(normalize_request(r["request"]) for r in val)
    assert len(train) + len(val) == 3 * 32
    assert 0 < report.groups["val"] < report.groups["train"]
    # same inputs, same split; another salt, another split
    _build(prefs, tmp_path / "b", val_fraction=0.3, write_hf=False)
    assert _rows(tmp_path / "b" / "val.jsonl") == val
    _build(prefs, tmp_path / "c", val_fraction=0.3, salt="other", write_hf=False)
    assert {r["group"] for r in _rows(tmp_path / "c" / "val.jsonl")} != {r["group"] for r in val}
    # a tiny set still gets one validation request
    small = load_preferences(prefs_factory(_specs(2), name="small"))
    _build(small, tmp_path / "d", val_fraction=0.01, write_hf=False)
    assert len({r["group"] for r in _rows(tmp_path / "d" / "val.jsonl")}) == 1


def test_mix_ratio_applies_to_training_only(prefs_factory, tmp_path: Path) -> None:
    prefs = load_preferences(prefs_factory(_specs(20)))
    report = _build(prefs, tmp_path / "m", val_fraction=0.2, pairwise_fraction=0.5, write_hf=False)
    train = report.counts["train"]
    assert train["pairwise"] == train["pointwise"] > 0
    val = report.counts["val"]
    assert val["pointwise"] == 2 * val["pairwise"]  # validation keeps everything
    assert report.dropped_by_mix["pointwise"] == train["pairwise"]
    only_pairs = _build(prefs, tmp_path / "p", val_fraction=0.2, pairwise_fraction=1.0, write_hf=False)
    assert only_pairs.counts["train"]["pointwise"] == 0
    with pytest.raises(ConfigError, match="pairwise_fraction"):
        DatasetSettings(pairwise_fraction=1.5)


def test_pointwise_critiques_of_dropped_items_are_left_out(prefs_factory, tmp_path: Path) -> None:
    prefs = load_preferences(prefs_factory(_specs(2)))
    kept = {"t00": PAIR}
    pointwise = [{"id": i, "candidate": "A", "task": "t2i", "answer": POINT} for i in ("t00", "t01")]
    report = build_sft_dataset(prefs, kept, pointwise, tmp_path / "s", DatasetSettings(val_fraction=0.0))
    assert report.counts["train"] == {"pairwise": 1, "pointwise": 1}


def test_hf_folder_holds_the_same_records_with_images(prefs_factory, tmp_path: Path) -> None:
    prefs = load_preferences(prefs_factory(_specs(6)))
    _build(prefs, tmp_path / "hf", val_fraction=0.3)
    data = datasets.load_from_disk(str(tmp_path / "hf" / "hf"))
    assert set(data) == {"train", "validation"}
    jsonl = {r["key"]: r for r in _rows(tmp_path / "hf" / "val.jsonl")}
    assert len(data["validation"]) == len(jsonl)
    row = data["validation"][0]
    assert row["messages"][-1]["role"] == "assistant"
    assert row["messages"] == jsonl[row["key"]]["messages"]
    assert [im.size for im in row["images"]] == [
        datasets.Image().decode_example({"path": p, "bytes": None}).size for p in jsonl[row["key"]]["images"]
    ]
    report = json.loads((tmp_path / "hf" / "dataset_report.json").read_text())
    assert report["counts"]["val"]["pairwise"] + report["counts"]["val"]["pointwise"] == len(jsonl)
