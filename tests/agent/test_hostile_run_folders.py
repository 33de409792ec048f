"""Run folders are user files: a crafted, damaged or moved one must never run code or crash a resume."""

from __future__ import annotations

import asyncio
import shlex
import sqlite3
from pathlib import Path

import ormsgpack
import pytest

from gcr.agent import RunFolder, RunSpec, run_refine
from gcr.errors import RunError

# LangGraph's msgpack extension code for "call module.name(*args)" (EXT_CONSTRUCTOR_POS_ARGS in
# langgraph/checkpoint/serde/jsonplus.py).
_CALL_WITH_ARGS = 1


def _finished_run(harness, tmp_path: Path, name: str = "run", **context) -> RunFolder:
    folder = RunFolder(tmp_path / name)
    settings = {"max_rounds": 2, "candidates": 1, "target_reward": None, **context}
    outcome = asyncio.run(run_refine(harness.builder(), folder, RunSpec(prompt="a cat", context=settings)))
    assert outcome.finished
    return folder


def _keep_ext(code: int, data: bytes) -> ormsgpack.Ext:
    return ormsgpack.Ext(code, data)


def _plant(db_path: Path, value: object, channel: str = "prompt") -> None:
    """Put ``value`` into ``channel`` of the latest checkpoint, keeping the rest as it was."""
    db = sqlite3.connect(db_path)
    latest = "SELECT rowid, checkpoint FROM checkpoints ORDER BY checkpoint_id DESC LIMIT 1"
    rowid, blob = db.execute(latest).fetchone()
    checkpoint = ormsgpack.unpackb(blob, ext_hook=_keep_ext, option=ormsgpack.OPT_NON_STR_KEYS)
    checkpoint["channel_values"][channel] = value
    db.execute("UPDATE checkpoints SET checkpoint = ? WHERE rowid = ?", (ormsgpack.packb(checkpoint), rowid))
    db.commit()
    db.close()


def test_a_checkpoint_naming_os_system_is_refused_and_runs_nothing(harness, tmp_path):
    folder = _finished_run(harness, tmp_path)
    marker = tmp_path / "pwned"
    payload = ormsgpack.packb(["os", "system", [f"touch {shlex.quote(str(marker))}"]])
    _plant(folder.file(RunFolder.CHECKPOINTS), ormsgpack.Ext(_CALL_WITH_ARGS, payload))

    with pytest.raises(RunError, match="cannot be resumed") as info:
        asyncio.run(run_refine(harness.builder(), folder, RunSpec.load(folder), resume=True))
    assert not marker.exists(), "resuming a crafted checkpoint ran a shell command"
    message = str(info.value)
    assert "os.system" in message and "tampered" in message and "\n" not in message


def test_a_pickled_pending_write_is_refused(harness, tmp_path):
    folder = _finished_run(harness, tmp_path)
    db = sqlite3.connect(folder.file(RunFolder.CHECKPOINTS))
    last_write = "(SELECT max(rowid) FROM writes)"
    db.execute(f"UPDATE writes SET type = 'pickle', value = ? WHERE rowid = {last_write}", (b"x",))
    db.commit()
    db.close()
    # The newest write may belong to an earlier checkpoint: read every checkpoint of the thread.
    with pytest.raises(RunError, match="'pickle' encoding"):
        asyncio.run(_read_every_checkpoint(folder))


async def _read_every_checkpoint(folder: RunFolder) -> None:
    from gcr.agent.checkpoints import open_checkpointer

    async with open_checkpointer(folder.file(RunFolder.CHECKPOINTS)) as saver:
        async for _ in saver.alist({"configurable": {"thread_id": "refine"}}):
            pass


def test_a_checkpoint_file_that_is_not_a_database_is_a_run_error(harness, tmp_path):
    folder = _finished_run(harness, tmp_path)
    store = folder.file(RunFolder.CHECKPOINTS)
    store.write_bytes(b"this is not an SQLite file at all, just text that took its place\n" * 64)
    with pytest.raises(RunError, match="checkpoint file is damaged"):
        asyncio.run(run_refine(harness.builder(), folder, RunSpec.load(folder), resume=True))


