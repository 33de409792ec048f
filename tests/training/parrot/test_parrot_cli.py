"""``gcr train parrot``: import, validate and each phase on its own through the CLI."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from typer.testing import CliRunner

from gcr.cli.app import app
from gcr.errors import ConfigError, DatasetError, RunError
from stubs.teacher_server import pairwise_answer, pointwise_answer

runner = CliRunner()


def _png(color: str) -> dict[str, object]:
    buf = io.BytesIO()
    Image.new("RGB", (20, 20), color).save(buf, format="PNG")
    return {"bytes": buf.getvalue(), "path": None}


def test_import_then_validate(tmp_path: Path) -> None:
    rows = [
        {
            "prompt": "a red kite",
            "left_image": _png("red"),
            "right_image": _png("blue"),
            "vote_type": "leftvote",
        },
        {"prompt": "a blue kite", "left_image": _png("blue"), "right_image": _png("red"), "vote_type": None},
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "g.parquet")
    result = runner.invoke(
        app,
        [
            "train",
            "parrot",
            "import",
            str(tmp_path / "g.parquet"),
            "--layout",
            "genai-bench-t2i",
            "--out",
            str(tmp_path / "prefs"),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["rows"], report["written"], report["skipped"]) == (2, 1, 1)
    assert "vote_type" in report["problems"][0]

    ok = runner.invoke(app, ["train", "parrot", "validate", str(tmp_path / "prefs")])
    assert ok.exit_code == 0 and "usable" in ok.stdout
    (tmp_path / "prefs" / "images").joinpath(
        sorted(p.name for p in (tmp_path / "prefs" / "images").iterdir())[0]
    ).write_bytes(b"broken")
    bad = runner.invoke(app, ["train", "parrot", "validate", str(tmp_path / "prefs"), "--json"])
    assert bad.exit_code == 1
    assert json.loads(bad.stdout)["broken"] == 1

    nothing = runner.invoke(
        app,
        [
            "train",
            "parrot",
            "import",
            str(tmp_path / "g.parquet"),
            "--layout",
            "hpd",
            "--out",
            str(tmp_path / "none"),
        ],
    )
    assert isinstance(nothing.exception, DatasetError)


def test_phases_one_by_one(prefs_factory, teacher_stub, tmp_path: Path) -> None:
    server, teacher = teacher_stub
    prefs = prefs_factory(
        [
            {"id": "a", "request": "a: a yellow duck", "label": "A"},
            {"id": "b", "request": "b: a green frog", "label": "A"},
        ]
    )
    teacher.script("anchor", "a:", pairwise_answer("t2i", [(3.5, 2.0), (3.0, 3.0), (None, None)]))
    teacher.script("anchor", "b:", pairwise_answer("t2i", [(2.0, 3.5), (3.0, 3.0), (None, None)]))
    for cand, scores in (("A", [3.5, 3.0, None]), ("B", [2.0, 3.0, None])):
        teacher.script("project", "a:", pointwise_answer("t2i", scores), candidate=cand)
    work = str(tmp_path / "work")
    endpoint = ["--teacher-url", server.url, "--teacher-model", "stub-teacher", "--json"]

    # the model name is discovered from the server when not given
    discover = ["--teacher-url", server.url, "--json"]
    result = runner.invoke(app, ["train", "parrot", "anchor", str(prefs), "--workdir", work, *discover])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ok"] == 2
    anchored = [json.loads(x) for x in (tmp_path / "work" / "anchored.jsonl").read_text().splitlines()]
    assert {r["teacher"] for r in anchored} == {"stub-teacher"}

    # only the score check: no predictor endpoint is needed and none is called
    result = runner.invoke(
        app, ["train", "parrot", "filter", "--workdir", work, "--checks", "scores,leak", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["kept"], report["dropped"]) == (1, 1)
    assert not any(key[0] == "predict" for key in teacher.calls)

    result = runner.invoke(app, ["train", "parrot", "project", "--workdir", work, *endpoint])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["projected_pairs"] == 1

    out = tmp_path / "sft-data"
    result = runner.invoke(
        app, ["train", "parrot", "build-dataset", "--workdir", work, "--out", str(out), "--val-fraction", "0"]
    )
    assert result.exit_code == 0, result.output
    assert "SFT dataset" in result.stdout
    assert len((out / "train.jsonl").read_text().splitlines()) == 3

    other = prefs_factory([{"id": "z", "request": "z", "label": "A"}], name="other")
    clash = runner.invoke(app, ["train", "parrot", "anchor", str(other), "--workdir", work, *endpoint])
    assert isinstance(clash.exception, RunError) and "belongs to" in str(clash.exception)
    missing = runner.invoke(app, ["train", "parrot", "filter", "--workdir", str(tmp_path / "nowhere")])
    assert isinstance(missing.exception, RunError)
    no_teacher = runner.invoke(
        app, ["train", "parrot", "anchor", str(prefs), "--workdir", str(tmp_path / "w2")]
    )
    assert isinstance(no_teacher.exception, ConfigError) and "--teacher-url" in str(no_teacher.exception)


def test_settings_from_yaml_and_template_folders(tmp_path: Path) -> None:
    from gcr.task import Task
    from gcr.training.parrot.pipeline import ParrotSettings

    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "teacher_anchor_t2i.md").write_text(
        "<!-- user -->\n{request} <image:A> <image:B> {preference}\n"
    )
    (tmp_path / "tpl" / "critic_pairwise_edit.md").write_text("x")
    config = tmp_path / "parrot.yaml"
    config.write_text(
        f"teacher_url: http://x/v1\nchecks: [scores]\nconcurrency: 2\ntemplates_dir: {tmp_path / 'tpl'}\n"
    )
    settings = ParrotSettings.from_yaml(config, concurrency=5)
    assert (settings.teacher_url, settings.checks, settings.concurrency) == ("http://x/v1", ["scores"], 5)
    assert settings.template_paths("anchor") == {Task.T2I: tmp_path / "tpl" / "teacher_anchor_t2i.md"}
    assert settings.template_paths("predict") == {}
    settings = ParrotSettings(critic_templates_dir=str(tmp_path / "tpl"))
    assert settings.critic_template_paths() == {
        ("pairwise", Task.EDIT): tmp_path / "tpl" / "critic_pairwise_edit.md"
    }
    config.write_text("checks: [scores, vibes]\n")
    with pytest.raises(ConfigError, match="vibes"):
        ParrotSettings.from_yaml(config)
