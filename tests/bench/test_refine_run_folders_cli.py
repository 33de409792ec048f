"""``gcr refine`` and its run folder: where a new run may go, and resuming damaged or moved folders.

Runs the real command in-process with the scripted ``pixel`` generator and gcr's HTTP critic against
the scripted critic server.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from benchkit import PixelCriticServer, PixelGenerator, PixelScript

from gcr.generators.registry import register_generator, unregister_generator
from stubs.cli import run_gcr
from stubs.critic_server import StubReply


@pytest.fixture(autouse=True)
def pixel_generator():
    register_generator("pixel", PixelGenerator, replace=True)
    yield
    unregister_generator("pixel")


@pytest.fixture
def server():
    with PixelCriticServer(PixelScript()) as running:
        yield running


def gcr(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """The console script in-process: (exit code, stdout, stderr with its line breaks folded)."""
    code, out, err = run_gcr(monkeypatch, capsys, *args)
    return code, out, " ".join(err.split())


def refine(server, out: Path, *extra: str) -> list[str]:
    return [
        "refine", "a quiet lake [base 2.0]", "--generator-kind", "pixel", "--generator", "pixel",
        "--critic", server.url, "--max-rounds", "3", "--target", "1", "--no-cache", "--out", str(out), *extra,
    ]  # fmt: skip


def test_out_must_be_a_new_or_empty_folder(monkeypatch, capsys, server, tmp_path):
    existing = tmp_path / "notes.txt"
    existing.write_text("my notes\n")
    code, _, err = gcr(monkeypatch, capsys, *refine(server, existing))
    assert code == 1 and "is a file, not a folder" in err and "Traceback" not in err
    assert existing.read_text() == "my notes\n"

    crowded = tmp_path / "photos"
    crowded.mkdir()
    (crowded / "holiday.jpg").write_bytes(b"not really a photo")
    code, _, err = gcr(monkeypatch, capsys, *refine(server, crowded))
    assert code == 1 and "is not empty and holds no gcr run" in err
    assert [p.name for p in crowded.iterdir()] == ["holiday.jpg"]
    assert not server.chat_requests  # refused before anything ran

    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = gcr(monkeypatch, capsys, *refine(server, empty))
    assert code == 0, err
    assert (empty / "summary.json").is_file()


def test_resume_with_a_truncated_trajectory_is_a_clear_error(monkeypatch, capsys, server, tmp_path):
    run = tmp_path / "run"
    code, _, err = gcr(monkeypatch, capsys, *refine(server, run))
    assert code == 0, err
    trajectory = run / "trajectory.jsonl"
    trajectory.write_text(trajectory.read_text()[:-25])
    code, _, err = gcr(monkeypatch, capsys, "refine", "--resume", str(run))
    assert code == 1 and "Traceback" not in err
    # Compared without spaces: the console may still wrap long paths inside a word.
    squeezed = err.replace(" ", "")
    assert "trajectory.jsonlline3isdamaged" in squeezed and "deleteitandresumeagain" in squeezed
    trajectory.unlink()
    code, _, err = gcr(monkeypatch, capsys, "refine", "--resume", str(run))
    assert code == 0, err
    assert len(trajectory.read_text().splitlines()) == 3


def test_resume_with_a_damaged_checkpoint_file_is_a_clear_error(monkeypatch, capsys, server, tmp_path):
    run = tmp_path / "run"
    assert gcr(monkeypatch, capsys, *refine(server, run))[0] == 0
    (run / "checkpoints.sqlite").write_bytes(b"\x00garbage" * 512)
    code, _, err = gcr(monkeypatch, capsys, "refine", "--resume", str(run))
    assert code == 1 and "Traceback" not in err
    assert "cannot be resumed: the checkpoint file is damaged" in err


def test_a_run_folder_moved_mid_run_resumes_from_the_cli(monkeypatch, capsys, server, tmp_path):
    healthy = server.responder
    answered = {"n": 0}

    def goes_down(request):
        answered["n"] += 1
        if answered["n"] > 2:  # rounds 0 and 1 are critiqued, then the server fails
            return StubReply.error(503, "down for maintenance")
        return healthy(request)

    server.responder = goes_down
    run = tmp_path / "first" / "run"
    code, _, err = gcr(monkeypatch, capsys, *refine(server, run))
    assert code == 1 and "HTTP 503" in err
    moved = tmp_path / "second" / "run-moved"
    moved.parent.mkdir()
    shutil.move(run, moved)
    server.responder = healthy

    code, out, err = gcr(monkeypatch, capsys, "refine", "--resume", str(moved))
    assert code == 0, err
    summary = json.loads((moved / "summary.json").read_text())
    assert summary["rounds"] == 3 and summary["run_dir"] == str(moved.resolve())
    best = out.strip().splitlines()[-1]
    assert best == summary["best"]["image"] and Path(best).is_file() and best.startswith(str(moved.resolve()))
    assert not run.exists()
    for line in (moved / "trajectory.jsonl").read_text().splitlines():
        for candidate in json.loads(line)["candidates"]:
            assert (moved / candidate["image"]).is_file()


def test_resume_of_a_tampered_checkpoint_runs_no_code(monkeypatch, capsys, server, tmp_path):
    import shlex
    import sqlite3

    import ormsgpack

    run = tmp_path / "run"
    assert gcr(monkeypatch, capsys, *refine(server, run))[0] == 0
    marker = tmp_path / "pwned"
    db = sqlite3.connect(run / "checkpoints.sqlite")
    latest = "SELECT rowid, checkpoint FROM checkpoints ORDER BY checkpoint_id DESC"
    rowid, blob = db.execute(latest).fetchone()
    checkpoint = ormsgpack.unpackb(blob, ext_hook=ormsgpack.Ext, option=ormsgpack.OPT_NON_STR_KEYS)
    # LangGraph's extension 1 means "call module.name(*args)" on load.
    command = ormsgpack.packb(["os", "system", [f"touch {shlex.quote(str(marker))}"]])
    checkpoint["channel_values"]["stop_reason"] = ormsgpack.Ext(1, command)
    db.execute("UPDATE checkpoints SET checkpoint = ? WHERE rowid = ?", (ormsgpack.packb(checkpoint), rowid))
    db.commit()
    db.close()

    code, _, err = gcr(monkeypatch, capsys, "refine", "--resume", str(run))
    assert not marker.exists()
    assert code == 1 and "Traceback" not in err
    assert "cannot be resumed: a checkpoint names code to load (os.system)" in err