def test_a_damaged_checkpoint_blob_is_a_run_error(harness, tmp_path):
    folder = _finished_run(harness, tmp_path)
    db = sqlite3.connect(folder.file(RunFolder.CHECKPOINTS))
    db.execute("UPDATE checkpoints SET checkpoint = substr(checkpoint, 1, 40)")
    db.commit()
    db.close()
    with pytest.raises(RunError, match="a checkpoint is damaged"):
        asyncio.run(run_refine(harness.builder(), folder, RunSpec.load(folder), resume=True))


def test_resume_after_an_unreadable_round_asks_the_critic_again(harness, tmp_path):
    """``gcr refine --resume`` after a critic that garbled every answer: the critiques are redone."""
    from gcr.errors import CriticResponseError

    harness.script.unreadable_seeds = {0, 1}
    builder = harness.builder()
    folder = RunFolder(tmp_path / "garbled")
    spec = RunSpec(prompt="a cat", context={"max_rounds": 2, "candidates": 2, "target_reward": None})
    with pytest.raises(CriticResponseError, match="no candidate of round 0 could be scored"):
        asyncio.run(run_refine(builder, folder, spec))
    assert (harness.inner.calls, harness.critic.calls) == (2, 2)

    harness.script.unreadable_seeds = set()  # the critic is healthy again
    resumed = asyncio.run(run_refine(builder, folder, RunSpec.load(folder), resume=True))
    assert resumed.finished and len(resumed.values["rounds"]) == 2
    # Round 0's two candidates were critiqued again, round 1's two are new; no image was made twice.
    assert harness.critic.calls == 2 + 2 + 2
    assert harness.inner.calls == 2 + 2
    assert all(c["status"] == "scored" for c in resumed.values["candidates"])


def test_a_round_with_one_scored_candidate_is_not_retried(harness, tmp_path):
    """A round that went on with its readable candidates did not fail: a resume asks nothing again."""
    harness.script.unreadable_seeds = {1}
    builder = harness.builder()
    folder = RunFolder(tmp_path / "half")
    spec = RunSpec(prompt="a cat", context={"max_rounds": 1, "candidates": 2, "target_reward": None})
    outcome = asyncio.run(run_refine(builder, folder, spec))
    # One readable candidate is enough for the round: nothing failed, nothing to retry.
    assert outcome.finished
    statuses = sorted((c["index"], c["status"]) for c in outcome.values["candidates"])
    assert statuses == [(0, "scored"), (1, "skipped")]
    calls = harness.critic.calls
    again = asyncio.run(run_refine(builder, folder, RunSpec.load(folder), resume=True))
    assert again.finished and harness.critic.calls == calls


def test_a_moved_run_folder_resumes_where_it_stopped(tmp_path):
    """Paths in the state are relative to the run folder, so a folder moved mid-run resumes in place."""
    import shutil

    from PIL import Image
    from refine_harness import Harness

    from gcr.errors import CriticUnavailableError
    from gcr.task import Task

    harness = Harness(tmp_path, task=Task.EDIT)
    source = tmp_path / "source.png"
    Image.new("RGB", (16, 16), (30, 60, 90)).save(source)
    harness.critic.fail_after = 3  # round 0: two critiques; round 1: one, then the critic is gone
    builder = harness.builder()
    first = RunFolder(tmp_path / "here" / "run")
    spec = RunSpec(
        prompt="make it blue",
        source_images=[str(source)],
        context={"max_rounds": 3, "candidates": 2, "target_reward": None},
    )
    with pytest.raises(CriticUnavailableError):
        asyncio.run(run_refine(builder, first, spec))
    assert harness.inner.calls == 4

    moved = RunFolder(tmp_path / "elsewhere" / "moved-run")
    moved.path.parent.mkdir()
    shutil.move(first.path, moved.path)
    source.unlink()  # the run keeps its own copy of the source image
    harness.critic.fail_after = None

    outcome = asyncio.run(run_refine(builder, moved, RunSpec.load(moved), resume=True))
    assert outcome.finished and len(outcome.values["rounds"]) == 3
    assert harness.inner.calls == 6  # only round 2 was generated after the move
    assert not first.path.exists()  # nothing was written at the old place
    summary = outcome.values["summary"]
    assert summary["run_dir"] == str(moved.path) == outcome.values["run_dir"]
    assert Path(summary["best"]["image"]).is_file() and summary["best"]["image"].startswith(str(moved.path))
    assert Path(summary["best"]["critique"]).is_file()
    assert summary["source_images"] == [str(moved.path / "inputs" / "source-0.png")]
    for candidate in outcome.values["candidates"]:
        assert not Path(candidate["image"]).is_absolute() and (moved.path / candidate["image"]).is_file()
        assert (moved.path / candidate["critique_json"]).is_file()
    report = moved.file(RunFolder.REPORT).read_text()
    assert str(tmp_path) not in report and "rounds/r02/c00.png" in report


def test_a_truncated_trajectory_is_a_run_error(harness, tmp_path):
    folder = _finished_run(harness, tmp_path)
    path = folder.file(RunFolder.TRAJECTORY)
    path.write_text(path.read_text()[:-40])
    with pytest.raises(RunError, match=r"trajectory.jsonl line 2 is damaged.*delete it"):
        folder.read_trajectory()
    # As the message says: without the file, a resume rewrites it from the checkpoints.
    path.unlink()
    outcome = asyncio.run(run_refine(harness.builder(), folder, RunSpec.load(folder), resume=True))
    assert outcome.finished and len(folder.read_trajectory()) == 2


def test_a_finished_run_moved_elsewhere_reports_its_new_place(harness, tmp_path):
    import shutil

    folder = _finished_run(harness, tmp_path, "done")
    moved = RunFolder(tmp_path / "archive" / "done")
    moved.path.parent.mkdir()
    shutil.move(folder.path, moved.path)
    outcome = asyncio.run(run_refine(harness.builder(), moved, RunSpec.load(moved), resume=True))
    assert outcome.finished and outcome.values["run_dir"] == str(moved.path)
    best = outcome.values["summary"]["best"]
    assert best["image"].startswith(str(moved.path)) and Path(best["image"]).is_file()
    assert Path(best["critique"]).is_file()


@pytest.mark.parametrize("how", ["absolute", "dot-dot", "symlink"])
def test_a_state_naming_an_image_outside_the_folder_is_refused_and_nothing_is_sent(tmp_path, how):
    """A crafted checkpoint must not make a resume read a file elsewhere and send it to the critic."""
    from PIL import Image
    from refine_harness import Harness

    from gcr.errors import CriticUnavailableError
    from gcr.task import Task

    harness = Harness(tmp_path, task=Task.EDIT)
    source = tmp_path / "source.png"
    Image.new("RGB", (16, 16), (30, 60, 90)).save(source)
    secret = tmp_path / "private" / "holiday.png"
    secret.parent.mkdir()
    Image.new("RGB", (16, 16), (200, 10, 10)).save(secret)
    harness.critic.fail_after = 2  # round 0 is critiqued, then the critic is gone
    folder = RunFolder(tmp_path / "runs" / "run")
    spec = RunSpec(prompt="make it blue", source_images=[str(source)],
                   context={"max_rounds": 3, "candidates": 2, "target_reward": None})  # fmt: skip
    with pytest.raises(CriticUnavailableError):
        asyncio.run(run_refine(harness.builder(), folder, spec))
    if how == "absolute":
        _plant(folder.file(RunFolder.CHECKPOINTS), [str(secret)], channel="source_images")
    elif how == "dot-dot":
        _plant(folder.file(RunFolder.CHECKPOINTS), ["../../private/holiday.png"], channel="source_images")
    else:
        copy = folder.path / "inputs" / "source-0.png"
        copy.unlink()
        copy.symlink_to(secret)
    harness.critic.fail_after = None
    seen: list[tuple[int, int, int]] = []
    critique = harness.critic.acritique

    async def recording(prompt, image, *, sources=(), task=None):
        seen.extend(source.convert("RGB").getpixel((0, 0)) for source in sources)
        return await critique(prompt, image, sources=sources, task=task)

    harness.critic.acritique = recording

    with pytest.raises(RunError, match="outside the folder") as info:
        asyncio.run(run_refine(harness.builder(), folder, RunSpec.load(folder), resume=True))
    assert (200, 10, 10) not in seen, "the critic was sent a file from outside the run folder"
    assert "\n" not in str(info.value)
